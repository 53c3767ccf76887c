"""The video ViT, the MME pre-training model, the registry and mme's own model format.

Checkpoint interop lives in :mod:`mme.interop`; its public names resolve from here on first use
(a module ``__getattr__``), so importing ``mme.models`` never imports ``mme.interop``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mme.models.config import (
    ClassifierConfig,
    HeadConfig,
    MMEPretrainConfig,
    ViTConfig,
    apply_overrides,
    parse_heads,
)
from mme.models.params import layer_id
from mme.models.pretrain import MMEPretrainModel
from mme.models.registry import build_model, create_model, get_config, list_models
from mme.models.saving import config_from_payload, model_config_dict, save_model
from mme.models.vit import VideoClassifier, VisionTransformer

if TYPE_CHECKING:
    from mme.interop import (
        SUPPORTED_LAYOUTS,
        LoadReport,
        export_hf,
        load_classifier,
        load_classifier_with_report,
        load_pretrain_model,
        load_pretrain_model_with_report,
    )


def __getattr__(name: str) -> Any:
    # Names that moved to mme.interop (its ``__all__``), re-exported on first access.
    interop = importlib.import_module("mme.interop")
    if name in interop.__all__:
        value = getattr(interop, name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(importlib.import_module("mme.interop").__all__))


__all__ = [
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
