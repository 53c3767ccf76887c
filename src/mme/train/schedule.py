"""Per-step schedules: linear warmup then cosine decay (lr), and a plain cosine (weight decay).

The schedule is a pure function of the optimiser step, so resuming a run only needs the step
counter: nothing about the schedule itself is stored in checkpoints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class CosineSchedule:
    """``warmup_start → base`` linearly over ``warmup_steps``, then cosine ``base → final`` until
    ``total_steps``; constant ``final`` afterwards (e.g. a run extended past its plan)."""

    base: float
    final: float
    total_steps: int
    warmup_steps: int = 0
    warmup_start: float = 0.0

    def __post_init__(self) -> None:
        if self.total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {self.total_steps}")
        if not 0 <= self.warmup_steps <= self.total_steps:
            raise ValueError(f"warmup_steps must be in [0, {self.total_steps}], got {self.warmup_steps}")

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.warmup_start + (self.base - self.warmup_start) * step / self.warmup_steps
        decay_steps = self.total_steps - self.warmup_steps
        if decay_steps == 0 or step >= self.total_steps:
            return self.final
        progress = (step - self.warmup_steps) / decay_steps
        return self.final + 0.5 * (self.base - self.final) * (1.0 + math.cos(math.pi * progress))


def apply_schedules(
    optimizer: torch.optim.Optimizer, step: int, lr: CosineSchedule, weight_decay: CosineSchedule
) -> tuple[float, float]:
    """Set every group's lr and weight decay for ``step``; returns the (unscaled) values.

    Groups carry ``lr_scale`` (layer-wise decay) and ``wd_scale`` (0 for biases, norms, tokens)
    set by :func:`mme.train.optim.param_groups`.
    """
    lr_value, wd_value = lr(step), weight_decay(step)
    for group in optimizer.param_groups:
        group["lr"] = lr_value * group.get("lr_scale", 1.0)
        group["weight_decay"] = wd_value * group.get("wd_scale", 1.0)
    return lr_value, wd_value
