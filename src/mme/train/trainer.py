"""The training state a loop works with, and how it is checkpointed and resumed.

:class:`Trainer` owns the model (raw and DDP-wrapped), the AdamW groups, the lr / weight-decay
schedules, mixed precision and the sampler position. The loops in :mod:`mme.train.pretrain` and
:mod:`mme.train.finetune` only ask it for batches (:meth:`Trainer.batches`) and report finished
optimiser steps (:meth:`Trainer.after_step`); everything about checkpoints, logging cadence,
``stop_after_steps`` and resuming mid-epoch happens here, once, for both.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

from mme.errors import ConfigError
from mme.models import layer_id, model_config_dict
from mme.train.checkpoint import capture_rng, restore_rng
from mme.train.config_loader import to_dict
from mme.train.distributed import TrainSampler, all_reduce_mean, gather_to_main
from mme.train.engine import Precision, Updater
from mme.train.optim import build_adamw, fused_adamw_for, param_groups, scaled_lr
from mme.train.run import Run
from mme.train.schedule import CosineSchedule
from mme.utils.logging import Progress


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


class Trainer:
    """Model + optimiser + schedules + precision + sampler position of one training job."""

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

    # ------------------------------------------------------------------ the epoch

    def batches(self, loader: Iterable[Any], epoch: int) -> Iterator[Any]:
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

    def after_step(self, epoch: int, **values: float) -> None:
        """Called after each optimiser step: log, checkpoint, and stop when asked to."""
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

    def end_epoch(self, epoch: int, means: dict[str, float]) -> dict[str, float]:
        """Average the epoch's metrics over ranks, log them, checkpoint on the epoch cadence."""
        means = all_reduce_mean(means, self.device)
        self.run.log.metrics("epoch", step=self.step, epoch=epoch, **means)
        self.run.scalars("epoch", means, epoch)
        last = epoch + 1 == self.config.schedule.epochs
        if last or (epoch + 1) % self.config.runtime.checkpoint_every_epochs == 0:
            self.save(epoch, self.micro_per_epoch * self.config.batch.per_gpu)
        return means
