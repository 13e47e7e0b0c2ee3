"""Reference models defined in the project (torchvision cannot be imported on CPU torch here).

Used by the demo, the tests and the benchmarks; factories are `package.module:factory` targets
for `edgeexport export` (e.g. `edgeexport.zoo:mobilenet_v2_pretrained`).
"""

from edgeexport.zoo.bert import BertConfig, TinyBert, bert_tiny
from edgeexport.zoo.mobilenet import MobileNetV2, mobilenet_v2, mobilenet_v2_pretrained
from edgeexport.zoo.resnet import ResNet, resnet18, resnet_small
from edgeexport.zoo.vit import MobileViTLike, ViT, mobilevit_xxs_like, vit_tiny

__all__ = [
    "BertConfig", "MobileNetV2", "MobileViTLike", "ResNet", "TinyBert", "ViT", "bert_tiny",
    "mobilenet_v2", "mobilenet_v2_pretrained", "mobilevit_xxs_like", "resnet18", "resnet_small",
    "vit_tiny",
]
