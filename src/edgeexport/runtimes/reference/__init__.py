"""The numpy reference runtime: runs an IR model node by node with the kernels in `kernels/`.

It is the living definition of the edge profile's semantics; every other runtime is compared
with it. `Interpreter` prepares a model once (order, constants, attributes, weight layouts) and
runs it many times; `run` is the one-shot form.

The one liberty it takes: a Relu or Clip next to a Conv, with nothing else reading the value
passed between them, runs inside that Conv (same ufunc, same values): in place on the Conv's
fresh output, or on a depthwise Conv's input as it copies it. When every intermediate is asked
for (keep_all), nothing is fused.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx_ir as ir

from edgeexport import ir as eir
from edgeexport.errors import ConversionError, EdgeExportError, UnsupportedOpError, UsageError
from edgeexport.runtimes.base import Runtime, Session
from edgeexport.runtimes.reference.kernels import (
    KERNELS, Epilogue, Kernel, Prologue, Unsupported, node_attributes,
)
from edgeexport.runtimes.reference.kernels._parallel import blas_limit

__all__ = ["Interpreter", "ReferenceRuntime", "ReferenceSession", "node_attributes", "run"]

_DEFAULT_DOMAINS = ("", "ai.onnx")


@dataclass(frozen=True)
class _Step:
    """One node, ready to run: a bound kernel and the slots it reads, writes and frees."""

    node: ir.Node
    fn: Callable[..., Any]
    inputs: tuple[int | None, ...]  # None for an omitted optional input
    outputs: tuple[int, ...]
    expected: tuple[np.dtype | None, ...]  # declared output dtypes, when the graph declares them
    free: tuple[int, ...]  # slots whose last reader is this step
    binding: tuple[Kernel, dict[str, Any], list[np.ndarray | None], int]  # what fn was bound from

    @property
    def where(self) -> str:
        return self.node.name or f"<{self.node.op_type} producing {self.node.outputs[0].name}>"


def _declared_dtype(value: ir.Value) -> np.dtype | None:
    if value.dtype is None or value.dtype == ir.DataType.UNDEFINED:
        return None
    try:
        return eir.np_dtype(value.dtype)
    except Exception:  # a type numpy cannot hold (string, complex...): nothing to check
        return None


def _topological(graph: ir.Graph) -> list[ir.Node]:
    """Nodes in an order where every input is ready, keeping the file's order where it can."""
    ready = {id(v) for v in graph.inputs} | {id(v) for v in graph.initializers.values()}
    pending = list(graph)
    order: list[ir.Node] = []
    while pending:
        still = []
        for node in pending:
            if all(v is None or id(v) in ready for v in node.inputs):
                order.append(node)
                ready.update(id(v) for v in node.outputs)
            else:
                still.append(node)
        if len(still) == len(pending):
            missing = sorted({v.name or "?" for n in still for v in n.inputs
                              if v is not None and id(v) not in ready})
            raise ConversionError(f"graph '{graph.name}': value(s) {', '.join(missing[:5])} are "
                                  "used but never produced (or the graph has a cycle)")
        pending = still
    return order


