"""One op-mapping module per op family; importing this package registers them all."""

from edgeexport.delegates.tflite.ops import (  # noqa: F401
    activation, conv, elementwise, extra, linear, math, misc, norm, pool, reduce, resize, shape,
)
