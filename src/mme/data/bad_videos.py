"""Bad videos counted across workers, epochs and ranks: one JSON-lines file per process, read together."""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Mapping
from pathlib import Path

from mme.errors import DataError

_log = logging.getLogger("mme.data")
PATTERN = "bad_videos-*.jsonl"


def too_many_bad(found: Mapping[str, str], total: int, max_fraction: float, what: str) -> str | None:
    """The error message when more of ``total`` videos than ``max_fraction`` are bad, else None."""
    limit = int(max_fraction * total)
    if len(found) <= limit:
        return None
    shown = "\n".join(f"  {path}: {reason}" for path, reason in list(found.items())[:20])
    more = f"\n  ... and {len(found) - 20} more" if len(found) > 20 else ""
    return (
        f"{len(found)} of {total} videos are bad, more than data.max_bad_fraction="
        f"{max_fraction} allows ({limit}); {what}:\n{shown}{more}"
    )


class BadVideoLog:
    """Record bad videos and enforce the tolerated fraction."""

    def __init__(
        self, folder: str | os.PathLike[str] | None, dataset_size: int, max_fraction: float = 0.01
    ) -> None:
        if folder is None:
            folder = tempfile.mkdtemp(prefix="mme-bad-videos-")
            # Removed when this process exits; loader workers leave through os._exit (forked) or
            # never register it (spawned), so they cannot remove it under the main process.
            atexit.register(shutil.rmtree, folder, True)
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.dataset_size = dataset_size
        self.max_fraction = max_fraction
        self.known: set[str] = set()  # seen by this process (to avoid drawing them as replacements)

    def _own_file(self) -> Path:
        return self.folder / f"bad_videos-{socket.gethostname()}-{os.getpid()}.jsonl"

    def record(self, path: str | os.PathLike[str], reason: str) -> None:
        """Log and store one bad video, then raise DataError if there are now too many."""
        path = str(path)
        first_time = path not in self.known
        self.known.add(path)
        if first_time:
            line = json.dumps({"path": path, "reason": reason}) + "\n"
            with open(self._own_file(), "a", encoding="utf-8") as handle:
                handle.write(line)
            _log.warning("bad video (replaced by another sample): %s: %s", path, reason)
        self.check()

    def bad_videos(self) -> dict[str, str]:
        """Every distinct bad video recorded in the folder, with its first reason."""
        found: dict[str, str] = {}
        for file in sorted(self.folder.glob(PATTERN)):
            try:
                lines = file.read_text(encoding="utf-8").splitlines()
            except OSError as error:
                raise DataError(f"cannot read bad-video record {file}: {error}") from error
            for line in lines:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line being written by another process right now
                found.setdefault(record["path"], record["reason"])
        return found

    @property
    def count(self) -> int:
        return len(self.bad_videos())

    def check(self) -> None:
        """Raise DataError listing the bad videos when more than the tolerated fraction are bad."""
        message = too_many_bad(
            self.bad_videos(), self.dataset_size, self.max_fraction, f"records in {self.folder}"
        )
        if message is not None:
            raise DataError(message)
