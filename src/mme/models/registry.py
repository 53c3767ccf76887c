"""Named models: ``vit_<size>_patch16_224`` classifiers, ``mme_vit_...`` pre-training; ``tiny`` for tests."""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from mme.errors import ConfigError
from mme.models.config import (
    ClassifierConfig,
    MMEPretrainConfig,
    ModelConfig,
    ViTConfig,
    apply_overrides,
)

# size -> (width, depth, heads, decoder heads at the released decoder width 192)
SIZES: dict[str, tuple[int, int, int, int]] = {
    "tiny": (192, 4, 3, 3),
    "small": (384, 12, 6, 3),
    "base": (768, 12, 12, 6),
    "large": (1024, 24, 16, 8),
    "huge": (1280, 32, 16, 8),
}


def _encoder(size: str) -> ViTConfig:
    width, depth, heads, _ = SIZES[size]
    return ViTConfig(embed_dim=width, depth=depth, num_heads=heads)


def _registry() -> dict[str, ModelConfig]:
    models: dict[str, ModelConfig] = {}
    for size, (_, _, _, decoder_heads) in SIZES.items():
        encoder = _encoder(size)
        models[f"vit_{size}_patch16_224"] = ClassifierConfig(**dataclasses.asdict(encoder))
        models[f"mme_vit_{size}_patch16_224"] = MMEPretrainConfig(
            encoder=encoder, decoder_embed_dim=192, decoder_depth=1, decoder_num_heads=decoder_heads
        )
    return models


_MODELS = _registry()


def list_models(kind: str | None = None) -> list[str]:
    """Registered names; ``kind`` is ``"classifier"``, ``"pretrain"`` or None for all."""
    if kind not in (None, "classifier", "pretrain"):
        raise ConfigError(f"unknown model kind {kind!r}: expected 'classifier' or 'pretrain'")
    return [name for name, cfg in _MODELS.items() if kind is None or model_kind(cfg) == kind]


def model_kind(config: ModelConfig) -> str:
    return "pretrain" if isinstance(config, MMEPretrainConfig) else "classifier"


def get_config(name: str, **overrides: Any) -> ModelConfig:
    """The config of a registered model with ``overrides`` applied (a fresh copy)."""
    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(_MODELS)}")
    return apply_overrides(_MODELS[name], overrides)


def build_model(config: ModelConfig) -> nn.Module:
    """A randomly initialised model for a config (classifier or pre-training)."""
    from mme.models.pretrain import MMEPretrainModel
    from mme.models.vit import VideoClassifier

    if isinstance(config, MMEPretrainConfig):
        return MMEPretrainModel(config)
    if isinstance(config, ClassifierConfig):
        return VideoClassifier(config)
    raise ConfigError(f"not a model config: {type(config).__name__}")


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build a registered model; any config field may be overridden (e.g. ``num_frames=8``)."""
    model = build_model(get_config(name, **overrides))
    model.model_name = name
    return model


def size_for(embed_dim: int, depth: int) -> str | None:
    """The registered size with this width and depth, if any."""
    for size, (width, layers, _, _) in SIZES.items():
        if (width, layers) == (embed_dim, depth):
            return size
    return None


def heads_for_width(embed_dim: int) -> int | None:
    """Attention heads of the registered size of this width (checkpoints do not store it)."""
    for width, _, heads, _ in SIZES.values():
        if width == embed_dim:
            return heads
    return None


def decoder_heads_for_width(embed_dim: int) -> int | None:
    for width, _, _, decoder_heads in SIZES.values():
        if width == embed_dim:
            return decoder_heads
    return None
