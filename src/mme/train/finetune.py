"""Supervised fine-tuning of a (pre-trained) video ViT (VideoMAE protocol, docs/method.md §6).

One step: ``per_gpu x num_sample`` augmented clips to the device → normalise → mixup / cutmix
with label smoothing (soft targets) → logits → soft-target cross-entropy → backward / step.
Every ``validation.every_epochs`` the single-view validation top-1 picks ``best.pt``; at the end
the multi-view test (``clips x crops``) runs on the test list.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from mme.data.transforms import Mixup, normalize_clip, smooth_one_hot
from mme.train.config import FinetuneConfig
from mme.train.data import classification_dataset, dataset_class_names, eval_loader, finetune_loader
from mme.train.engine import check_finite
from mme.train.evaluate import evaluate, write_eval_files
from mme.train.run import Run
from mme.train.trainer import MeanMeter, StopTraining, Trainer
from mme.utils.logging import format_value

TRAIN_CLASS_COUNT = "data.num_classes (or the largest train label + 1) is"


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with soft targets (mixup / label smoothing), averaged over the batch."""
    return torch.sum(-targets * torch.log_softmax(logits.float(), dim=-1), dim=-1).mean()


def train_one_epoch(
    trainer: Trainer, loader: Any, epoch: int, mixup: Mixup | None, num_classes: int, smoothing: float
) -> dict[str, float]:
    model, updater = trainer.model, trainer.updater
    model.train()
    meter = MeanMeter()
    for batch in trainer.batches(loader, epoch):
        clip = normalize_clip(batch["clip"].to(trainer.device, non_blocking=True))
        labels = batch["label"].to(trainer.device, non_blocking=True)
        if mixup is not None:
            # Mixing draws depend on (seed, rank, epoch, position) only: exact after a resume.
            position = [trainer.config.runtime.seed, trainer.run.env.rank, epoch, trainer.consumed]
            mixup.rng = np.random.default_rng(position)
            clip, targets = mixup(clip, labels)
        else:
            targets = smooth_one_hot(labels, num_classes, smoothing)
        with updater.accumulate():
            with trainer.precision.autocast():
                logits = model(clip)
            loss = soft_cross_entropy(logits, targets)
            loss_value, _ = check_finite(loss, {}, updater.step, epoch)
            stepped = updater.backward(loss)
        meter.update(loss=loss_value)
        if stepped:
            trainer.after_step(epoch, loss=loss_value)
    return meter.means()


def build_model(config: FinetuneConfig, num_classes: int) -> tuple[nn.Module, Any]:
    """A classifier for ``num_classes``: initialised from ``model.init_from`` when given (its
    encoder; a new head unless the class counts match), else randomly (training from scratch).
    Returns the model and the load report (None from scratch)."""
    from mme.interop import load_classifier_with_report
    from mme.models import create_model

    data = config.data
    settings = {
        **config.model.overrides,
        "num_frames": data.num_frames,
        "img_size": data.input_size,
        "patch_size": data.patch_size,
        "tubelet_size": data.tubelet_size,
    }
    if config.model.init_from is None:
        return create_model(config.model.name, num_classes=num_classes, **settings), None
    model, report = load_classifier_with_report(config.model.init_from, num_classes=num_classes, **settings)
    model.model_name = config.model.name
    return model, report


