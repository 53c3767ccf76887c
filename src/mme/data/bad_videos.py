"""Counting bad videos across data-loader workers, epochs and ranks.

A video that cannot be decoded, or has fewer frames than a clip needs, is replaced by another
sample and recorded here; past ``max_fraction`` of the dataset the run stops with a DataError
listing them (a handful of broken files is normal in K400; hundreds mean a wrong path or codec).

How the count is shared: workers are separate processes (restarted every epoch unless
persistent), so in-memory counters do not add up. Each process appends to *its own* file
``<folder>/bad_videos-<host>-<pid>.jsonl`` (one JSON line per bad video: path, reason) and counts
the distinct paths over all ``bad_videos-*.jsonl`` files of the folder. No two processes write
one file, so this works with fork and spawn workers and, when the folder is shared, across
ranks and nodes; a resumed run that reuses its folder keeps what it learned. The folder is the
run's output folder when the trainer passes it (a private temporary folder otherwise), and the
files double as the report of which videos were skipped.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
from pathlib import Path

from mme.errors import DataError

_log = logging.getLogger("mme.data")
PATTERN = "bad_videos-*.jsonl"


class BadVideoLog:
    """Record bad videos and enforce the tolerated fraction (see module docstring)."""

    def __init__(
        self, folder: str | os.PathLike[str] | None, dataset_size: int, max_fraction: float = 0.01
    ) -> None:
        if folder is None:
            folder = tempfile.mkdtemp(prefix="mme-bad-videos-")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.dataset_size = dataset_size
        self.max_fraction = max_fraction
        self.known: set[str] = set()  # seen by this process (to avoid drawing them as replacements)

    @property
    def limit(self) -> int:
        """The most bad videos tolerated."""
        return int(self.max_fraction * self.dataset_size)

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
        found = self.bad_videos()
        if len(found) <= self.limit:
            return
        shown = "\n".join(f"  {path}: {reason}" for path, reason in list(found.items())[:20])
        more = f"\n  ... and {len(found) - 20} more" if len(found) > 20 else ""
        raise DataError(
            f"{len(found)} of {self.dataset_size} videos are bad, more than data.max_bad_fraction="
            f"{self.max_fraction} allows ({self.limit}); records in {self.folder}:\n{shown}{more}"
        )
