"""Multi-view evaluation of a classifier, distributed over ranks with exact single-process results.

Each rank scores its shard of views (``clips x crops`` per video; one view in validation mode):
softmax scores in float32. Rank 0 gathers the shards, orders the views by (video, view), and
averages the scores per video in that order, so N ranks give bit-identical metrics to one.
Reported: top-1/top-5 of single views and of merged videos, per-class accuracy, the confusion
matrix, and per-video predictions.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mme.data.transforms import normalize_clip
from mme.errors import DataError
from mme.train.distributed import DistEnv, broadcast_from_main, gather_to_main
from mme.train.engine import Precision
from mme.train.metrics import confusion_matrix, merge_views, per_class_accuracy, topk_correct
from mme.utils.atomic import atomic_write, atomic_write_json
from mme.utils.logging import Progress, RunLog


@torch.no_grad()
def score_views(
    model: nn.Module, loader: Any, env: DistEnv, precision: Precision, log: RunLog, desc: str = "eval"
) -> dict[str, torch.Tensor]:
    """This rank's views: dataset ``item`` indices (V,) and softmax ``scores`` (V, C), on CPU."""
    model.eval()
    items, scores = [], []
    with Progress(len(loader), desc, unit="batch", logger=log, disable=not env.is_main) as bar:
        for batch in loader:
            clip = batch["clip"].to(env.device, non_blocking=True)
            with precision.autocast():
                logits = model(normalize_clip(clip))
            scores.append(logits.float().softmax(dim=-1).cpu())
            items.append(batch["item"].long())
            bar.update()
    if not items:  # more ranks than views
        return {"item": torch.zeros(0, dtype=torch.long), "scores": torch.zeros(0, 0)}
    return {"item": torch.cat(items), "scores": torch.cat(scores)}


def merge_shards(shards: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Concatenate the ranks' views in dataset order (the single-process order)."""
    shards = [shard for shard in shards if shard["item"].numel()]
    items = torch.cat([shard["item"] for shard in shards])
    order = torch.argsort(items)
    return {"item": items[order], "scores": torch.cat([shard["scores"] for shard in shards])[order]}


def summarize(views: dict[str, torch.Tensor], labels: torch.Tensor, views_per_video: int) -> dict[str, Any]:
    """Metrics of gathered views; item ``i`` is view ``i % views_per_video`` of video
    ``i // views_per_video`` (the layout of ``VideoClassificationDataset``)."""
    num_videos, num_classes = labels.shape[0], views["scores"].shape[1]
    video = views["item"] // views_per_video
    per_view = topk_correct(views["scores"], labels[video])
    merged, _ = merge_views(views["scores"], video, num_videos)
    per_video = topk_correct(merged, labels)
    confusion = confusion_matrix(merged.argmax(dim=1), labels, num_classes)
    total_views = views["scores"].shape[0]
    return {
        "videos": num_videos,
        "views": total_views,
        "views_per_video": views_per_video,
        "top1": 100.0 * per_video[1] / num_videos,
        "top5": 100.0 * per_video[5] / num_videos,
        "view_top1": 100.0 * per_view[1] / total_views,
        "view_top5": 100.0 * per_view[5] / total_views,
        "per_class_accuracy": per_class_accuracy(confusion),
        "confusion": confusion,
        "video_scores": merged,
        "video_labels": labels,
    }


def evaluate(
    model: nn.Module,
    loader: Any,
    dataset: Any,
    env: DistEnv,
    precision: Precision,
    log: RunLog,
    desc: str = "eval",
) -> dict[str, Any]:
    """Score on every rank, merge on rank 0. Rank 0 returns the full result (see
    :func:`summarize`), the other ranks the scalar metrics only."""
    shards = gather_to_main(score_views(model, loader, env, precision, log, desc))
    result = None
    if env.is_main:
        labels = torch.tensor([entry.label for entry in dataset.entries], dtype=torch.long)
        result = summarize(merge_shards(shards), labels, dataset.views)
    scalars = None if result is None else {k: result[k] for k in SCALARS}
    scalars = broadcast_from_main(scalars)
    return result if result is not None else dict(scalars)


SCALARS = ("top1", "top5", "view_top1", "view_top5")


def write_eval_files(
    result: dict[str, Any], folder: Path, entries: list[Any], class_names: list[str] | None = None
) -> dict[str, Any]:
    """``eval.json`` (summary), ``predictions.jsonl`` (per video) and ``confusion.csv``, atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    scores, labels = result["video_scores"], result["video_labels"]
    top5 = scores.topk(min(5, scores.shape[1]), dim=1)
    with atomic_write(folder / "predictions.jsonl") as handle:
        for video, entry in enumerate(entries):
            record = {
                "video": video,
                "path": str(entry.path),
                "label": int(labels[video]),
                "prediction": int(top5.indices[video, 0]),
                "top5": top5.indices[video].tolist(),
                "top5_scores": [round(float(s), 6) for s in top5.values[video]],
            }
            handle.write(json.dumps(record) + "\n")
    confusion = result["confusion"]
    names = class_names or [str(c) for c in range(confusion.shape[0])]
    with atomic_write(folder / "confusion.csv") as handle:
        writer = csv.writer(handle)
        writer.writerow(["true \\ predicted", *names])
        for name, row in zip(names, confusion.tolist(), strict=True):
            writer.writerow([name, *row])
    summary = {
        key: result[key]
        for key in ("videos", "views", "views_per_video", "top1", "top5", "view_top1", "view_top5")
    }
    summary["per_class_accuracy"] = dict(zip(names, result["per_class_accuracy"], strict=True))
    atomic_write_json(folder / "eval.json", summary)
    return summary


def run_eval(config: Any) -> dict[str, Any]:
    """``mme eval``: multi-view test of any classifier checkpoint on ``data.test_list``."""
    from mme.models import load_classifier_with_report
    from mme.train.data import classification_dataset, eval_loader
    from mme.train.run import Run

    with Run(config, "eval", training=False) as run:
        data = config.data
        model, report = load_classifier_with_report(
            config.checkpoint, num_frames=data.num_frames, img_size=data.input_size
        )
        test_set = classification_dataset(config, "test")
        largest = max(entry.label for entry in test_set.entries)
        if largest >= model.num_classes:
            raise DataError(
                f"{data.test_list} has label {largest}, but {config.checkpoint} predicts "
                f"{model.num_classes} classes"
            )
        run.start()
        run.log.info("model from %s: %s", config.checkpoint, report.summary())
        model.to(run.device)
        precision = Precision(config.runtime.precision, run.device)
        loader = eval_loader(test_set, config.batch.per_gpu, config.runtime, run.env)
        result = evaluate(model, loader, test_set, run.env, precision, run.log, "test")
        summary: dict[str, Any] = {"command": "eval", "checkpoint": str(config.checkpoint)}
        if run.is_main:
            summary.update(write_eval_files(result, run.out, test_set.entries))
        human = (
            f"{summary.get('videos')} videos x {summary.get('views_per_video')} views: top-1 "
            f"{result['top1']:.2f} top-5 {result['top5']:.2f} (single view top-1 {result['view_top1']:.2f})"
        )
        run.write_summary({k: v for k, v in summary.items() if k != "per_class_accuracy"}, human)
        return summary
