"""The nnapi target: a .tflite for Android's NNAPI delegate, with the partition the delegate will
make at a given Android API level (27..35) computed from its per-op rules, before any device.
"""

from __future__ import annotations

from typing import Any

import json

import onnx_ir as ir

from edgeexport.delegates.base import Coverage, Fallback
from edgeexport.delegates.nnapi.rules import OpView, why_not
from edgeexport.delegates.tflite.target import TfliteTarget
from edgeexport.errors import UsageError
from edgeexport.target_options import coerce

def android_api(options: Any) -> int:
    """The API level asked for (27..35; coerce() rejects others)."""
    return int(coerce("nnapi", options).android_api)


class NnapiTarget(TfliteTarget):
    name = "nnapi"
    description = "Android .tflite for the NNAPI delegate (LiteRT CPU here; partition per API)"
    runtimes = ("litert",)

    def extra(self, options: Any) -> dict:
        return {"android_api": android_api(options),
                "fp16_relaxed": self._relaxed(options)}

    def metadata(self, options: Any) -> dict[str, bytes]:
        # what the app should pass to the NnApiDelegate options, next to the model it belongs to
        return {"edgeexport.nnapi": json.dumps(self.extra(options), sort_keys=True).encode()}

    @staticmethod
    def _relaxed(options: Any) -> bool:
        return bool(coerce("nnapi", options).nnapi_fp16_relaxed)

    def coverage(self, model: ir.Model, options: Any = None) -> Coverage:
        api = android_api(options)
        emitted = self.emit_bytes(model, options)
        fm = emitted.model
        producers = {o.name: n.name or o.name for n in model.graph for o in n.outputs if o}
        back = {v[0]: k for k, v in emitted.tensor_map.items()}
        const = {i for i, t in enumerate(fm.tensors) if t.buffer != 0}
        ops = list(zip(range(len(fm.operators)), emitted.ops))
        for i, name in ops:  # DEQUANTIZE of a constant (fp16 weights) is folded by the delegate
            op = fm.operators[i]
            if name == "DEQUANTIZE" and all(t in const for t in op.inputs):
                const.update(op.outputs)
        fallback, partitions, delegated, total, inside = [], 0, 0, 0, False
        for i, name in ops:
            op = fm.operators[i]
            if name == "DEQUANTIZE" and all(t in const for t in op.outputs):
                continue
            total += 1
            reason = why_not(OpView(fm, i, name, const), api, self._relaxed(options))
            if reason is None:
                delegated += 1
                partitions += 0 if inside else 1
                inside = True
                continue
            inside = False
            out_name = fm.tensors[op.outputs[0]].name
            ir_value = back.get(out_name, out_name.split("/")[0])
            fallback.append(Fallback(producers.get(ir_value, ir_value), name, reason))
        notes = [f"Android API {api}: {delegated}/{total} TFLite ops run on NNAPI in "
                 f"{partitions} partition(s); the rest on the TFLite CPU kernels"]
        if self._relaxed(options):
            notes.append("fp16 relaxation on: NNAPI may compute fp32 ops in fp16"
                         if api >= 28 else "fp16 relaxation ignored: it needs Android API 28")
        if partitions > 1:
            msg = (f"WARNING: the graph splits into {partitions} NNAPI partitions; every switch "
                   "between NNAPI and the CPU copies tensors, and such models often run slower "
                   "on the accelerator than on the CPU. See the fallback list for the ops to "
                   "change or raise --android-api.")
            notes.append(msg)  # (a warning in report.json and the summary: not on stderr)
        return Coverage(total, delegated, partitions, fallback, notes)


TARGET = NnapiTarget()
