"""mme.models: the video ViT, the MME pre-training model, the registry and checkpoint import/export.

>>> from mme.models import create_model, load_classifier
>>> model = create_model("mme_vit_base_patch16_224")  # model(clip, mask) -> {head: predictions}
>>> clf = load_classifier("checkpoint-best/", num_classes=51)  # any supported checkpoint layout
"""

from mme.models.checkpoint import (
    config_from_payload,
    export_hf,
    load_classifier,
    load_classifier_with_report,
    load_pretrain_model,
    load_pretrain_model_with_report,
    model_config_dict,
    save_model,
)
from mme.models.config import (
    KNOWN_HEADS,
    ClassifierConfig,
    HeadConfig,
    MMEPretrainConfig,
    ViTConfig,
    apply_overrides,
    parse_heads,
)
from mme.models.params import layer_id
from mme.models.pretrain import MMEPretrainModel
from mme.models.reading import SUPPORTED_LAYOUTS
from mme.models.registry import build_model, create_model, get_config, list_models
from mme.models.report import LoadReport
from mme.models.vit import VideoClassifier, VisionTransformer

__all__ = [
    "KNOWN_HEADS",
    "SUPPORTED_LAYOUTS",
    "ClassifierConfig",
    "HeadConfig",
    "LoadReport",
    "MMEPretrainConfig",
    "MMEPretrainModel",
    "ViTConfig",
    "VideoClassifier",
    "VisionTransformer",
    "apply_overrides",
    "build_model",
    "config_from_payload",
    "create_model",
    "export_hf",
    "get_config",
    "layer_id",
    "list_models",
    "load_classifier",
    "load_classifier_with_report",
    "load_pretrain_model",
    "load_pretrain_model_with_report",
    "model_config_dict",
    "parse_heads",
    "save_model",
]
