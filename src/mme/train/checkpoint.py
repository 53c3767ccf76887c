"""Training checkpoints: atomic writes, keep-last-k, best, latest intact (keys: docs/training.md)."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mme.errors import CheckpointError
from mme.utils.atomic import atomic_path
from mme.utils.logging import RunLog

CHECKPOINT_FORMAT = "mme-train-checkpoint"
CHECKPOINT_VERSION = 1
REQUIRED_KEYS = ("model", "model_config", "step", "epoch", "config")
RESUME_KEYS = ("optimizer", "scaler", "sampler", "rng")
_STEP_NAME = re.compile(r"^step-(\d+)\.pt$")


def capture_rng(device: torch.device | None = None) -> dict[str, Any]:
    """This process's RNG states in a form ``torch.load(weights_only=True)`` accepts."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": None,
    }
    if device is not None and device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict[str, Any], device: torch.device | None = None) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["name"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if device is not None and device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)


def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically (a kill mid-write leaves the old file intact)."""
    path = Path(path)
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | Path, for_resume: bool = False) -> dict[str, Any]:
    """Read a training checkpoint; a missing, corrupt or foreign file is a CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a truncated/corrupt zip or pickle
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(error).__name__}: {error})") from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not an mme training checkpoint (no format {CHECKPOINT_FORMAT!r})")
    needed = REQUIRED_KEYS + (RESUME_KEYS if for_resume else ())
    missing = [key for key in needed if key not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}")
    return state


class CheckpointDir:
    """The ``checkpoints/`` folder of a run: ``step-<8 digits>.pt`` (last k) and ``best.pt``."""

    def __init__(self, folder: str | Path, keep_last: int = 2) -> None:
        if keep_last < 1:
            raise ValueError(f"keep_last must be >= 1, got {keep_last}")
        self.folder = Path(folder)
        self.keep_last = keep_last

    @property
    def best_path(self) -> Path:
        return self.folder / "best.pt"

    def step_path(self, step: int) -> Path:
        return self.folder / f"step-{step:08d}.pt"

    def steps(self) -> list[tuple[int, Path]]:
        """Checkpoints by step, oldest first (temporary files of a killed write are ignored)."""
        if not self.folder.is_dir():
            return []
        found = []
        for path in self.folder.iterdir():
            match = _STEP_NAME.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
        return sorted(found)

    def has_any(self) -> bool:
        return bool(self.steps()) or self.best_path.exists()

    def save(self, state: dict[str, Any]) -> Path:
        path = save_checkpoint(state, self.step_path(int(state["step"])))
        for _, old in self.steps()[: -self.keep_last]:
            old.unlink(missing_ok=True)
        return path

    def save_best(self, state: dict[str, Any]) -> Path:
        return save_checkpoint(state, self.best_path)

    def latest(self, log: RunLog | None = None) -> tuple[Path, dict[str, Any]] | None:
        """The newest checkpoint that loads; a corrupt newer one is skipped with a warning."""
        for _, path in reversed(self.steps()):
            try:
                return path, load_checkpoint(path, for_resume=True)
            except CheckpointError as error:
                if log is not None:
                    log.warning("skipping checkpoint: %s; trying the previous one", error)
        return None
