"""Supervised fine-tuning of a (pre-trained) video ViT (VideoMAE protocol, docs/method.md §6).

A step: normalise -> mixup / cutmix with label smoothing -> logits -> soft-target cross-entropy.
Validation picks ``best.pt``; the multi-view test runs at the end.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from mme.data.loader import classification_dataset, eval_loader, finetune_loader
from mme.data.transforms import Mixup, normalize_clip, smooth_one_hot
from mme.eval.evaluate import dataset_class_names, evaluate, write_eval_files
from mme.train.run import Run
from mme.train.run_config import FinetuneConfig
from mme.train.trainer import Trainer
from mme.utils.logging import format_value

TRAIN_CLASS_COUNT = "data.num_classes (or the largest train label + 1) is"


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with soft targets (mixup / label smoothing), averaged over the batch."""
    return torch.sum(-targets * torch.log_softmax(logits.float(), dim=-1), dim=-1).mean()


def classifier_model(config: FinetuneConfig, num_classes: int) -> tuple[nn.Module, Any]:
    """A classifier for ``num_classes`` from ``model.init_from`` (else random) and its load report."""
    from mme.interop import load_classifier_with_report
    from mme.models import create_model

    settings = config.model_settings()
    if config.model.init_from is None:
        return create_model(config.model.name, num_classes=num_classes, **settings), None
    model, report = load_classifier_with_report(config.model.init_from, num_classes=num_classes, **settings)
    model.model_name = config.model.name
    return model, report


class ClassifyTask:
    """The classifier, the loss of one micro-batch and validation (``val``: set and loader, or None)."""

    def __init__(self, config: FinetuneConfig, num_classes: int, val: tuple[Any, Any] | None) -> None:
        self.config = config
        self.num_classes = num_classes
        self.val = val
        self.model, self.report = classifier_model(config, num_classes)
        mixing = config.mixup
        self.mixup = Mixup.from_config(num_classes, mixing) if mixing.enabled else None

    def step(
        self, model: Any, batch: dict[str, Any], rng: np.random.Generator
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        clip, labels = normalize_clip(batch["clip"]), batch["label"]
        if self.mixup is not None:
            self.mixup.rng = rng  # exact after a resume
            clip, targets = self.mixup(clip, labels)
        else:
            targets = smooth_one_hot(labels, self.num_classes, self.config.mixup.label_smoothing)
        return soft_cross_entropy(model(clip), targets), {}

    def logged(self, batch: dict[str, Any]) -> dict[str, float]:
        return {}

    def end_epoch(self, trainer: Trainer, epoch: int) -> dict[str, float]:
        last = epoch + 1 == self.config.schedule.epochs
        if self.val is None or ((epoch + 1) % self.config.validation.every_epochs and not last):
            return {}
        return evaluate_epoch(trainer, *self.val, epoch)


def run_finetune(config: FinetuneConfig) -> dict[str, Any]:
    """``mme finetune`` (every rank runs it); returns the summary."""
    with Run(config, "finetune") as run:
        resume = run.find_resume()
        train_set = classification_dataset(config, "train")
        num_classes = train_set.num_classes
        val_set, test_set = evaluation_sets(config, train_set)
        named = dataset_class_names(config.data, config.data.train_list, num_classes, TRAIN_CLASS_COUNT)
        val_loader = eval_loader(val_set, config.batch.per_gpu, config.runtime, run.env) if val_set else None
        task = ClassifyTask(config, num_classes, (val_set, val_loader) if val_loader is not None else None)
        # The names describe this run's labels, never those of the checkpoint it started from.
        task.model.class_names = named[0] if named else None
        loader, sampler = finetune_loader(config, run.env, train_set)
        trainer = Trainer(
            run,
            task.model,
            sampler,
            layer_decay=config.optim.layer_decay,
            clips_per_sample=config.data.num_sample,
        )
        if resume is not None:
            trainer.restore(resume)
        run.start()
        if task.report is not None:
            run.log.info("init from %s: %s", config.model.init_from, task.report.summary())
        run.log.info("model %s: %s", config.model.name, trainer.describe())
        if named:
            run.log.info("class names from %s", named[1])
        result = trainer.fit(task, loader, train_set)
        summary: dict[str, Any] = {
            "command": "finetune",
            "steps": trainer.step,
            "finished": result.stopped is None,
            "bad_videos": run.report_bad_videos(train_set),
            "best_val_top1": trainer.metrics.get("best_top1"),
            "best_epoch": trainer.metrics.get("best_epoch"),
        }
        if result.stopped is None:
            if run.is_main:
                from mme.models import save_model

                save_model(task.model, run.out / "model", overwrite=True)
            if test_set is not None:
                summary["test"] = test(task.model, config, trainer, test_set)
        human = result.stopped or (
            f"fine-tuning done: {trainer.step} steps, best val top-1 {format_value(summary['best_val_top1'])}"
            + (f", test top-1 {summary['test']['top1']:.2f}" if "test" in summary else "")
        )
        run.write_summary(summary, human)
        return summary


def evaluation_sets(config: FinetuneConfig, train_set: Any) -> tuple[Any, Any]:
    """The val and test datasets (None when unused), labels checked before the first step."""
    data, when = config.data, config.validation
    val_set = classification_dataset(config, "val") if when.every_epochs and data.val_list else None
    test_set = classification_dataset(config, "test") if when.test_at_end and data.test_list else None
    for dataset in (val_set, test_set):
        if dataset is not None:
            dataset.check_labels(train_set.num_classes, train_set.num_classes_source)
    return val_set, test_set


def evaluate_epoch(trainer: Trainer, dataset: Any, loader: Any, epoch: int) -> dict[str, float]:
    """Single-view validation; a new best top-1 writes ``checkpoints/best.pt``."""
    run = trainer.run
    metrics = evaluate(trainer.raw_model, loader, dataset, run.env, trainer.precision, run.log, "val")
    best = trainer.metrics.get("best_top1")
    if best is None or metrics["top1"] > best:
        trainer.metrics.update(best_top1=metrics["top1"], best_epoch=epoch)
        path = trainer.save_best(epoch)
        if path is not None:
            run.log.info("new best val top-1 %.2f at epoch %d: %s", metrics["top1"], epoch, path)
    return {"val_top1": metrics["top1"], "val_top5": metrics["top5"]}


def test(model: nn.Module, config: FinetuneConfig, trainer: Trainer, test_set: Any) -> dict[str, Any]:
    """Multi-view test of the final weights; files under ``<output_dir>/eval/``."""
    run = trainer.run
    loader = eval_loader(test_set, config.batch.per_gpu, config.runtime, run.env)
    result = evaluate(model, loader, test_set, run.env, trainer.precision, run.log, "test")
    if not run.is_main:
        return result
    names = getattr(model, "class_names", None)
    summary = write_eval_files(result, run.out / "eval", test_set.entries, names)
    run.log.metrics("test", step=trainer.step, **{k: summary[k] for k in ("top1", "top5", "view_top1")})
    return {k: summary[k] for k in ("top1", "top5", "view_top1", "view_top5", "failed_videos")}
