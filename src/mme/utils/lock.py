"""An advisory lock on a file, so that two processes never write one folder at the same time."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from mme.errors import ConfigError


@contextlib.contextmanager
def exclusive(path: Path, busy: str) -> Iterator[None]:
    """Hold ``path`` locked; raise ``ConfigError(busy)`` when another process holds it."""
    try:
        import fcntl
    except ImportError:  # not POSIX (Windows): no advisory locks, run unguarded
        yield
        return
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError(busy) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
