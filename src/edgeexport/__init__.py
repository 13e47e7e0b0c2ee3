"""edgeexport: PyTorch models to edge artifacts, with measured parity.

The stages live in subpackages in the order a model travels through them:
exporter -> passes -> quantize -> delegates -> runtimes -> validate.
"""

__version__ = "0.1.0"