def run_finetune(config: FinetuneConfig) -> dict[str, Any]:
    """The whole job (every rank runs it); returns the summary."""
    with Run(config, "finetune") as run:
        resume = run.find_resume()
        train_set = classification_dataset(config, "train")
        num_classes = train_set.num_classes
        val_set, test_set = evaluation_sets(config, train_set)
        named = dataset_class_names(config.data, config.data.train_list, num_classes, TRAIN_CLASS_COUNT)
        model, report = build_model(config, num_classes)
        # The names describe this run's labels, never those of the checkpoint it started from.
        model.class_names = named[0] if named else None
        loader, sampler = finetune_loader(config, run.env, train_set)
        trainer = Trainer(
            run, model, sampler, layer_decay=config.optim.layer_decay, clips_per_sample=config.data.num_sample
        )
        if resume is not None:
            trainer.restore(resume)
        run.start()
        if report is not None:
            run.log.info("init from %s: %s", config.model.init_from, report.summary())
        run.log.info("model %s: %s", config.model.name, trainer.describe())
        if named:
            run.log.info("class names from %s", named[1])
        mixing = config.mixup
        mixup = Mixup.from_config(num_classes, mixing) if mixing.enabled else None
        validate_every = config.validation.every_epochs if config.data.val_list else 0
        val_loader = eval_loader(val_set, config.batch.per_gpu, config.runtime, run.env) if val_set else None
        stopped = None
        for epoch in range(trainer.start_epoch, config.schedule.epochs):
            sampler.start(epoch, trainer.skip if epoch == trainer.start_epoch else 0)
            try:
                means = train_one_epoch(trainer, loader, epoch, mixup, num_classes, mixing.label_smoothing)
            except StopTraining as stop:
                stopped = str(stop)
                break
            last = epoch + 1 == config.schedule.epochs
            if val_loader is not None and ((epoch + 1) % validate_every == 0 or last):
                means.update(validate(trainer, val_loader, val_set, epoch))
            trainer.end_epoch(epoch, means)
            run.report_bad_videos(train_set)
        summary: dict[str, Any] = {
            "command": "finetune",
            "steps": trainer.step,
            "finished": stopped is None,
            "bad_videos": run.report_bad_videos(train_set),
            "best_val_top1": trainer.metrics.get("best_top1"),
            "best_epoch": trainer.metrics.get("best_epoch"),
        }
        if stopped is None:
            if run.is_main:
                from mme.models import save_model

                save_model(trainer.raw_model, run.out / "model", overwrite=True)
            if test_set is not None:
                summary["test"] = test(trainer.raw_model, config, run, trainer, test_set)
        human = stopped or (
            f"fine-tuning done: {trainer.step} steps, best val top-1 {format_value(summary['best_val_top1'])}"
            + (f", test top-1 {summary['test']['top1']:.2f}" if "test" in summary else "")
        )
        run.write_summary(summary, human)
        return summary


def evaluation_sets(config: FinetuneConfig, train_set: Any) -> tuple[Any, Any]:
    """The val and test datasets the run will evaluate (None when it will not), their labels
    checked against the classes of the train set before the first step rather than after training."""
    data, when = config.data, config.validation
    val_set = classification_dataset(config, "val") if when.every_epochs and data.val_list else None
    test_set = classification_dataset(config, "test") if when.test_at_end and data.test_list else None
    for dataset in (val_set, test_set):
        if dataset is not None:
            dataset.check_labels(train_set.num_classes, train_set.num_classes_source)
    return val_set, test_set


def validate(trainer: Trainer, loader: Any, dataset: Any, epoch: int) -> dict[str, float]:
    """Single-view validation; a new best top-1 writes ``checkpoints/best.pt``."""
    run = trainer.run
    metrics = evaluate(trainer.raw_model, loader, dataset, run.env, trainer.precision, run.log, "val")
    best = trainer.metrics.get("best_top1")
    if best is None or metrics["top1"] > best:
        trainer.metrics.update(best_top1=metrics["top1"], best_epoch=epoch)
        state = trainer.state(epoch + 1, 0)
        if run.is_main:
            run.checkpoints.save_best(state)
            run.log.info(
                "new best val top-1 %.2f at epoch %d: %s", metrics["top1"], epoch, run.checkpoints.best_path
            )
    return {"val_top1": metrics["top1"], "val_top5": metrics["top5"]}


def test(
    model: nn.Module, config: FinetuneConfig, run: Run, trainer: Trainer, test_set: Any
) -> dict[str, Any]:
    """Multi-view test of the final weights; files under ``<output_dir>/eval/``."""
    loader = eval_loader(test_set, config.batch.per_gpu, config.runtime, run.env)
    result = evaluate(model, loader, test_set, run.env, trainer.precision, run.log, "test")
    if not run.is_main:
        return result
    names = getattr(model, "class_names", None)
    summary = write_eval_files(result, run.out / "eval", test_set.entries, names)
    run.log.metrics("test", step=trainer.step, **{k: summary[k] for k in ("top1", "top5", "view_top1")})
    return {k: summary[k] for k in ("top1", "top5", "view_top1", "view_top5", "failed_videos")}
