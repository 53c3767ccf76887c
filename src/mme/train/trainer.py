"""One Trainer runs any task: the optimiser update, schedules, precision, epochs, checkpoints.

:meth:`Trainer.fit` asks the task for ``(loss, terms)`` per micro-batch (:meth:`Task.step`);
:class:`Updater` accumulates, clips and steps AdamW; logging, checkpoints and mid-epoch resume
happen here once for every task.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from mme.data.loader import TrainSampler, to_device
from mme.errors import ConfigError, MMEError
from mme.models import layer_id, model_config_dict
from mme.train.checkpoint import capture_rng, restore_rng
from mme.train.config_loader import to_dict
from mme.train.distributed import all_reduce_mean, gather_to_main
from mme.train.optim import build_adamw, fused_adamw_for, param_groups, scaled_lr
from mme.train.run import Run
from mme.utils.logging import Progress

PRECISIONS = ("fp32", "bf16", "fp16")


class NonFiniteLossError(MMEError):
    """The loss became NaN/inf: the run stops before anything is written from that state."""


def check_finite(
    total: torch.Tensor, terms: Mapping[str, torch.Tensor], step: int, epoch: int
) -> tuple[float, dict[str, float]]:
    """The loss and its terms averaged over ranks, as floats; :class:`NonFiniteLossError` if not finite.

    Averaging first makes all ranks stop together (else the others wait in the all-reduce).
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


@dataclass(frozen=True)
class CosineSchedule:
    """Linear warmup, then cosine ``base -> final``, then constant: a pure function of the step."""

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
    """Set every group's lr and weight decay for ``step`` (times its scales); returns the unscaled values."""
    lr_value, wd_value = lr(step), weight_decay(step)
    for group in optimizer.param_groups:
        group["lr"] = lr_value * group.get("lr_scale", 1.0)
        group["weight_decay"] = wd_value * group.get("wd_scale", 1.0)
    return lr_value, wd_value


class Updater:
    """Backward, accumulation, clipping and the optimiser step; ``step`` counts optimiser steps."""

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
        """Accumulate ``loss``'s gradients; True when it stepped (every ``update_freq`` micro-batches)."""
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


class StopTraining(Exception):
    """Raised inside an epoch when ``runtime.stop_after_steps`` is reached (after checkpointing)."""


class MeanMeter:
    """Running means of scalar metrics over an epoch (and over the last logging window)."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0

    def update(self, **values: float) -> None:
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0.0) + float(value)
        self.count += 1

    def means(self) -> dict[str, float]:
        return {name: total / max(self.count, 1) for name, total in self.sums.items()}


class Task(Protocol):
    """What :meth:`Trainer.fit` asks of a task."""

    def step(
        self, model: Callable[..., Any], batch: dict[str, Any], rng: np.random.Generator
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The loss of one micro-batch and its named terms (logged as ``loss_<name>``).

        ``model`` runs under the run's autocast; ``rng`` depends on (seed, rank, epoch, position) only.
        """
        ...

    def logged(self, batch: dict[str, Any]) -> dict[str, float]:
        """More values to log for one micro-batch as the loader gave it (on the host)."""
        ...

    def end_epoch(self, trainer: Trainer, epoch: int) -> dict[str, float]:
        """Work at the end of an epoch (validation, saved models); metrics for the epoch record."""
        ...


@dataclass
class FitResult:
    """The last finished epoch's ``means`` and why the job ``stopped`` early (None: every epoch ran)."""

    means: dict[str, float]
    stopped: str | None


