"""What every training loop shares: mixed precision, the optimiser update, divergence checks.

:class:`Precision` gives the autocast context (bf16, fp16 or none) and, for fp16, a GradScaler.
:class:`Updater` turns micro-batch losses into optimiser steps: gradient accumulation
(``update_freq``; DDP's gradient all-reduce only on the last micro-batch), optional clipping,
scaler bookkeeping, and the per-step lr / weight-decay schedules.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping

import torch
import torch.distributed as dist
from torch import nn

from mme.errors import ConfigError, MMEError
from mme.train.schedule import CosineSchedule, apply_schedules

PRECISIONS = ("fp32", "bf16", "fp16")


class NonFiniteLossError(MMEError):
    """The loss became NaN/inf: the run stops before anything is written from that state."""


def check_finite(
    total: torch.Tensor, terms: Mapping[str, torch.Tensor], step: int, epoch: int
) -> tuple[float, dict[str, float]]:
    """The loss and its terms averaged over ranks, as floats; :class:`NonFiniteLossError` if not finite.

    Averaging first makes every rank see the same value, so all ranks stop together (a NaN on one
    rank alone would otherwise leave the others waiting in the gradient all-reduce).
    """
    packed = torch.stack([total.detach().float(), *(t.detach().float() for t in terms.values())])
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(packed)
        packed /= dist.get_world_size()
    values = packed.tolist()
    value, named = values[0], dict(zip(terms, values[1:], strict=True))
    if math.isfinite(value):
        return value, named
    shown = ", ".join(f"{name}={term:.4g}" for name, term in named.items())
    raise NonFiniteLossError(
        f"loss is {value} in step {step + 1} (epoch {epoch}); terms: {shown or 'none'}. "
        "The run stopped; the last checkpoint written before this step is intact "
        "(lower the lr, use bf16 instead of fp16, or enable optim.clip_grad)"
    )


class Precision:
    """``fp32``, ``bf16`` (autocast, no scaler) or ``fp16`` (autocast + GradScaler)."""

    def __init__(self, name: str, device: torch.device) -> None:
        if name not in PRECISIONS:
            raise ConfigError(f"runtime.precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
        self.name = name
        self.device_type = device.type
        self.dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[name]
        self.scaler = torch.amp.GradScaler(device.type) if name == "fp16" else None

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)


class Updater:
    """Backward + accumulation + clipping + optimiser step, with the schedules applied per step.

    ``step`` counts optimiser steps (the schedule position); it is what checkpoints store.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        precision: Precision,
        lr_schedule: CosineSchedule,
        wd_schedule: CosineSchedule,
        update_freq: int = 1,
        clip_grad: float | None = None,
        step: int = 0,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.precision = precision
        self.lr_schedule = lr_schedule
        self.wd_schedule = wd_schedule
        self.update_freq = update_freq
        self.clip_grad = clip_grad
        self.step = step
        self.micro = 0
        self.lr, self.weight_decay = apply_schedules(optimizer, step, lr_schedule, wd_schedule)
        self.grad_norm: float | None = None

    def set_step(self, step: int) -> None:
        """Continue the schedules at ``step`` (resume)."""
        self.step = step
        self.lr, self.weight_decay = apply_schedules(self.optimizer, step, self.lr_schedule, self.wd_schedule)

    @contextlib.contextmanager
    def accumulate(self) -> Iterator[None]:
        """Wrap forward + backward of one micro-batch; skips DDP's all-reduce until the last one."""
        last = (self.micro + 1) % self.update_freq == 0
        no_sync = getattr(self.model, "no_sync", None)
        with contextlib.nullcontext() if last or no_sync is None else no_sync():
            yield

    def backward(self, loss: torch.Tensor) -> bool:
        """Accumulate ``loss``'s gradients; step the optimiser after ``update_freq`` micro-batches.

        Returns True when an optimiser step happened.
        """
        loss = loss / self.update_freq
        scaler = self.precision.scaler
        (scaler.scale(loss) if scaler is not None else loss).backward()
        self.micro += 1
        if self.micro % self.update_freq:
            return False
        if scaler is not None:
            scaler.unscale_(self.optimizer)
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        if self.clip_grad is not None:
            self.grad_norm = float(torch.nn.utils.clip_grad_norm_(params, self.clip_grad))
        if scaler is not None:
            scaler.step(self.optimizer)
            scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.set_step(self.step + 1)
        return True
