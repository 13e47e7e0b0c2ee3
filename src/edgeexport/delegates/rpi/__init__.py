"""The rpi target: a .tflite for XNNPACK on a Raspberry Pi (Cortex-A72 Pi 4, Cortex-A76 Pi 5),
checked with LiteRT on x86 and with the aarch64 LiteRT wheel under qemu-user.
"""

from __future__ import annotations

from typing import Any


import onnx_ir as ir

from edgeexport.delegates.base import Coverage
from edgeexport.delegates.tflite.target import TfliteTarget

#: what each core brings to XNNPACK (recorded in the bundle; the artifact itself is the same)
CPUS = {
    "cortex-a72": {"board": "Raspberry Pi 4", "isa": "ARMv8.0-A NEON", "fp16_arith": False,
                   "int8_dot": False},
    "cortex-a76": {"board": "Raspberry Pi 5", "isa": "ARMv8.2-A NEON + FP16 + DotProd",
                   "fp16_arith": True, "int8_dot": True},
}


class RpiTarget(TfliteTarget):
    name = "rpi"
    description = "Raspberry Pi .tflite for XNNPACK (LiteRT x86 + aarch64 under qemu)"
    runtimes = ("litert", "litert-aarch64-qemu")

    def extra(self, options: Any) -> dict:
        cpu = self.opts(options).cpu
        return {"cpu": cpu, **CPUS[cpu]}

    def coverage(self, model: ir.Model, options: Any = None) -> Coverage:
        cov = super().coverage(model, options)
        cpu = self.opts(options).cpu
        facts = CPUS[cpu]
        cov.notes.append(f"{cpu} ({facts['board']}, {facts['isa']}): XNNPACK runs the float and "
                         "int8 kernels it has; any other op runs on LiteRT's built-in CPU kernel")
        if not facts["int8_dot"]:
            cov.notes.append("no ARMv8.2 dot-product on this core: int8 gains are smaller than "
                             "on a Pi 5")
        return cov

    def metadata(self, options: Any) -> dict[str, bytes]:
        # litert-aarch64-qemu emulates this core, so XNNPACK runs the kernels the Pi would
        return {"edgeexport.cpu": (self.opts(options).cpu).encode()}


TARGET = RpiTarget()