class Trainer:
    """Model, optimiser, schedules, precision and sampler position of one training job."""

    def __init__(
        self,
        run: Run,
        model: nn.Module,
        sampler: TrainSampler,
        layer_decay: float = 1.0,
        find_unused_parameters: bool = False,
        clips_per_sample: int = 1,
    ) -> None:
        config = run.config
        optim, batch = config.optim, config.batch
        self.run = run
        self.config = config
        self.device = run.device
        self.sampler = sampler
        self.raw_model = model.to(self.device)
        world = run.env.world_size
        self.update_freq = batch.update_freq
        self.clips_per_sample = clips_per_sample
        self.global_batch = batch.per_gpu * world * batch.update_freq
        if world != batch.num_gpus:
            run.log.warning(
                "the recipe assumes %d GPU(s) but %d process(es) run; lr follows the actual global batch %d",
                batch.num_gpus,
                world,
                self.global_batch,
            )
        self.micro_per_epoch = (sampler.batches_per_epoch // batch.update_freq) * batch.update_freq
        if self.micro_per_epoch == 0:
            raise ConfigError(
                f"one epoch has {sampler.batches_per_epoch} batches per process, fewer than "
                f"batch.update_freq={batch.update_freq}; lower the batch size or update_freq"
            )
        self.steps_per_epoch = self.micro_per_epoch // batch.update_freq
        total_steps = config.schedule.epochs * self.steps_per_epoch
        warmup_steps = min(round(config.schedule.warmup_epochs * self.steps_per_epoch), total_steps)

        def scale(value: float) -> float:
            return scaled_lr(value, self.global_batch, optim.reference_batch)

        self.lr = scale(optim.base_lr)
        groups = param_groups(
            self.raw_model,
            optim.weight_decay,
            layer_decay=layer_decay,
            num_layers=getattr(self.raw_model, "num_layers", None),
            layer_id=layer_id if layer_decay != 1.0 else None,
        )
        fused = fused_adamw_for(self.device)
        self.optimizer = build_adamw(groups, self.lr, betas=tuple(optim.betas), eps=optim.eps, fused=fused)
        self.precision = Precision(config.runtime.precision, self.device)
        wd_end = optim.weight_decay if optim.weight_decay_end is None else optim.weight_decay_end
        self.model = self._wrap(self.raw_model, find_unused_parameters)
        self.updater = Updater(
            self.model,
            self.optimizer,
            self.precision,
            lr_schedule=CosineSchedule(
                scale(optim.base_lr), scale(optim.min_lr), total_steps, warmup_steps, scale(optim.warmup_lr)
            ),
            wd_schedule=CosineSchedule(optim.weight_decay, wd_end, total_steps),
            update_freq=batch.update_freq,
            clip_grad=optim.clip_grad,
        )
        self.start_epoch = 0
        self.epoch = 0  # in progress
        self.skip = 0  # samples of start_epoch this rank already consumed (mid-epoch resume)
        self.consumed = 0
        self.metrics: dict[str, Any] = {}
        self._window = MeanMeter()
        self._window_start = time.perf_counter()
        self._saved_step = -1
        self._job_start_step = 0
        self._bar: Progress | None = None
        run.where = self.position

    @property
    def step(self) -> int:
        return self.updater.step

    def position(self) -> dict[str, int]:
        """How far training got: optimiser steps done and the epoch in progress."""
        return {"step": self.step, "epoch": self.epoch}

    def _wrap(self, model: nn.Module, find_unused_parameters: bool) -> nn.Module:
        if self.run.env.distributed:
            model = nn.parallel.DistributedDataParallel(
                model,
                device_ids=[self.device] if self.device.type == "cuda" else None,
                find_unused_parameters=find_unused_parameters,
            )
        if self.config.runtime.compile:
            model = torch.compile(model)
        return model

    def describe(self) -> str:
        groups = len(self.optimizer.param_groups)
        params = sum(p.numel() for p in self.raw_model.parameters() if p.requires_grad)
        clips = f", {self.clips_per_sample} clips each" if self.clips_per_sample > 1 else ""
        return (
            f"{params / 1e6:.2f}M trainable parameters in {groups} groups; global batch {self.global_batch} "
            f"({self.config.batch.per_gpu}/process x {self.run.env.world_size} x update_freq "
            f"{self.update_freq}{clips}); lr {self.lr:.3g}; {self.steps_per_epoch} steps/epoch x "
            f"{self.config.schedule.epochs} epochs; precision {self.precision.name}"
        )

    # ------------------------------------------------------------------ resume / checkpoint

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint: weights, optimiser, scaler, step, epoch, RNG and sampler."""
        self.raw_model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.precision.scaler is not None and state.get("scaler") is not None:
            self.precision.scaler.load_state_dict(state["scaler"])
        self.updater.set_step(int(state["step"]))
        self._job_start_step = self.step
        sampler = state["sampler"]
        world = self.run.env.world_size
        self.start_epoch = int(sampler["epoch"])
        global_consumed = int(sampler["skip"]) * int(sampler.get("world_size", world))
        if global_consumed % world:
            self.run.log.warning(
                "the checkpoint stopped %d samples into epoch %d, not divisible by %d processes; "
                "continuing from the start of the next epoch",
                global_consumed,
                self.start_epoch,
                world,
            )
            self.start_epoch, global_consumed = self.start_epoch + 1, 0
        self.skip = global_consumed // world
        self.epoch = self.start_epoch
        self.metrics = dict(state.get("metrics") or {})
        per_rank = state["rng"]["per_rank"]
        if len(per_rank) == world:
            restore_rng(per_rank[self.run.env.rank], self.device)
        else:
            self.run.log.warning(
                "the checkpoint holds RNG states of %d processes, this run has %d: RNG streams restart",
                len(per_rank),
                world,
            )

    def state(self, epoch: int, consumed: int) -> dict[str, Any]:
        """The checkpoint dict (collective: every rank must call it, for the RNG states)."""
        rng = gather_to_main(capture_rng(self.device))
        if consumed >= self.micro_per_epoch * self.config.batch.per_gpu:
            epoch, consumed = epoch + 1, 0
        scaler = self.precision.scaler
        return {
            "model": self.raw_model.state_dict(),
            "model_config": model_config_dict(self.raw_model),
            "optimizer": self.optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "step": self.step,
            "epoch": epoch,
            "sampler": {"epoch": epoch, "skip": consumed, "world_size": self.run.env.world_size},
            "rng": {"per_rank": rng},
            "config": to_dict(self.config),
            "metrics": dict(self.metrics),
        }

    def save(self, epoch: int, consumed: int) -> None:
        if self._saved_step == self.step:
            return
        self._saved_step = self.step
        state = self.state(epoch, consumed)
        if self.run.is_main:
            path = self.run.checkpoints.save(state)
            self.run.log.event("checkpoint", human=f"checkpoint {path}", path=str(path), step=self.step)

    def save_best(self, epoch: int) -> Path | None:
        """``checkpoints/best.pt`` after ``epoch`` (collective); its path on rank 0, else None."""
        state = self.state(epoch + 1, 0)
        return self.run.checkpoints.save_best(state) if self.run.is_main else None

    # ------------------------------------------------------------------ the epochs

    def fit(self, task: Task, loader: Iterable[Any], dataset: Any) -> FitResult:
        """Train ``task`` from where :meth:`restore` left off to the last epoch or ``stop_after_steps``."""
        means: dict[str, float] = {}
        for epoch in range(self.start_epoch, self.config.schedule.epochs):
            self.sampler.start(epoch, self.skip if epoch == self.start_epoch else 0)
            try:
                epoch_means = self._train_epoch(task, loader, epoch)
            except StopTraining as stop:
                return FitResult(means, str(stop))
            epoch_means.update(task.end_epoch(self, epoch))
            means = self._end_epoch(epoch, epoch_means)
            self.run.report_bad_videos(dataset)
        return FitResult(means, None)

    def _forward(self, *inputs: Any) -> Any:
        with self.precision.autocast():
            return self.model(*inputs)

    def _train_epoch(self, task: Task, loader: Iterable[Any], epoch: int) -> dict[str, float]:
        self.model.train()
        meter = MeanMeter()
        seed, rank = self.config.runtime.seed, self.run.env.rank
        for host_batch in self._batches(loader, epoch):
            batch = to_device(host_batch, self.device)
            rng = np.random.default_rng([seed, rank, epoch, self.consumed])
            with self.updater.accumulate():
                loss, terms = task.step(self._forward, batch, rng)
                loss_value, term_values = check_finite(loss, terms, self.step, epoch)
                stepped = self.updater.backward(loss)
            values = {"loss": loss_value, **{f"loss_{name}": term for name, term in term_values.items()}}
            values.update(task.logged(host_batch))
            meter.update(**values)
            if stepped:
                self._after_step(epoch, **values)
        return meter.means()

    def _batches(self, loader: Iterable[Any], epoch: int) -> Iterator[Any]:
        """This epoch's micro-batches (resuming mid-epoch where a checkpoint stopped), with progress."""
        skip = self.skip if epoch == self.start_epoch else 0
        self.epoch = epoch
        self.consumed = skip
        batch_size = self.config.batch.per_gpu
        done = skip // batch_size
        self._window = MeanMeter()
        self._window_start = time.perf_counter()
        with Progress(
            self.micro_per_epoch,
            f"epoch {epoch}",
            unit="batch",
            logger=self.run.log,
            disable=not self.run.is_main,
            initial=done,
            later=(self.config.schedule.epochs - epoch - 1) * self.micro_per_epoch,
        ) as bar:
            self._bar = bar
            for index, batch in enumerate(loader, start=done):
                if index >= self.micro_per_epoch:
                    break
                self.consumed += batch_size  # counted before the step, which may checkpoint
                yield batch
                bar.update()

    def _after_step(self, epoch: int, **values: float) -> None:
        """After each optimiser step: log, checkpoint, and stop when asked to."""
        runtime = self.config.runtime
        self._window.update(**values)
        if self._bar is not None and "loss" in values:
            self._bar.update(0, loss=values["loss"])
        if self.step % runtime.log_every == 0:
            elapsed = time.perf_counter() - self._window_start
            means = self._window.means()
            clips = self._window.count * self.global_batch * self.clips_per_sample
            shown = {**means, "lr": self.updater.lr, "wd": self.updater.weight_decay}
            shown["clips_per_s"] = clips / elapsed if elapsed > 0 else 0.0
            self.run.log.metrics("train", step=self.step, epoch=epoch, **shown)
            self.run.scalars("train", shown, self.step)
            self._window = MeanMeter()
            self._window_start = time.perf_counter()
        every = runtime.checkpoint_every_steps
        done_here = self.step - self._job_start_step
        stop = runtime.stop_after_steps is not None and done_here >= runtime.stop_after_steps
        if (every and self.step % every == 0) or stop:
            self.save(epoch, self.consumed)
        if stop:
            raise StopTraining(
                f"stopped after {done_here} steps of this job, at step {self.step} "
                "(runtime.stop_after_steps); continue with --resume auto"
            )

    def _end_epoch(self, epoch: int, means: dict[str, float]) -> dict[str, float]:
        """Average the epoch's metrics over ranks, log them, checkpoint on the epoch cadence."""
        means = all_reduce_mean(means, self.device)
        self.run.log.metrics("epoch", step=self.step, epoch=epoch, **means)
        self.run.scalars("epoch", means, epoch)
        last = epoch + 1 == self.config.schedule.epochs
        if last or (epoch + 1) % self.config.runtime.checkpoint_every_epochs == 0:
            self.save(epoch, self.micro_per_epoch * self.config.batch.per_gpu)
        return means
