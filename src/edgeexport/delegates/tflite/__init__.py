"""The shared TFLite emitter of the nnapi and rpi targets: IR -> .tflite flatbuffer, written with
the schema classes of ai-edge-litert, channels-last inside, the IR's names and layouts outside.
"""

from edgeexport.delegates.tflite.emit import Emitted, emit_model
from edgeexport.delegates.tflite.registry import REGISTRY
from edgeexport.delegates.tflite.writer import operator_names, read_tensor_map

__all__ = ["REGISTRY", "Emitted", "emit_model", "operator_names", "read_tensor_map"]
