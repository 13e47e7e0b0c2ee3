"""Reference models defined in the project (torchvision cannot be imported on CPU torch here).

Used by the demo, the tests and the benchmarks; factories are `package.module:factory` targets
for `edgeexport export` (e.g. `edgeexport.zoo:mobilenet_v2_pretrained`).
"""

from edgeexport.zoo.bert import BertConfig, SentenceEncoder, TinyBert, WordPiece, bert_tiny
from edgeexport.zoo.minilm import minilm_l6, minilm_tokenizer
from edgeexport.zoo.mobilenet import MobileNetV2, mobilenet_v2, mobilenet_v2_pretrained
from edgeexport.zoo.resnet import ResNet, resnet18, resnet_small
from edgeexport.zoo.vit import (
    MobileViTLike, MobileViTXXS, ViT, mobilevit_xxs, mobilevit_xxs_like, vit_deit_tiny, vit_tiny,
)

#: short name -> (factory, the --input-shape values it is exercised with): the one table the
#: tests and benchmarks take their example models from
EXAMPLES: dict[str, tuple[str, list[str]]] = {
    "mobilenet_v2": ("mobilenet_v2_pretrained", ["x=1,3,224,224"]),
    "resnet": ("resnet_small", ["x=1,3,64,64"]),
    "vit": ("vit_tiny", ["x=1,3,32,32"]),
    "mobilevit": ("mobilevit_xxs_like", ["x=1,3,64,64"]),
    "bert": ("bert_tiny", ["input_ids=1,16:int64", "attention_mask=1,16:int64"]),
}

__all__ = [
    "EXAMPLES",
    "BertConfig", "MobileNetV2", "MobileViTLike", "MobileViTXXS", "ResNet", "SentenceEncoder",
    "TinyBert", "ViT", "WordPiece", "bert_tiny", "minilm_l6", "minilm_tokenizer", "mobilenet_v2",
    "mobilenet_v2_pretrained", "mobilevit_xxs", "mobilevit_xxs_like", "resnet18", "resnet_small",
    "vit_deit_tiny", "vit_tiny",
]
