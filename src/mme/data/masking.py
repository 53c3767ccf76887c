"""Which tokens are masked (docs/method.md §1): ``bool (N,)``, True = masked, same count per mask."""

from __future__ import annotations

import numpy as np
import torch

from mme.errors import ConfigError


class MaskGenerator:
    """Draw masks of one kind for a token grid ``(Tp, Hp, Wp)``."""

    def __init__(self, grid: tuple[int, int, int], ratio: float, kind: str = "tube") -> None:
        if kind not in ("tube", "random"):
            raise ConfigError(f"mask type {kind!r} is not one of tube, random")
        if not 0.0 < ratio < 1.0:
            raise ConfigError(f"mask ratio must be in (0, 1), got {ratio}")
        self.grid = tuple(int(g) for g in grid)
        self.kind = kind
        self.ratio = ratio
        temporal, rows, cols = self.grid
        per_frame = rows * cols
        if kind == "tube":
            self.masked_per_frame = round(ratio * per_frame)
            self.num_masked = self.masked_per_frame * temporal
        else:
            self.num_masked = round(ratio * temporal * per_frame)
        self.num_tokens = temporal * per_frame
        if not 0 < self.num_masked < self.num_tokens:
            raise ConfigError(f"mask ratio {ratio} masks {self.num_masked} of {self.num_tokens} tokens")

    def __call__(self, rng: np.random.Generator) -> torch.Tensor:
        temporal, rows, cols = self.grid
        if self.kind == "tube":
            spatial = np.zeros(rows * cols, dtype=bool)
            spatial[rng.permutation(rows * cols)[: self.masked_per_frame]] = True
            mask = np.tile(spatial, temporal)
        else:
            mask = np.zeros(self.num_tokens, dtype=bool)
            mask[rng.permutation(self.num_tokens)[: self.num_masked]] = True
        return torch.from_numpy(mask)

    def __repr__(self) -> str:
        shown = f"grid={self.grid}, kind={self.kind!r}, ratio={self.ratio}, masked={self.num_masked}"
        return f"MaskGenerator({shown})"
