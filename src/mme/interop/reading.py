"""Read any supported checkpoint layout; pickles only via ``weights_only`` plus a small allow-list."""

from __future__ import annotations

import argparse
import json
import pathlib
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mme.errors import CheckpointError
from mme.utils.logging import get_logger

SUPPORTED_LAYOUTS = """supported checkpoint layouts:
  - an mme model folder (config.json with "format": "mme" + model.safetensors), or that model.safetensors
  - an mme training checkpoint (.pt with "model" and "model_config")
  - an original MME/VideoMAE checkpoint (.pth: the state dict under "model", "module", "model_state" or
    "state_dict", or bare), fine-tuned, or pre-trained with "encoder." keys
  - a DeepSpeed checkpoint: mp_rank_00_model_states.pt, or a folder holding it (e.g. checkpoint-best/)
  - a Hugging Face VideoMAE folder (config.json with "model_type": "videomae" + model.safetensors
    or pytorch_model.bin)"""

DEEPSPEED_FILE = "mp_rank_00_model_states.pt"
STATE_KEYS = ("model", "module", "model_state", "state_dict")

# Classes the original training scripts pickle next to the weights; safe to rebuild.
_ALLOWED_GLOBALS: list[Any] = [
    argparse.Namespace,
    pathlib.Path,
    pathlib.PosixPath,
    pathlib.PurePosixPath,
    pathlib.WindowsPath,
    pathlib.PureWindowsPath,
]


@dataclass
class RawCheckpoint:
    """A checkpoint's tensors under their original names, plus what describes the architecture."""

    source: Path
    layout: str  # "mme" | "mme-train" | "original" | "deepspeed" | "hf"
    state: dict[str, torch.Tensor]
    mme_config: dict[str, Any] | None = None  # our config payload (config.json / model_config)
    hf_config: dict[str, Any] | None = None  # Hugging Face config.json


def read_checkpoint(path: str | Path, trust_pickle: bool = False) -> RawCheckpoint:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or folder")
    if path.is_dir():
        return _read_folder(path, trust_pickle)
    if path.name == "config.json":
        return _read_folder(path.parent, trust_pickle)
    if path.suffix == ".safetensors":
        return _read_safetensors_file(path)
    return _read_torch_file(path, trust_pickle)


def _read_folder(folder: Path, trust_pickle: bool) -> RawCheckpoint:
    config_path = folder / "config.json"
    if config_path.is_file():
        config = _read_json(config_path)
        if config.get("format") == "mme":
            weights = folder / "model.safetensors"
            if not weights.is_file():
                raise CheckpointError(f"{folder}: mme model folder without model.safetensors")
            return RawCheckpoint(folder, "mme", _load_safetensors(weights), mme_config=config)
        if config.get("model_type") == "videomae":
            return RawCheckpoint(folder, "hf", _read_hf_weights(folder, trust_pickle), hf_config=config)
        raise CheckpointError(
            f'{config_path}: neither an mme config ("format": "mme") nor a Hugging Face VideoMAE config '
            f'("model_type": "videomae"; found {config.get("model_type")!r})\n{SUPPORTED_LAYOUTS}'
        )
    if (folder / DEEPSPEED_FILE).is_file():
        return _read_torch_file(folder / DEEPSPEED_FILE, trust_pickle)
    latest = folder / "latest"
    if latest.is_file():
        tag = latest.read_text(encoding="utf-8").strip()
        if (folder / tag / DEEPSPEED_FILE).is_file():
            return _read_torch_file(folder / tag / DEEPSPEED_FILE, trust_pickle)
    raise CheckpointError(f"{folder}: no checkpoint found in this folder\n{SUPPORTED_LAYOUTS}")


def _read_hf_weights(folder: Path, trust_pickle: bool) -> dict[str, torch.Tensor]:
    if (folder / "model.safetensors").is_file():
        return _load_safetensors(folder / "model.safetensors")
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(_read_json(index).get("weight_map", {}).values()))
        if not shards:
            raise CheckpointError(f"{index}: no weight_map")
        state: dict[str, torch.Tensor] = {}
        for shard in shards:
            state.update(_load_safetensors(folder / shard))
        return state
    if (folder / "pytorch_model.bin").is_file():
        loaded = _torch_load(folder / "pytorch_model.bin", trust_pickle)
        state = _tensor_dict(loaded)
        if state is None:
            raise CheckpointError(f"{folder / 'pytorch_model.bin'}: not a state dict of tensors")
        return state
    raise CheckpointError(
        f"{folder}: Hugging Face config.json but no model.safetensors, model.safetensors.index.json "
        "or pytorch_model.bin"
    )


