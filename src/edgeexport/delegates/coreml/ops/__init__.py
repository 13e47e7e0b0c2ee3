"""Op emitters of the coreml registry, one module per op family; importing registers them."""

from edgeexport.delegates.coreml.ops import (  # noqa: F401
    activation,
    conv,
    einsum,
    elementwise,
    generate,
    layout,
    linear,
    logic,
    misc,
    norm,
    quant,
    reduce,
    resize,
    shape,
)
