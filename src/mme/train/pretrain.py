"""MME pre-training: predict the trajectories (and HOG) of masked tubelets (docs/method.md §1–5).

One step: uint8 batch to the device → normalise → model(clip, mask) predicts every head for the
masked tokens → targets from the objectives registry (HOG from the normalised clip, trajectories
from the loader's ``traj_disp`` / ``traj_valid``) → masked loss → backward / optimiser step.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from mme.data.transforms import normalize_clip
from mme.objectives import build_targets, masked_loss
from mme.train.config import PretrainConfig
from mme.train.data import pretrain_loader, to_device
from mme.train.engine import check_finite
from mme.train.run import Run
from mme.train.trainer import MeanMeter, StopTraining, Trainer
from mme.utils.logging import format_values


def train_one_epoch(trainer: Trainer, loader: Any, epoch: int, config: PretrainConfig) -> dict[str, float]:
    model, updater = trainer.model, trainer.updater
    model.train()
    meter = MeanMeter()
    for host_batch in trainer.batches(loader, epoch):
        batch = to_device(host_batch, trainer.device)
        clip = normalize_clip(batch["clip"])
        mask = batch["mask"]
        with updater.accumulate():
            with trainer.precision.autocast():
                predictions = model(clip, mask)
            targets = build_targets(config.predict, {**batch, "clip": clip}, config.targets)
            loss, terms = masked_loss(predictions, targets, mask)
            loss_value, term_values = check_finite(loss, terms, updater.step, epoch)
            stepped = updater.backward(loss)
        values = {"loss": loss_value, **{f"loss_{name}": term for name, term in term_values.items()}}
        if "traj_camera_fallbacks" in host_batch:
            # Mean frame pairs per clip whose camera fit failed (uncompensated flow), so it shows.
            values["camera_fallbacks"] = float(host_batch["traj_camera_fallbacks"].float().mean())
        meter.update(**values)
        if stepped:
            trainer.after_step(epoch, **values)
    return meter.means()


def build_model(config: PretrainConfig) -> nn.Module:
    """The pre-training model: heads from ``predict`` (widths from the targets' settings), clip
    size from the data; from ``model.init_from`` when given (continued pre-training)."""
    from mme.interop import load_pretrain_model
    from mme.models import create_model
    from mme.objectives import get_target, target_dim

    heads = [
        {
            "name": name,
            "dim": target_dim(name, config.targets),
            "activation": config.head_activations.get(name, get_target(name).activation),
        }
        for name in config.predict
    ]
    settings = {
        **config.model.overrides,
        "heads": heads,
        "num_frames": config.data.num_frames,
        "img_size": config.data.input_size,
        "patch_size": config.data.patch_size,
        "tubelet_size": config.data.tubelet_size,
    }
    if config.model.init_from is not None:
        return load_pretrain_model(config.model.init_from, **settings)
    return create_model(config.model.name, **settings)


def run_pretrain(config: PretrainConfig) -> dict[str, Any]:
    """The whole job (every rank runs it); returns the summary."""
    with Run(config, "pretrain") as run:
        resume = run.find_resume()
        model = build_model(config)
        dataset, loader, sampler = pretrain_loader(config, run.env)
        trainer = Trainer(run, model, sampler)
        if resume is not None:
            trainer.restore(resume)
        run.start()
        run.log.info("model %s: %s", config.model.name, trainer.describe())
        run.log.info("data: %d videos", len(dataset))
        epoch_means: dict[str, float] = {}
        stopped = None
        for epoch in range(trainer.start_epoch, config.schedule.epochs):
            sampler.start(epoch, trainer.skip if epoch == trainer.start_epoch else 0)
            try:
                means = train_one_epoch(trainer, loader, epoch, config)
            except StopTraining as stop:
                stopped = str(stop)
                break
            epoch_means = trainer.end_epoch(epoch, means)
            if epoch in config.save_model_epochs and run.is_main:
                from mme.models import save_model

                save_model(trainer.raw_model, run.out / f"model-epoch{epoch}", overwrite=True)
            run.report_bad_videos(dataset)
        summary = {
            "command": "pretrain",
            "steps": trainer.step,
            "epochs": config.schedule.epochs,
            "finished": stopped is None,
            "final": epoch_means,
            "bad_videos": run.report_bad_videos(dataset),
        }
        if stopped is None and run.is_main:
            from mme.models import save_model

            save_model(trainer.raw_model, run.out / "model", overwrite=True)
            summary["model"] = str(run.out / "model")
        human = stopped or f"pre-training done: {trainer.step} steps, final {format_values(epoch_means)}"
        run.write_summary(summary, human)
        return summary
