"""Architecture settings of every model (omegaconf-friendly dataclasses; defaults: the ViT-B recipe)."""

from __future__ import annotations

import collections
import dataclasses
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mme.errors import ConfigError

HEAD_ACTIVATIONS = ("sigmoid", "tanh", "identity")


@dataclass
class ViTConfig:
    """Video ViT encoder (docs/method.md §2)."""

    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    patch_size: int = 16
    tubelet_size: int = 2
    # The clip size the model is built for; the position table is sized from it. Other sizes that
    # the tubelet divides are accepted at run time (the table is rebuilt from the token count).
    img_size: int = 224
    num_frames: int = 16
    in_chans: int = 3
    # Learned q_bias and v_bias next to the bias-free qkv projection (the key bias stays zero).
    qkv_bias: bool = True
    norm_eps: float = 1e-6
    # Layer scale (gamma_1, gamma_2) is created when init_values > 0.
    init_values: float = 0.0
    drop_path_rate: float = 0.0
    # Activation checkpointing of every block while training (saves memory, costs one more forward).
    use_checkpoint: bool = False

    @property
    def grid(self) -> tuple[int, int, int]:
        """Tokens along (time, height, width) for the configured clip size."""
        side = self.img_size // self.patch_size
        return self.num_frames // self.tubelet_size, side, side

    @property
    def num_patches(self) -> int:
        t, h, w = self.grid
        return t * h * w

    def validate(self) -> None:
        _check_types(self)
        for name in (
            "embed_dim",
            "depth",
            "num_heads",
            "patch_size",
            "tubelet_size",
            "img_size",
            "num_frames",
        ):
            _require(self, name, getattr(self, name) > 0, "a positive integer")
        _require(self, "in_chans", self.in_chans > 0, "a positive integer")
        _require(self, "mlp_ratio", self.mlp_ratio > 0, "positive")
        _require(self, "norm_eps", self.norm_eps > 0, "positive")
        _require(self, "init_values", self.init_values >= 0, ">= 0 (0 disables layer scale)")
        _require(self, "drop_path_rate", 0 <= self.drop_path_rate < 1, "in [0, 1)")
        if self.embed_dim % self.num_heads:
            raise ConfigError(f"embed_dim={self.embed_dim} is not divisible by num_heads={self.num_heads}")
        if self.img_size % self.patch_size:
            raise ConfigError(f"img_size={self.img_size} is not divisible by patch_size={self.patch_size}")
        if self.num_frames % self.tubelet_size:
            raise ConfigError(
                f"num_frames={self.num_frames} is not divisible by tubelet_size={self.tubelet_size}"
            )


@dataclass
class ClassifierConfig(ViTConfig):
    """Encoder + mean pooling + ``fc_norm`` + linear head (docs/method.md §2)."""

    # 0 gives an identity head: the model then returns the pooled features.
    num_classes: int = 400
    head_drop_rate: float = 0.0
    # The new head's weight and bias are multiplied by this at init (VideoMAE protocol).
    init_scale: float = 0.001
    # LayerNorm eps after pooling; 1e-6 in the original project, 1e-5 in Hugging Face's port.
    fc_norm_eps: float = 1e-6

    def validate(self) -> None:
        super().validate()
        _require(self, "num_classes", self.num_classes >= 0, ">= 0 (0 = identity head)")
        _require(self, "head_drop_rate", 0 <= self.head_drop_rate < 1, "in [0, 1)")
        _require(self, "fc_norm_eps", self.fc_norm_eps > 0, "positive")

    def encoder_config(self) -> ViTConfig:
        """The encoder part alone (drops the classifier fields)."""
        names = {f.name for f in dataclasses.fields(ViTConfig)}
        return ViTConfig(**{k: v for k, v in dataclasses.asdict(self).items() if k in names})


def check_class_names(names: Sequence[str] | None, num_classes: int) -> list[str] | None:
    """``names`` as a list once they fit ``num_classes`` outputs: non-empty, unique strings."""
    if names is None:
        return None
    if isinstance(names, (str, bytes)) or not isinstance(names, Sequence):
        raise ConfigError(f"class names must be a list of strings, got {type(names).__name__}")
    names = list(names)
    if len(names) != num_classes:
        raise ConfigError(f"{len(names)} class names for a head of {num_classes} classes")
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"class names must be non-empty strings, got {name!r}")
    repeated = sorted(name for name, count in collections.Counter(names).items() if count > 1)
    if repeated:
        raise ConfigError(f"class names must be unique; repeated: {', '.join(map(repr, repeated))}")
    return names or None


@dataclass
class HeadConfig:
    """One pre-training head: target name, width (from ``mme.objectives.head_specs``), activation."""

    name: str
    dim: int = 0
    activation: str = "identity"

    def validate(self) -> None:
        _check_types(self)
        if not self.name.isidentifier():
            raise ConfigError(f"head name {self.name!r} must be a Python identifier (letters, digits, _)")
        if self.dim <= 0:
            raise ConfigError(
                f"head {self.name!r} has no width: give its dim and activation "
                "(mme.objectives.head_specs gives those of a known target)"
            )
        if self.activation not in HEAD_ACTIVATIONS:
            raise ConfigError(
                f"head {self.name!r}: activation {self.activation!r} is not one of "
                f"{', '.join(HEAD_ACTIVATIONS)}"
            )


def default_heads() -> list[HeadConfig]:
    """The released recipe's heads at default target settings: HOG (108) and trajectories (32)."""
    return [HeadConfig("hog", 108), HeadConfig("traj", 32)]