class Interpreter:
    """A model prepared for repeated runs with the reference kernels."""

    def __init__(self, model: ir.Model) -> None:
        graph = model.graph
        self.model = model
        self._slot: dict[int, int] = {}
        self._names: list[str] = []
        self._constants: dict[int, np.ndarray] = {}
        for value in graph.initializers.values():
            if value.const_value is None:
                raise ConversionError(f"initializer '{value.name}' has no data")
            self._constants[self._index(value)] = value.const_value.numpy()
        self._inputs = {v.name: (self._index(v), _declared_dtype(v)) for v in graph.inputs}
        self._outputs = [(v.name, self._index(v)) for v in graph.outputs]
        self._required = [name for name, (slot, _) in self._inputs.items()
                          if slot not in self._constants]

        last_read: dict[int, int] = {}
        reads: Counter[int] = Counter()
        nodes = _topological(graph)
        for position, node in enumerate(nodes):
            for v in node.inputs:
                if v is not None:
                    last_read[self._index(v)] = position
                    reads[self._index(v)] += 1
        keep = {slot for _, slot in self._outputs}
        steps: list[_Step] = []
        for position, node in enumerate(nodes):
            step = self._prepare(node, position, last_read, keep)
            if step is not None:
                steps.append(step)
        self._every_step = steps  # keep_all runs these: every value exactly as its node makes it
        self._steps = self._fuse(steps, reads, keep)

    def _index(self, value: ir.Value) -> int:
        key = id(value)
        if key not in self._slot:
            self._slot[key] = len(self._names)
            self._names.append(value.name or "")
        return self._slot[key]

    def _prepare(self, node: ir.Node, position: int, last_read: dict[int, int],
                 keep: set[int]) -> _Step | None:
        if node.domain not in _DEFAULT_DOMAINS or node.op_type not in KERNELS:
            domain = f"{node.domain}::" if node.domain not in _DEFAULT_DOMAINS else ""
            raise UnsupportedOpError(f"{domain}{node.op_type}", node.name,
                                     reason="the reference runtime has no kernel for it")
        kernel = KERNELS[node.op_type]
        attrs = node_attributes(node)
        inputs = tuple(None if v is None else self._index(v) for v in node.inputs)
        while inputs and inputs[-1] is None:  # trailing omitted inputs: the kernel's defaults
            inputs = inputs[:-1]
        constants = [None if i is None else self._constants.get(i) for i in inputs]
        reason = kernel.why_not(attrs, constants)
        if reason:
            raise UnsupportedOpError(node.op_type, node.name, reason=reason)
        outputs = tuple(self._index(v) for v in node.outputs)
        # outputs after the last named one are not wanted; kernels like MaxPool skip them
        named = [i for i, v in enumerate(node.outputs) if v.name]
        n_outputs = named[-1] + 1 if named else len(outputs)
        try:
            fn = kernel.bind(attrs, constants, n_outputs)
        except Exception as exc:
            raise ConversionError(f"reference runtime: cannot prepare {node.op_type} node "
                                  f"'{node.name}': {type(exc).__name__}: {exc}") from exc
        expected = tuple(_declared_dtype(v) for v in node.outputs)
        free = tuple(sorted({i for i in inputs if i is not None and last_read.get(i) == position
                             and i not in keep and i not in self._constants}
                            | {o for o in outputs if o not in last_read and o not in keep}))
        step = _Step(node, fn, inputs, outputs, expected, free,
                     (kernel, attrs, constants, n_outputs))
        if node.op_type == "Constant":
            # materialised once here; a Constant costs nothing per run
            for slot, array in zip(outputs, self._execute(step, [])):
                self._constants[slot] = array
            return None
        return step

    def _fuse(self, steps: list[_Step], reads: Counter[int], keep: set[int]) -> list[_Step]:
        """steps with each activation that has an in-place form (Relu, Clip with constant
        bounds) folded into a Conv: into the one step reading its result, as a prologue, when
        that kernel applies one for free; else into the step making its input, as an epilogue.
        Either only when the value passed between them has no other reader and is no graph
        output."""
        readers: dict[int, list[int]] = {}  # slot -> the steps reading it
        for index, step in enumerate(steps):
            for slot in step.inputs:
                if slot is not None:
                    readers.setdefault(slot, []).append(index)
        prologues: dict[int, tuple[int, Prologue, _Step]] = {}  # step -> (its new input, ...)
        fused: list[_Step] = []
        acts: dict[int, list[Any]] = {}  # index in fused -> [prologue, epilogue] bound into it
        made_by: dict[int, int] = {}  # slot -> index in fused of the step that makes it
        for index, step in enumerate(steps):
            activation = self._activation(step)
            if activation is not None:
                source, result = step.inputs[0], step.outputs[0]
                users = readers.get(result, [])
                if len(users) == 1 and reads[result] == 1 and result not in keep \
                        and source in step.free:  # the consumer reads source instead, later
                    consumer = steps[users[0]]
                    kernel, attrs, constants, _ = consumer.binding
                    if kernel.fuses and kernel.takes_prologue is not None \
                            and consumer.inputs[0] == result \
                            and kernel.takes_prologue(attrs, constants):
                        prologues[users[0]] = (source, activation, step)
                        continue
                at = made_by.get(source)
                if at is not None and reads[source] == 1 and source not in keep \
                        and len(fused[at].outputs) == 1 and fused[at].binding[0].fuses:
                    first = fused[at]
                    acts[at][1] = lambda y, act=activation: act(y, y)
                    fused[at] = _Step(first.node, self._rebind(first, step, *acts[at]),
                                      first.inputs, step.outputs, step.expected,
                                      tuple(sorted(set(first.free) | set(step.free))),
                                      first.binding)
                    made_by.update((slot, at) for slot in step.outputs)
                    continue
            if index in prologues:
                source, activation, before = prologues[index]
                step = _Step(step.node, self._rebind(step, before, activation, None),
                             (source,) + step.inputs[1:], step.outputs, step.expected,
                             tuple(sorted(set(step.free) | set(before.free))), step.binding)
            acts[len(fused)] = [prologues[index][1] if index in prologues else None, None]
            made_by.update((slot, len(fused)) for slot in step.outputs)
            fused.append(step)
        return fused

    def _activation(self, step: _Step) -> Prologue | None:
        """The step's op as a Prologue, if it has an in-place form and constant parameters."""
        kernel, attrs, constants, _ = step.binding
        if kernel.inplace is None or not step.inputs or step.inputs[0] is None \
                or len(step.outputs) != 1 \
                or not all(i is None or i in self._constants for i in step.inputs[1:]):
            return None
        return kernel.inplace(attrs, constants)

    @staticmethod
    def _rebind(step: _Step, activation: _Step, prologue: Prologue | None,
                epilogue: Epilogue | None) -> Callable[..., Any]:
        kernel, attrs, constants, n_outputs = step.binding
        try:
            return kernel.bind(attrs, constants, n_outputs, epilogue, prologue)
        except Exception as exc:
            raise ConversionError(f"reference runtime: cannot prepare {step.node.op_type} node "
                                  f"'{step.node.name}' with {activation.node.op_type}: "
                                  f"{type(exc).__name__}: {exc}") from exc

    def _execute(self, step: _Step, args: list[np.ndarray | None]) -> list[np.ndarray]:
        node = step.node
        try:
            result = step.fn(*args)
        except Unsupported as exc:
            raise UnsupportedOpError(node.op_type, step.where, reason=str(exc)) from exc
        except EdgeExportError:
            raise
        except Exception as exc:
            shapes = ", ".join("-" if a is None else f"{a.dtype}{list(a.shape)}" for a in args)
            raise ConversionError(f"reference runtime: {node.op_type} node '{step.where}' failed "
                                  f"on inputs ({shapes}): {type(exc).__name__}: {exc}") from exc
        results = [np.asarray(r) for r in (result if isinstance(result, tuple) else (result,))]
        for value, array, dtype in zip(node.outputs, results, step.expected):
            if dtype is not None and array.dtype != dtype:
                raise ConversionError(f"reference runtime: {node.op_type} node '{step.where}' "
                                      f"produced {array.dtype} for '{value.name}', which the "
                                      f"graph declares {dtype}")
        return results

    def run(self, feeds: dict[str, np.ndarray], *, keep_all: bool = False) -> dict[str, np.ndarray]:
        """Outputs by graph output name; with keep_all, every computed value by name as well."""
        env: list[np.ndarray | None] = [None] * len(self._names)
        for slot, array in self._constants.items():
            env[slot] = array
        for name, array in feeds.items():
            if name not in self._inputs:
                raise UsageError(f"input '{name}' is not an input of the model "
                                 f"(inputs: {', '.join(self._inputs) or 'none'})")
            slot, dtype = self._inputs[name]
            array = np.asarray(array)
            if dtype is not None and array.dtype != dtype:
                raise UsageError(f"input '{name}' is {array.dtype} but the model expects {dtype}")
            env[slot] = array
        missing = [name for name in self._required if name not in feeds]
        if missing:
            raise UsageError(f"missing model input(s): {', '.join(missing)}")
        kept: dict[str, np.ndarray] = {}
        if keep_all:
            kept.update((name, env[slot]) for name, (slot, _) in self._inputs.items()
                        if env[slot] is not None)
        # IEEE results (inf, nan) are the definition here, not something to warn about
        with np.errstate(all="ignore"), blas_limit():
            for step in self._every_step if keep_all else self._steps:
                outputs = self._execute(step, [None if i is None else env[i] for i in step.inputs])
                for slot, array in zip(step.outputs, outputs):
                    env[slot] = array
                    if keep_all and self._names[slot]:
                        kept[self._names[slot]] = _contiguous(array)
                if not keep_all:
                    for slot in step.free:
                        env[slot] = None
        result = {}
        for name, slot in self._outputs:
            if env[slot] is None:
                raise ConversionError(f"graph output '{name}' was never computed")
            result[name] = _contiguous(env[slot])
        if keep_all:
            kept.update(result)
            return kept
        return result


