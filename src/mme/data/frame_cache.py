"""Decoded videos kept in memory (``data.cache_mb``), for small datasets read many times.

Decoding is most of a data-loader item's cost on small videos (opening the container, decoding,
converting YUV to RGB): a pre-training item of the demo's dataset with offline trajectories takes
7.0 ms from the file and 0.65 ms from memory (docs/data.md). A dataset read for many epochs or
views (the demo; a multi-view test) can decode each video once and keep its frames. The cache
lives in one process: each data-loader worker fills its own (persistent workers keep theirs
across epochs), so the memory used is up to ``workers x cache_mb``. Videos that would overflow
the budget are not cached and are decoded per item as usual.
"""

from __future__ import annotations

import numpy as np


class FrameCache:
    """Every frame of each cached video, ``uint8 (F, H, W, 3)``, keyed by path, within a budget."""

    def __init__(self, budget_mb: float) -> None:
        self.budget = int(budget_mb * 2**20)
        self.used = 0
        self._videos: dict[str, np.ndarray] = {}

    def get(self, key: str) -> np.ndarray | None:
        return self._videos.get(key)

    def has_room(self, nbytes: int) -> bool:
        return self.used + nbytes <= self.budget

    def put(self, key: str, frames: np.ndarray) -> None:
        """Keep ``frames`` (the caller checked :meth:`has_room`); read-only, so that no item can
        change what later items read."""
        frames.setflags(write=False)
        self._videos[key] = frames
        self.used += frames.nbytes

    def __len__(self) -> int:
        return len(self._videos)
