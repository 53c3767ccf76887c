"""Decoded videos kept in memory per process (``data.cache_mb``; docs/data.md)."""

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
        """Keep ``frames`` (the caller checked :meth:`has_room`), read-only so no item changes them."""
        frames.setflags(write=False)
        self._videos[key] = frames
        self.used += frames.nbytes

    def __len__(self) -> int:
        return len(self._videos)