def _contiguous(array: np.ndarray) -> np.ndarray:
    # kernels may hold values channels-last (kernels/_layout.py); callers get plain C order
    return array if array.flags.c_contiguous else np.ascontiguousarray(array)


def run(model: ir.Model, feeds: dict[str, np.ndarray], *,
        keep_all: bool = False) -> dict[str, np.ndarray]:
    """Run `model` once on `feeds` (see Interpreter for repeated runs)."""
    return Interpreter(model).run(feeds, keep_all=keep_all)


class ReferenceSession(Session):
    """A loaded model on the reference runtime."""

    device = "cpu"

    def __init__(self, model: ir.Model) -> None:
        self.interpreter = Interpreter(model)
        self.details = {"runtime": "reference (numpy)", "numpy": np.__version__}

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.interpreter.run(feeds)

    def run_all(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.interpreter.run(feeds, keep_all=True)


class ReferenceRuntime(Runtime):
    """numpy, always available: the semantics other runtimes are measured against."""

    name = "reference"
    formats = ("onnx",)

    def unavailable_reason(self) -> str | None:
        return None

    def load(self, path: Path, **options: Any) -> Session:
        if options:
            raise UsageError(f"the reference runtime takes no options (got {', '.join(options)})")
        return ReferenceSession(eir.load(path))
