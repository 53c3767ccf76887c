"""Stochastic depth (timm is not a dependency)."""

from __future__ import annotations

import torch
from torch import nn


class DropPath(nn.Module):
    """Zero the branch for a random ``prob`` of the samples, scale the rest by ``1 / (1 - prob)``."""

    def __init__(self, prob: float) -> None:
        super().__init__()
        if not 0.0 <= prob < 1.0:
            raise ValueError(f"drop-path probability must be in [0, 1), got {prob}")
        self.prob = prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.prob == 0.0:
            return x
        keep = 1.0 - self.prob
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        mask = x.new_empty(shape).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"prob={self.prob}"
