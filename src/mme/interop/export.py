"""Export a classifier as a Hugging Face ``VideoMAEForVideoClassification`` folder (docs/models.md)."""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from mme.errors import CheckpointError
from mme.interop.adapters.hf import classifier_to_hf, hf_preprocessor_config
from mme.models.storage import atomic_folder, write_safetensors
from mme.models.vit import VideoClassifier
from mme.utils.atomic import atomic_write_json


def export_hf(model: nn.Module, dst: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Write config.json (``id2label``), model.safetensors and preprocessor_config.json for ``model``."""
    dst = Path(dst)
    with atomic_folder(dst, overwrite=overwrite) as tmp:
        write_hf_files(model, tmp)
    return dst


def write_hf_files(model: nn.Module, folder: Path) -> None:
    if not isinstance(model, VideoClassifier):
        raise CheckpointError(
            f"Hugging Face export takes a classifier (VideoClassifier), got {type(model).__name__}; "
            "load a pre-training checkpoint with load_classifier(path, num_classes=...) first"
        )
    state, config = classifier_to_hf(model.state_dict(), model.config, model.class_names)
    config["torch_dtype"] = str(model.fc_norm.weight.dtype).removeprefix("torch.")
    write_safetensors(folder / "model.safetensors", state)
    atomic_write_json(folder / "config.json", config)
    atomic_write_json(folder / "preprocessor_config.json", hf_preprocessor_config(model.config))
