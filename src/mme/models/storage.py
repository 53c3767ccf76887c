"""Model folders written atomically: built under a temporary name, renamed (old one moved aside)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch

from mme.errors import CheckpointError
from mme.utils.atomic import TMP_MARKER, atomic_path, give_default_mode


@contextlib.contextmanager
def atomic_folder(final: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``final``; on success it becomes ``final``."""
    final = Path(final)
    if final.exists() and not overwrite:
        raise CheckpointError(
            f"{final} already exists; refusing to overwrite it (use --force / overwrite=True)"
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{final.name}{TMP_MARKER}", dir=final.parent))
    try:
        give_default_mode(tmp)  # mkdtemp makes it 0700: the finished folder would be private
        yield tmp
        _replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _replace(new: Path, final: Path) -> None:
    if not final.exists():
        os.rename(new, final)
        return
    aside = Path(tempfile.mkdtemp(prefix=f"{final.name}{TMP_MARKER}old-", dir=final.parent))
    aside.rmdir()
    os.rename(final, aside)
    try:
        os.rename(new, final)
    except OSError:
        os.rename(aside, final)
        raise
    if aside.is_dir():
        shutil.rmtree(aside)
    else:
        aside.unlink()


def write_safetensors(
    path: Path, state: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
) -> None:
    """``state`` as a safetensors file (atomic: temporary name, then rename)."""
    from safetensors.torch import save_file

    tensors = {key: value.detach().contiguous().cpu() for key, value in state.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", **(metadata or {})})
