"""mme's own model format: a folder (or one ``.safetensors``) with weights and the rebuilding config."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from torch import nn

import mme
from mme.errors import CheckpointError, ConfigError
from mme.models.config import (
    ClassifierConfig,
    MMEPretrainConfig,
    ModelConfig,
    config_from_dict,
    config_to_dict,
)
from mme.models.registry import model_kind
from mme.models.storage import atomic_folder, write_safetensors
from mme.utils.atomic import atomic_write_json
from mme.utils.jsonfile import read_json

FORMAT = "mme"
FORMAT_VERSION = 1


def model_config_dict(model: nn.Module) -> dict[str, Any]:
    """What ``config.json`` (and a training checkpoint's ``model_config``) holds, plus ``class_names``."""
    config = _config_of(model)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": model_kind(config),
        "name": getattr(model, "model_name", None),
        "config": config_to_dict(config),
        "mme_version": mme.__version__,
    }
    names = getattr(model, "class_names", None)
    if names is not None:
        payload["class_names"] = names
    return payload


def _config_of(model: nn.Module) -> ModelConfig:
    config = getattr(model, "config", None)
    if not isinstance(config, (ClassifierConfig, MMEPretrainConfig)):
        raise CheckpointError(
            f"{type(model).__name__} is not an mme model (no ClassifierConfig/MMEPretrainConfig)"
        )
    return config


def config_from_payload(payload: dict[str, Any], source: str = "model config") -> ModelConfig:
    """Rebuild a model config from :func:`model_config_dict`'s output (or a bare config dict)."""
    if "config" in payload and "kind" in payload:
        if int(payload.get("format_version", 1)) > FORMAT_VERSION:
            raise CheckpointError(
                f"{source}: written by a newer mme (format_version {payload['format_version']}); upgrade mme"
            )
        kind, data = payload["kind"], payload["config"]
    else:
        kind, data = ("pretrain" if "encoder" in payload else "classifier"), payload
    if kind not in ("classifier", "pretrain"):
        raise CheckpointError(f"{source}: unknown model kind {kind!r} (expected 'classifier' or 'pretrain')")
    cls = MMEPretrainConfig if kind == "pretrain" else ClassifierConfig
    try:
        config = config_from_dict(cls, data)
        config.validate()
    except ConfigError as error:
        raise CheckpointError(f"{source}: invalid model config: {error}") from error
    return config


def save_model(model: nn.Module, dst: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Write ``model`` in mme's format: a folder, or one file if ``dst`` ends in ``.safetensors``."""
    dst = Path(dst)
    if dst.suffix == ".safetensors":
        if dst.exists() and not overwrite:
            raise CheckpointError(f"{dst} already exists; refusing to overwrite it (use overwrite=True)")
        payload = model_config_dict(model)
        write_safetensors(dst, model.state_dict(), {"mme_config": json.dumps(payload)})
        return dst
    with atomic_folder(dst, overwrite=overwrite) as tmp:
        write_model_files(model, tmp)
    return dst


def write_model_files(model: nn.Module, folder: Path) -> None:
    """``model.safetensors`` + ``config.json`` into an existing (temporary) folder."""
    payload = model_config_dict(model)
    write_safetensors(folder / "model.safetensors", model.state_dict(), {"mme_config": json.dumps(payload)})
    atomic_write_json(folder / "config.json", payload)


def model_intact(folder: Path) -> bool:
    """An mme model folder whose config parses and whose weights file is complete."""
    from safetensors import SafetensorError, safe_open

    config = read_json(folder / "config.json")
    weights = folder / "model.safetensors"
    if not isinstance(config, dict) or config.get("format") != FORMAT or not weights.is_file():
        return False
    try:
        # safe_open checks every tensor's byte range against the file size without loading it.
        with safe_open(str(weights), framework="pt") as handle:
            return bool(list(handle.keys()))
    except (SafetensorError, OSError):
        return False
