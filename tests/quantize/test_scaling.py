"""Clip-aware cross-layer scaling (quantize/scaling.py): which chains it finds, that the float
graph after the rewrite computes what PyTorch / the original graph computes on the calibration
data, and that int8 gains from it where channels have very different ranges."""

from __future__ import annotations

import types

import numpy as np
import pytest

from edgeexport import ir as eir
from edgeexport import quantize
from edgeexport.quantize import scaling

from ._helpers import exported, run_ort


def _chain_net():
    """Conv -> ReLU6 -> depthwise -> ReLU6 -> 1x1 conv -> ReLU -> mean -> Linear whose first
    conv's channels have very different sizes and all matter as much downstream (what folded
    batch norms give: the case per-tensor int8 handles badly)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU6(),
        nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.ReLU6(),
        nn.Conv2d(16, 24, 1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(24, 10)).eval()
    with torch.no_grad():
        spread = torch.logspace(-1.5, 0, 16)  # channel c of the first conv: 0.03x .. 1x
        net[0].weight.mul_(spread[:, None, None, None])
        net[0].bias.mul_(spread)
        net[2].bias.fill_(0.05)
        net[4].weight.div_(spread[None, :, None, None])
    return net


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    import torch

    net = _chain_net()
    path = tmp_path_factory.mktemp("chain") / "chain.pt"
    torch.jit.trace(net, torch.zeros(1, 3, 16, 16)).save(str(path))
    r = exported(str(path), "1,3,16,16")
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, (40, 3, 16, 16)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    return r, net, x, want


def _feeds(r, x):
    return [{r.model.graph.inputs[0].name: x[i:i + 1]} for i in range(len(x))]


def test_finds_every_chain(chain):
    r, _, _, _ = chain
    links = scaling.find_links(r.model)
    kinds = sorted(sorted(k for _, k in link.readers) for link in links)
    assert kinds == [["conv"], ["depthwise"], ["gemm"]]
    assert sorted(link.bound for link in links) == [6.0, 6.0, float("inf")]


def test_float_graph_unchanged_on_calibration_data(chain):
    r, _, x, want = chain
    m = quantize.clone(r.model)
    feeds = _feeds(r, x)
    applied: dict[str, np.ndarray] = {}
    info = scaling.apply(m, feeds, applied=applied)
    assert info["links"] == 3 and info["channels_scaled"] > 0
    assert max(float(s.max()) for s in applied.values()) > 4  # the small channels grew
    got = np.concatenate([o[0] for o in run_ort(m, feeds)])
    before = np.concatenate([o[0] for o in run_ort(r.model, feeds)])
    scale = np.abs(want).max()
    assert np.abs(got - want).max() <= 1e-5 * scale  # PyTorch eager
    assert np.abs(got - before).max() <= 1e-5 * scale  # the graph before the rewrite
    # every scaled ReLU6 channel stays within HEADROOM of the bound on that data
    seen = scaling.channel_maxima(m, feeds, [link.value.name for link in scaling.find_links(m)])
    for link in scaling.find_links(m):
        if np.isfinite(link.bound):
            s = applied[link.value.name]
            assert np.all(seen[link.value.name][s > 1] <= scaling.HEADROOM * link.bound + 1e-5)


def test_full_reader_factor_is_capped(chain):
    r, _, x, _ = chain
    m = quantize.clone(r.model)
    applied: dict[str, np.ndarray] = {}
    scaling.apply(m, _feeds(r, x), applied=applied)
    for link in scaling.find_links(r.model):
        s = applied.get(link.value.name, np.ones(1))
        if any(k != "depthwise" for _, k in link.readers):
            assert s.max() <= scaling.MAX_SCALE_FULL_READER
        else:
            assert s.max() <= scaling.MAX_SCALE


def test_int8_gains_from_scaling(chain, tmp_path):
    r, _, x, want = chain
    calib = tmp_path / "calib.npy"
    np.save(calib, x[:32])
    sqnr, err = {}, {}
    for on in (False, True):
        q = types.SimpleNamespace(model=quantize.clone(r.model), inputs=r.inputs)
        info = quantize.apply(q, "int8", str(calib), quiet=True, channel_scaling=on)
        assert info["channel_scaling"]["links"] == (3 if on else 0)
        # int8 vs float IR per layer (onnxruntime), in order: ReLU6, ReLU6, ReLU, mean, reshape
        sqnr[on] = [row["sqnr_db"] for row in info["per_layer"]]
        got = np.concatenate([o[0] for o in run_ort(q.model, _feeds(r, x[32:]))])
        err[on] = float(np.sum((got - want[32:]) ** 2) / np.sum(want[32:] ** 2))
    # measured: 38.5/30.5/30.7 dB -> 43.2/39.5/36.9 dB; the logits' own int8 step then dominates
    assert all(b >= a for a, b in zip(sqnr[False], sqnr[True])), sqnr
    assert sqnr[True][2] >= sqnr[False][2] + 3, sqnr
    assert err[True] < 1e-4 and err[False] < 1e-4, err  # both close to PyTorch


def test_nothing_to_scale_leaves_model_alone(cnn):
    m = quantize.clone(cnn.model)
    before = eir.to_bytes(m)
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    feeds = _feeds(cnn, x)
    links = scaling.find_links(m)
    info = scaling.apply(m, feeds)
    if not links:
        assert info == {"links": 0, "channels_scaled": 0} and eir.to_bytes(m) == before
    else:  # whatever it scaled, the float function stays
        a = np.concatenate([o[0] for o in run_ort(cnn.model, feeds)])
        b = np.concatenate([o[0] for o in run_ort(m, feeds)])
        assert np.abs(a - b).max() <= 1e-5 * np.abs(a).max()
