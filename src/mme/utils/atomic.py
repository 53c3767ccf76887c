"""Atomic file writes: a temporary name in the same folder, then ``os.replace`` onto the final name."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

TMP_MARKER = ".tmp-"


def is_temp_name(path: str | os.PathLike[str]) -> bool:
    """True for the temporary names these helpers create (so sweepers can recognise them)."""
    return TMP_MARKER in Path(path).name


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; rename it onto ``final`` on success, remove it on error."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f"{final.name}{TMP_MARKER}", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # After the writer, not before: mkstemp creates 0600, and some writers replace the file
        # with their own 0600 temporary (safetensors >= 0.5 does).
        give_default_mode(tmp)
        _fsync_file(tmp)
        os.replace(tmp, final)
        _fsync_dir(final.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_write(
    final: str | os.PathLike[str], mode: str = "w", encoding: str | None = "utf-8"
) -> Iterator[IO[Any]]:
    """Open a temporary file for writing; rename it onto ``final`` when the block succeeds."""
    if "b" in mode:
        encoding = None
    with atomic_path(final) as tmp, open(tmp, mode, encoding=encoding) as handle:
        yield handle


def atomic_write_text(final: str | os.PathLike[str], text: str) -> None:
    with atomic_write(final, "w") as handle:
        handle.write(text)


def atomic_write_json(final: str | os.PathLike[str], data: Any, indent: int | None = 2) -> None:
    with atomic_write(final, "w") as handle:
        json.dump(data, handle, indent=indent, sort_keys=False)
        handle.write("\n")


def give_default_mode(path: str | os.PathLike[str]) -> None:
    """Give ``path`` the mode a plain ``open()``/``mkdir()`` would (temporaries are created private)."""
    full = 0o777 if Path(path).is_dir() else 0o666
    os.chmod(path, full & ~_current_umask())


def _current_umask() -> int:
    """The process umask, from /proc where possible (``os.umask()`` sets it while reading)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not every platform can open a folder.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
