"""edgeexport: PyTorch models to edge artifacts, with measured parity.

The stages live in subpackages in the order a model travels through them:
exporter -> passes -> quantize -> delegates -> runtimes -> validate. The Python API
(convert, export, quantize, inspect, load_bundle) is in api.py, imported lazily.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["Bundle", "convert", "export", "inspect", "load_bundle", "quantize"]

#: the API's names, imported on first use so that `import edgeexport` stays fast (no torch)
#: (edgeexport.quantize is also the quantize subpackage: that module is callable, as the API's
#: quantize(), so the name means the same whichever was imported first)
_API = {"convert": "api", "export": "api", "inspect": "api", "load_bundle": "api",
        "Bundle": "bundle"}


def __getattr__(name: str) -> Any:
    if name == "quantize":
        import importlib

        return importlib.import_module("edgeexport.quantize")
    if name in _API:
        import importlib

        return getattr(importlib.import_module(f"edgeexport.{_API[name]}"), name)
    raise AttributeError(f"module 'edgeexport' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
