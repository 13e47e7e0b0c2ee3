"""The metal target: the coreml target's ML Program, meant to run on the GPU (Metal) through
CoreML with compute units CPU_AND_GPU. Same emitter, same op registry, same options.
"""

from __future__ import annotations


from edgeexport.delegates.coreml import REGISTRY, CoreMLTarget


class MetalTarget(CoreMLTarget):
    name = "metal"
    description = "CoreML ML Program run on the GPU via Metal (compute units CPU_AND_GPU)"
    registry = REGISTRY
    compute_units = "CPU_AND_GPU"


TARGET = MetalTarget()