@dataclass
class MMEPretrainConfig:
    """MME pre-training model (docs/method.md §2–3); decoder blocks share the encoder's block settings."""

    encoder: ViTConfig = field(default_factory=ViTConfig)
    decoder_embed_dim: int = 192
    decoder_depth: int = 1
    decoder_num_heads: int = 6
    # Hidden width of every head (Linear(d, 512) -> GELU -> Linear(512, C)); 0 gives one Linear
    # (VideoMAE's pixel head).
    head_hidden_dim: int = 512
    heads: list[HeadConfig] = field(default_factory=default_heads)

    def validate(self) -> None:
        _check_types(self)
        self.encoder.validate()
        _require(self, "decoder_embed_dim", self.decoder_embed_dim > 0, "a positive integer")
        _require(self, "decoder_depth", self.decoder_depth >= 0, ">= 0")
        _require(self, "decoder_num_heads", self.decoder_num_heads > 0, "a positive integer")
        _require(self, "head_hidden_dim", self.head_hidden_dim >= 0, ">= 0 (0 = a single Linear)")
        if self.decoder_embed_dim % self.decoder_num_heads:
            raise ConfigError(
                f"decoder_embed_dim={self.decoder_embed_dim} is not divisible by "
                f"decoder_num_heads={self.decoder_num_heads}"
            )
        if not self.heads:
            raise ConfigError("heads is empty: the pre-training model needs at least one prediction head")
        for head in self.heads:
            head.validate()
        names = [h.name for h in self.heads]
        if len(set(names)) != len(names):
            raise ConfigError(f"head names must be unique, got {names}")


def parse_heads(value: Any) -> list[HeadConfig]:
    """Heads from a list of ``{name, dim, activation}`` dicts or HeadConfig objects."""
    if isinstance(value, (HeadConfig, dict)):
        value = [value]
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ConfigError(f"heads must be a list of {{name, dim, activation}} items, got {value!r}")
    heads = []
    for item in value:
        if isinstance(item, HeadConfig):
            heads.append(dataclasses.replace(item))
        elif isinstance(item, str):
            raise ConfigError(
                f"head {item!r} has no width: give {{name, dim, activation}} "
                f"(mme.objectives.head_specs([{item!r}]) gives a known target's)"
            )
        elif isinstance(item, dict) or hasattr(item, "keys"):
            spec = dict(item)
            unknown = set(spec) - {"name", "dim", "activation"}
            if unknown or "name" not in spec:
                raise ConfigError(f"a head takes keys name, dim, activation; got {sorted(spec)}")
            heads.append(HeadConfig(**spec))
        else:
            raise ConfigError(f"cannot read a head from {item!r}")
    return heads


ModelConfig = ClassifierConfig | MMEPretrainConfig


def apply_overrides(config: ModelConfig, overrides: Mapping[str, Any]) -> ModelConfig:
    """A validated copy of ``config`` with ``overrides`` (encoder fields flat or as ``encoder={...}``)."""
    values = dict(overrides)
    if isinstance(config, MMEPretrainConfig):
        nested = values.pop("encoder", {})
        encoder = dataclasses.asdict(nested) if isinstance(nested, ViTConfig) else dict(nested)
        flat = _field_names(ViTConfig) - _field_names(MMEPretrainConfig)
        encoder.update({key: values.pop(key) for key in list(values) if key in flat})
        values["encoder"] = _replace(config.encoder, encoder, "encoder setting", _field_names(ViTConfig))
        if "heads" in values:
            values["heads"] = parse_heads(values["heads"])
        known = (_field_names(MMEPretrainConfig) | _field_names(ViTConfig)) - {"encoder"}
    else:
        known = _field_names(type(config))
    config = _replace(config_from_dict(type(config), config_to_dict(config)), values, "model setting", known)
    config.validate()
    return config


def _replace(config: Any, values: dict[str, Any], kind: str, known: set[str]) -> Any:
    unknown = [key for key in values if key not in _field_names(type(config))]
    if unknown:
        raise ConfigError(f"unknown {kind} {unknown[0]!r}; known settings: {', '.join(sorted(known))}")
    return dataclasses.replace(config, **values)


def config_to_dict(config: ModelConfig | ViTConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a config dataclass from a dict (a checkpoint's JSON); unknown keys are an error."""
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
    unknown = set(data) - _field_names(cls)
    if unknown:
        raise ConfigError(
            f"{cls.__name__}: unknown setting(s) {sorted(unknown)}; "
            f"known: {', '.join(sorted(_field_names(cls)))}"
        )
    values = dict(data)
    if cls is MMEPretrainConfig:
        if "encoder" in values:
            values["encoder"] = config_from_dict(ViTConfig, values["encoder"])
        if "heads" in values:
            values["heads"] = parse_heads(values["heads"])
    return cls(**values)


def _field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _require(config: object, name: str, ok: bool, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{name}={getattr(config, name)!r} is invalid: expected {expected}")


def _check_types(config: object) -> None:
    """Reject wrongly typed values early (a YAML ``"12"`` for an int), naming the field."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        expected = hints[f.name]
        if expected is bool:
            ok = isinstance(value, bool)
        elif expected is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif expected is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if ok:
                object.__setattr__(config, f.name, float(value))
        elif expected is str:
            ok = isinstance(value, str)
        elif isinstance(expected, type) and dataclasses.is_dataclass(expected):
            ok = isinstance(value, expected)
        else:
            ok = isinstance(value, list)
        if not ok:
            raise ConfigError(
                f"{f.name}={value!r} has the wrong type: expected {getattr(expected, '__name__', expected)}"
            )
