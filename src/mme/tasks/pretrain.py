"""MME pre-training: predict the trajectories (and HOG) of masked tubelets (docs/method.md §1–5).

A step: normalise -> model (:mod:`mme.models.pretrain`) -> targets -> masked loss; the Trainer
(:mod:`mme.train.trainer`) does backward, the optimiser step, logs and checkpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mme.data.loader import pretrain_loader
from mme.data.transforms import normalize_clip
from mme.objectives import build_targets, masked_loss
from mme.train.run import Run
from mme.train.run_config import PretrainConfig
from mme.train.trainer import Trainer
from mme.utils.logging import format_values


def pretrain_model(config: PretrainConfig) -> nn.Module:
    """The pre-training model (heads from ``predict``, clip size from data), or ``model.init_from``'s."""
    from mme.interop import load_pretrain_model
    from mme.models import create_model

    settings = config.model_settings()
    if config.model.init_from is not None:
        return load_pretrain_model(config.model.init_from, **settings)
    return create_model(config.model.name, **settings)


def save_initial_model(config: PretrainConfig, folder: Path) -> None:
    """The weights a pre-training with ``config`` starts from, built and seeded as ``run_pretrain`` does."""
    from mme.models import save_model
    from mme.train.run import seed_everything

    seed_everything(config.runtime.seed)
    model: Any = pretrain_model(config)
    model.model_name = config.model.name
    save_model(model, folder, overwrite=True)


class PretrainTask:
    """The model, the loss of one micro-batch and what else is logged, for :meth:`Trainer.fit`."""

    def __init__(self, config: PretrainConfig) -> None:
        self.config = config
        self.target_config = config.target_config()
        self.model = pretrain_model(config)

    def step(
        self, model: Any, batch: dict[str, Any], rng: np.random.Generator
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        clip = normalize_clip(batch["clip"])
        mask = batch["mask"]
        predictions = model(clip, mask)
        targets = build_targets(self.config.predict, {**batch, "clip": clip}, self.target_config)
        return masked_loss(predictions, targets, mask)

    def logged(self, batch: dict[str, Any]) -> dict[str, float]:
        if "traj_camera_fallbacks" not in batch:
            return {}
        # Mean frame pairs per clip whose camera fit failed (uncompensated flow), so it shows.
        return {"camera_fallbacks": float(batch["traj_camera_fallbacks"].float().mean())}

    def end_epoch(self, trainer: Trainer, epoch: int) -> dict[str, float]:
        run = trainer.run
        if epoch in self.config.save_model_epochs and run.is_main:
            from mme.models import save_model

            save_model(self.model, run.out / f"model-epoch{epoch}", overwrite=True)
        return {}


def run_pretrain(config: PretrainConfig) -> dict[str, Any]:
    """``mme pretrain`` (every rank runs it); returns the summary."""
    with Run(config, "pretrain") as run:
        resume = run.find_resume()
        task = PretrainTask(config)
        dataset, loader, sampler = pretrain_loader(config, run.env)
        trainer = Trainer(run, task.model, sampler)
        if resume is not None:
            trainer.restore(resume)
        run.start()
        run.log.info("model %s: %s", config.model.name, trainer.describe())
        run.log.info("data: %d videos", len(dataset))
        result = trainer.fit(task, loader, dataset)
        summary = {
            "command": "pretrain",
            "steps": trainer.step,
            "epochs": config.schedule.epochs,
            "finished": result.stopped is None,
            "final": result.means,
            "bad_videos": run.report_bad_videos(dataset),
        }
        if result.stopped is None and run.is_main:
            from mme.models import save_model

            save_model(task.model, run.out / "model", overwrite=True)
            summary["model"] = str(run.out / "model")
        human = (
            result.stopped or f"pre-training done: {trainer.step} steps, final {format_values(result.means)}"
        )
        run.write_summary(summary, human)
        return summary