def _read_safetensors_file(path: Path) -> RawCheckpoint:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{path}: not a readable safetensors file ({error})") from error
    if "mme_config" in metadata:
        config = json.loads(metadata["mme_config"])
        return RawCheckpoint(path, "mme", _load_safetensors(path), mme_config=config)
    sibling = path.parent / "config.json"
    if sibling.is_file():
        folder = _read_folder(path.parent, trust_pickle=False)
        folder.state = _load_safetensors(path)
        return folder
    raise CheckpointError(
        f'{path}: a safetensors file without an mme config (no "mme_config" metadata, no config.json '
        f"beside it)\n{SUPPORTED_LAYOUTS}"
    )


def _read_torch_file(path: Path, trust_pickle: bool) -> RawCheckpoint:
    loaded = _torch_load(path, trust_pickle)
    if isinstance(loaded, dict) and "model" in loaded and "model_config" in loaded:
        state = _tensor_dict(loaded["model"])
        if state is None or not isinstance(loaded["model_config"], dict):
            raise CheckpointError(
                f"{path}: mme training checkpoint whose 'model' or 'model_config' is malformed"
            )
        return RawCheckpoint(path, "mme-train", state, mme_config=loaded["model_config"])
    is_deepspeed = path.name.endswith("_model_states.pt") or (
        isinstance(loaded, dict) and "module" in loaded and ("ds_version" in loaded or "ds_config" in loaded)
    )
    state = _tensor_dict(loaded)
    if state is None and isinstance(loaded, dict):
        for key in STATE_KEYS:
            if key in loaded:
                state = _tensor_dict(loaded[key])
                if state is not None:
                    break
    if state is None:
        kind = type(loaded).__name__
        keys = f" with keys {sorted(map(str, loaded))[:10]}" if isinstance(loaded, dict) else ""
        raise CheckpointError(f"{path}: unknown checkpoint layout (a {kind}{keys})\n{SUPPORTED_LAYOUTS}")
    if any(key.startswith("videomae.") for key in state):
        raise CheckpointError(
            f"{path}: Hugging Face VideoMAE weights without their config.json; load the folder holding "
            "both (config.json + model.safetensors / pytorch_model.bin)"
        )
    return RawCheckpoint(path, "deepspeed" if is_deepspeed else "original", state)


def _tensor_dict(value: Any) -> dict[str, torch.Tensor] | None:
    """``value`` as a ``{name: tensor}`` dict, or None if it is not one."""
    if not isinstance(value, dict) or not value:
        return None
    if all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items()):
        return dict(value)
    return None


def _torch_load(path: Path, trust_pickle: bool) -> Any:
    if not (zipfile.is_zipfile(path) or _is_legacy_torch_file(path)):
        raise CheckpointError(
            f"{path}: not a checkpoint (neither a torch.save file nor safetensors)\n{SUPPORTED_LAYOUTS}"
        )
    try:
        with torch.serialization.safe_globals(_ALLOWED_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if trust_pickle:
            get_logger("mme.interop").warning(
                "%s: loading with weights_only=False because trust_pickle was given; unpickling can run "
                "code from the file, do this only for files you trust",
                path,
            )
            return _load_untrusted(path)
        needed = _unsafe_globals(path)
        what = f"it pickles {', '.join(needed)}" if needed else f"weights-only loading failed: {error}"
        raise CheckpointError(
            f"{path}: refusing to unpickle ({what}); if you trust this file, pass trust_pickle=True "
            "(mme convert --trust-pickle)"
        ) from error
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: cannot read this checkpoint ({error})") from error


def _load_untrusted(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
        pickle.UnpicklingError,
        AttributeError,
        ImportError,
    ) as error:
        raise CheckpointError(f"{path}: cannot read this checkpoint ({error})") from error


def _unsafe_globals(path: Path) -> list[str]:
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except (RuntimeError, ValueError, OSError, pickle.UnpicklingError):
        return []


def _is_legacy_torch_file(path: Path) -> bool:
    """torch.save's pre-1.6 format starts with a pickle protocol 2 header."""
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x80\x02"


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{path}: not a readable safetensors file ({error})") from error


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: not a readable JSON file ({error})") from error
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data
