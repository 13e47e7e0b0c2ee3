"""Range search and calibration statistics: the MSE range search against a brute force, the
growing weighted histogram, consumer weights, the patch statistics of data-aware rounding, and
the sharing of scalar initializers."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest

from edgeexport.quantize import observe, qdq, rewrite, rounding


def _brute_mse_range(hist, edges, lo, hi, noise_weight=1.0, steps=100):
    centers = (edges[:-1] + edges[1:]) / 2
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    fracs = np.linspace(0.05, 1.0, steps)
    best, best_err = None, np.inf
    for a in (lo * fracs if lo < 0 else [0.0]):
        for b in (hi * fracs if hi > 0 else [0.0]):
            if b <= a:
                continue
            err = (hist * (centers - np.clip(centers, a, b)) ** 2).sum() \
                + noise_weight * hist.sum() * ((b - a) / 255) ** 2 / 12
            if err < best_err:
                best, best_err = (float(a), float(b)), err
    return best


@pytest.mark.parametrize("noise_weight", [1.0, 8.0])
def test_mse_range_matches_brute_force(noise_weight):
    rng = np.random.default_rng(0)
    for x in (rng.standard_t(3, 20000), np.maximum(rng.standard_normal(20000), 0),
              rng.laplace(size=20000) * 3 + 1):
        r = float(np.abs(x).max())
        hist, edges = np.histogram(x, 512, range=(-r, r))
        got = observe.mse_range((hist, edges), x.min(), x.max(), noise_weight, steps=30)
        want = _brute_mse_range(hist, edges, x.min(), x.max(), noise_weight, steps=30)
        assert got == pytest.approx(want)
    # more weight on rounding noise never widens the range
    wide = observe.mse_range((hist, edges), x.min(), x.max(), 1.0)
    narrow = observe.mse_range((hist, edges), x.min(), x.max(), 16.0)
    assert narrow[1] - narrow[0] <= wide[1] - wide[0]


def test_weighted_histogram_grows_exactly():
    rng = np.random.default_rng(1)
    h = observe._WeightedHistogram(np.array([1.0, 3.0]))
    small = rng.uniform(-0.5, 0.5, (1, 2, 8, 8)).astype(np.float32)
    big = rng.uniform(-7, 7, (1, 2, 8, 8)).astype(np.float32)
    h.update(small)
    h.update(big)
    counts, edges = h.histogram()
    assert edges[0] == -h.radius and h.radius >= 7
    # every value counted once with its channel's weight
    assert counts.sum() == pytest.approx(2 * (64 * 1.0 + 64 * 3.0))
    both = np.concatenate([small, big], axis=2)
    want = np.histogram(both[0, 1].ravel(), edges)[0] * 3.0 + \
        np.histogram(both[0, 0].ravel(), edges)[0]
    np.testing.assert_allclose(counts, want)


def _conv(name, x, cout, cin, group=1, k=3, rng=None):
    w = rng.standard_normal((cout, cin // group, k, k)).astype(np.float32)
    wv = ir.Value(name=f"{name}_w", shape=ir.Shape(w.shape),
                  type=ir.TensorType(ir.DataType.FLOAT), const_value=ir.tensor(w))
    node = ir.node("Conv", [x, wv], {"group": group, "pads": [1, 1, 1, 1]}, name=name)
    node.outputs[0].name = f"{name}_y"
    node.outputs[0].type = ir.TensorType(ir.DataType.FLOAT)
    return node, w, wv


def test_consumer_weights_sum_squared_weights_through_add():
    rng = np.random.default_rng(2)
    x = ir.Value(name="x", shape=ir.Shape([1, 4, 6, 6]), type=ir.TensorType(ir.DataType.FLOAT))
    a, wa, wav = _conv("a", x, 4, 4, rng=rng)
    dw, wd, wdv = _conv("dw", a.outputs[0], 4, 4, group=4, rng=rng)
    add = ir.node("Add", [a.outputs[0], dw.outputs[0]], name="add")
    add.outputs[0].name, add.outputs[0].type = "s", ir.TensorType(ir.DataType.FLOAT)
    for v in (a.outputs[0], dw.outputs[0], add.outputs[0]):
        v.shape = ir.Shape([1, 4, 6, 6])
    b, wb, wbv = _conv("b", add.outputs[0], 8, 4, rng=rng)
    graph = ir.Graph([x], [b.outputs[0]], nodes=[a, dw, add, b],
                     initializers=[wav, wdv, wbv], opset_imports={"": 21})
    p = qdq.plan(ir.Model(graph, ir_version=10))
    got = qdq.consumer_weights(p)
    via_add = np.square(wb).sum(axis=(0, 2, 3))
    want = np.square(wd).reshape(4, -1).sum(1) + via_add  # depthwise + through the Add
    np.testing.assert_allclose(got["a_y"], want / want.mean())
    np.testing.assert_allclose(got["s"], via_add / via_add.mean())


@pytest.mark.parametrize("c,group,stride,pad,dil,hw", [(8, 8, 1, 1, 1, 20), (6, 2, 2, 1, 1, 15),
                                                       (3, 1, 3, 2, 2, 19)])
def test_patch_stats_match_explicit_windows(c, group, stride, pad, dil, hw):
    rng = np.random.default_rng(3)
    node = ir.node("Conv", [], {"group": group, "strides": [stride, stride],
                                "pads": [pad] * 4, "dilations": [dil, dil]})
    stats = rounding.PatchStats(node, (c, c // group, 3, 3))
    x = rng.standard_normal((1, c, hw, hw)).astype(np.float32)
    stats.update(x)
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh = (hw + 2 * pad - 2 * dil - 1) // stride + 1
    step = max(1, int(np.ceil(np.sqrt(oh * oh / rounding.MAX_POSITIONS))))
    rows = []
    for oy in range(0, oh, step):
        for ox in range(0, oh, step):
            y0, x0 = oy * stride, ox * stride
            rows.append(xp[0, :, y0:y0 + 2 * dil + 1:dil, x0:x0 + 2 * dil + 1:dil])
    p = np.stack(rows)  # (positions, c, 3, 3)
    p = p.reshape(len(rows), group, -1).transpose(1, 0, 2)
    mean = p.mean(1)
    cov = np.einsum("gpi,gpj->gij", p, p) / p.shape[1] - np.einsum("gi,gj->gij", mean, mean)
    assert stats.count == len(rows)
    np.testing.assert_allclose(stats.covariance(), cov, atol=1e-9)


def test_share_scalars():
    x = ir.Value(name="x", shape=ir.Shape([2]), type=ir.TensorType(ir.DataType.FLOAT))
    consts = []
    for i, val in enumerate([0.0, 6.0, 0.0, 6.0]):
        consts.append(ir.Value(name=f"c{i}", shape=ir.Shape([]),
                               type=ir.TensorType(ir.DataType.FLOAT),
                               const_value=ir.tensor(np.array(val, np.float32))))
    c1 = ir.node("Clip", [x, consts[0], consts[1]], name="c1")
    c2 = ir.node("Clip", [c1.outputs[0], consts[2], consts[3]], name="c2")
    graph = ir.Graph([x], [c2.outputs[0]], nodes=[c1, c2], initializers=consts,
                     opset_imports={"": 21})
    model = ir.Model(graph, ir_version=10)
    assert rewrite.share_scalars(model) == 2
    assert sorted(model.graph.initializers) == ["c0", "c1"]
    assert c2.inputs[1].name == "c0" and c2.inputs[2].name == "c1"
