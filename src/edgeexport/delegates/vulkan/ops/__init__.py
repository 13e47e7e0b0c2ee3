"""ncnn emitters, one module per op family; importing this package registers all of them in
edgeexport.delegates.vulkan.registry.REGISTRY.
"""

from edgeexport.delegates.vulkan.ops import (  # noqa: F401
    activation, conv, elementwise, linear, logic, norm, pool, quantize, rearrange, reduce, select,
    shape, spatial)
