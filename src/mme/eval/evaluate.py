"""Multi-view evaluation with single-process results on N ranks; ``infer_videos`` serves every job."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mme.data.bad_videos import too_many_bad
from mme.data.transforms import normalize_clip
from mme.errors import ConfigError, DataError
from mme.eval.metrics import confusion_matrix, merge_views, per_class_accuracy, topk_correct
from mme.train.distributed import DistEnv, broadcast_from_main, gather_to_main
from mme.train.trainer import Precision
from mme.utils.atomic import atomic_write, atomic_write_json
from mme.utils.jsonfile import read_json
from mme.utils.logging import Progress, RunLog


@torch.no_grad()
def run_views(
    forward: Callable[[torch.Tensor], torch.Tensor],
    loader: Any,
    env: DistEnv,
    log: RunLog,
    desc: str,
    dtype: torch.dtype = torch.float32,
) -> dict[str, Any]:
    """This rank's views: item indices and ``forward`` values (CPU) of those that decoded, and the failed."""
    items, values, failed = [], [], []
    with Progress(len(loader), desc, unit="batch", logger=log, disable=not env.is_main) as bar:
        for batch in loader:
            item, ok = batch["item"].long(), batch["ok"].bool()
            reasons = zip(item.tolist(), batch["reason"], ok.tolist(), strict=True)
            failed.extend((index, reason) for index, reason, good in reasons if not good)
            if ok.any():
                clip = batch["clip"] if ok.all() else batch["clip"][ok]
                values.append(forward(normalize_clip(clip.to(env.device, non_blocking=True))).to(dtype).cpu())
                items.append(item[ok])
            bar.update()
    if not items:  # more ranks than views, or none of this rank's views decoded
        return {"item": torch.zeros(0, dtype=torch.long), "values": torch.zeros(0, 0), "failed": failed}
    return {"item": torch.cat(items), "values": torch.cat(values), "failed": failed}


def softmax_scores(model: nn.Module, precision: Precision) -> Callable[[torch.Tensor], torch.Tensor]:
    """The ``forward`` of :func:`run_views` that scores clips: softmax (V, C) in float32."""

    def scores(clip: torch.Tensor) -> torch.Tensor:
        with precision.autocast():
            return model(clip).float().softmax(dim=-1)

    return scores


def merge_shards(shards: list[dict[str, Any]]) -> dict[str, Any]:
    """Concatenate the ranks' views (and failed views) in dataset (single-process) order."""
    failed = sorted(pair for shard in shards for pair in shard["failed"])
    shards = [shard for shard in shards if shard["item"].numel()]
    if not shards:
        return {"item": torch.zeros(0, dtype=torch.long), "values": torch.zeros(0, 0), "failed": failed}
    items = torch.cat([shard["item"] for shard in shards])
    order = torch.argsort(items)
    values = torch.cat([shard["values"] for shard in shards])[order]
    return {"item": items[order], "values": values, "failed": failed}


def failed_videos(failed: list[tuple[int, str]], views_per_video: int) -> dict[int, str]:
    """Video index → the reason of its first failed view (``failed`` in item order)."""
    found: dict[int, str] = {}
    for item, reason in failed:
        found.setdefault(item // views_per_video, reason)
    return found


def report_failures(
    failures: dict[int, str], dataset: Any, log: RunLog, desc: str, tolerate: bool = False
) -> str | None:
    """Log the excluded videos; the error message past ``data.max_bad_fraction`` (never if ``tolerate``)."""
    paths = {str(dataset.entries[video].path): reason for video, reason in failures.items()}
    for path, reason in paths.items():
        log.warning("%s: excluded from the scores, cannot be decoded: %s: %s", desc, path, reason)
    total = len(dataset.entries)
    if tolerate:
        return None
    where = f"they cannot be decoded, in {dataset.source}"
    message = too_many_bad(paths, total, dataset.config.max_bad_fraction, where)
    if message is None and len(failures) == total:
        message = f"none of the {total} videos of {dataset.source} can be decoded"
    if message is None and failures:
        log.warning("%s: %d of %d videos excluded (cannot be decoded)", desc, len(failures), total)
    return message


def gather_views(
    forward: Callable[[torch.Tensor], torch.Tensor],
    loader: Any,
    dataset: Any,
    env: DistEnv,
    log: RunLog,
    desc: str,
    tolerate: bool = False,
    dtype: torch.dtype = torch.float32,
) -> dict[str, Any] | None:
    """:func:`run_views` on every rank, merged on rank 0 (None elsewhere); DataError on every rank."""
    shards = gather_to_main(run_views(forward, loader, env, log, desc, dtype))
    views, error = None, None
    if shards is not None:
        views = merge_shards(shards)
        failures = failed_videos(views["failed"], dataset.views)
        error = report_failures(failures, dataset, log, desc, tolerate)
    error = broadcast_from_main(error)
    if error is not None:
        raise DataError(error)
    return views


def scored_views(
    views: dict[str, Any], num_videos: int, views_per_video: int, failures: dict[int, str]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Videos without a failed view, their views' values and each view's position among them."""
    scored = torch.tensor([v for v in range(num_videos) if v not in failures], dtype=torch.long)
    position = torch.full((num_videos,), -1, dtype=torch.long)
    position[scored] = torch.arange(scored.shape[0])
    video = views["item"] // views_per_video
    keep = ~torch.isin(video, torch.tensor(sorted(failures), dtype=torch.long))
    return scored, views["values"][keep], position[video[keep]]


@dataclass
class VideoValues:
    """Per-video means of gathered views (summed in float64 in view order), failed videos apart."""

    video_ids: torch.Tensor
    values: torch.Tensor
    view_values: torch.Tensor
    view_video: torch.Tensor
    failures: dict[int, str]
    views_per_video: int


def per_video(views: dict[str, Any], num_videos: int, views_per_video: int) -> VideoValues:
    """Average gathered views per video (item ``i`` = view ``i % views_per_video``); failed ones apart."""
    failures = failed_videos(views["failed"], views_per_video)
    scored, values, video = scored_views(views, num_videos, views_per_video, failures)
    shape = values.shape[1:]
    if scored.numel():
        merged, _ = merge_views(values.reshape(values.shape[0], -1), video, scored.shape[0])
        merged = merged.reshape(scored.shape[0], *shape)
    else:
        merged = values.new_zeros((0, *shape))
    return VideoValues(scored, merged, values, video, failures, views_per_video)


def infer_videos(
    forward: Callable[[torch.Tensor], torch.Tensor],
    loader: Any,
    dataset: Any,
    env: DistEnv,
    log: RunLog,
    desc: str,
    tolerate: bool = False,
    dtype: torch.dtype = torch.float32,
) -> VideoValues | None:
    """``forward`` over every view of ``dataset``, averaged per video on rank 0 (None on the others)."""
    views = gather_views(forward, loader, dataset, env, log, desc, tolerate, dtype)
    return None if views is None else per_video(views, len(dataset.entries), dataset.views)


def summarize(views: dict[str, Any], labels: torch.Tensor, views_per_video: int) -> dict[str, Any]:
    """Metrics of gathered views (see :func:`per_video` for their layout and failed videos)."""
    return summarize_videos(per_video(views, labels.shape[0], views_per_video), labels)


def summarize_videos(videos: VideoValues, labels: torch.Tensor) -> dict[str, Any]:
    """Metrics of per-video softmax scores against ``labels``; failed videos left out of every number."""
    failures, scored = videos.failures, videos.video_ids
    scores, video, merged = videos.view_values, videos.view_video, videos.values
    labels = labels[scored]
    num_videos, num_classes = scored.shape[0], scores.shape[1]
    view_hits = topk_correct(scores, labels[video])
    video_hits = topk_correct(merged, labels)
    confusion = confusion_matrix(merged.argmax(dim=1), labels, num_classes)
    total_views = scores.shape[0]
    return {
        "videos": num_videos,
        "views": total_views,
        "views_per_video": videos.views_per_video,
        "failed_videos": len(failures),
        "failures": failures,
        "video_ids": scored,
        "top1": 100.0 * video_hits[1] / num_videos,
        "top5": 100.0 * video_hits[5] / num_videos,
        "view_top1": 100.0 * view_hits[1] / total_views,
        "view_top5": 100.0 * view_hits[5] / total_views,
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
    """Score on every rank, merge on rank 0: the full result there, scalar metrics elsewhere."""
    model.eval()
    return evaluate_scores(softmax_scores(model, precision), loader, dataset, env, log, desc)


def evaluate_scores(
    scores: Callable[[torch.Tensor], torch.Tensor],
    loader: Any,
    dataset: Any,
    env: DistEnv,
    log: RunLog,
    desc: str,
) -> dict[str, Any]:
    """:func:`evaluate` of any ``scores(normalised clips) -> (B, C)`` (a probe's head)."""
    videos = infer_videos(scores, loader, dataset, env, log, desc)
    result = None
    if videos is not None:
        labels = torch.tensor([entry.label for entry in dataset.entries], dtype=torch.long)
        result = summarize_videos(videos, labels)
    scalars = None if result is None else {k: result[k] for k in SCALARS}
    scalars = broadcast_from_main(scalars)
    return result if result is not None else dict(scalars)


SCALARS = ("top1", "top5", "view_top1", "view_top5")


def write_eval_files(
    result: dict[str, Any], folder: Path, entries: list[Any], class_names: list[str] | None = None
) -> dict[str, Any]:
    """``eval.json``, ``predictions.jsonl`` (failed videos with their reason) and ``confusion.csv``."""
    folder.mkdir(parents=True, exist_ok=True)
    scores, failures = result["video_scores"], result["failures"]
    top5 = scores.topk(min(5, scores.shape[1]), dim=1)
    row = {int(video): row for row, video in enumerate(result["video_ids"])}
    with atomic_write(folder / "predictions.jsonl") as handle:
        for video, entry in enumerate(entries):
            record: dict[str, Any] = {"video": video, "path": str(entry.path), "label": entry.label}
            if video in failures:
                record.update(failed=True, reason=failures[video])
            else:
                record.update(
                    prediction=int(top5.indices[row[video], 0]),
                    top5=top5.indices[row[video]].tolist(),
                    top5_scores=[round(float(s), 6) for s in top5.values[row[video]]],
                )
            handle.write(json.dumps(record) + "\n")
    confusion = result["confusion"]
    names = class_names or [str(c) for c in range(confusion.shape[0])]
    with atomic_write(folder / "confusion.csv") as handle:
        writer = csv.writer(handle)
        writer.writerow(["true \\ predicted", *names])
        for name, row in zip(names, confusion.tolist(), strict=True):
            writer.writerow([name, *row])
    keys = ("videos", "views", "views_per_video", "failed_videos", "top1", "top5", "view_top1", "view_top5")
    summary = {key: result[key] for key in keys}
    summary["failed"] = [
        {"video": video, "path": str(entries[video].path), "reason": reason}
        for video, reason in failures.items()
    ]
    summary["per_class_accuracy"] = dict(zip(names, result["per_class_accuracy"], strict=True))
    atomic_write_json(folder / "eval.json", summary)
    return summary


def eval_done(eval_json: Path) -> bool:
    """An eval.json that holds a top-1 accuracy."""
    data = read_json(eval_json)
    return isinstance(data, dict) and isinstance(data.get("top1"), (int, float))


def dataset_class_names(
    data: Any, list_file: str | None, num_classes: int, counted: str
) -> tuple[list[str], Path] | None:
    """Label names of ``data.classes_file``, else ``classes.json`` beside the list, checked (or None)."""
    from mme.io.classes import find_class_names_file, read_class_names
    from mme.models.config import check_class_names

    path = find_class_names_file(data.classes_file, list_file)
    if path is None:
        return None
    source = f"{path} (data.classes_file)" if data.classes_file is not None else str(path)
    names = read_class_names(path)
    if len(names) != num_classes:
        raise DataError(f"{source} names {len(names)} classes, but {counted} {num_classes}")
    try:
        check_class_names(names, num_classes)  # unique, non-empty
    except ConfigError as error:
        raise DataError(f"{source}: {error}") from error
    return names, path


def run_eval(config: Any) -> dict[str, Any]:
    """``mme eval``: multi-view test of any classifier checkpoint on ``data.test_list``."""
    from mme.data.loader import classification_dataset, eval_loader
    from mme.interop import load_classifier_with_report
    from mme.train.run import Run

    with Run(config, "eval", training=False) as run:
        data = config.data
        model, report = load_classifier_with_report(
            config.checkpoint, num_frames=data.num_frames, img_size=data.input_size
        )
        test_set = classification_dataset(config, "test")
        test_set.check_labels(model.num_classes, f"predicted by the checkpoint {config.checkpoint}")
        # Names: data.classes_file, else the checkpoint's own, else classes.json beside the test list.
        if data.classes_file is not None or model.class_names is None:
            predicts = f"{config.checkpoint} predicts"
            named = dataset_class_names(data, data.test_list, model.num_classes, predicts)
            if named is not None:
                model.class_names = named[0]
        run.start()
        run.log.info("model from %s: %s", config.checkpoint, report.summary())
        model.to(run.device)
        precision = Precision(config.runtime.precision, run.device)
        loader = eval_loader(test_set, config.batch.per_gpu, config.runtime, run.env)
        result = evaluate(model, loader, test_set, run.env, precision, run.log, "test")
        summary: dict[str, Any] = {"command": "eval", "checkpoint": str(config.checkpoint)}
        if run.is_main:
            summary.update(write_eval_files(result, run.out, test_set.entries, model.class_names))
        human = (
            f"{summary.get('videos')} videos x {summary.get('views_per_video')} views: top-1 "
            f"{result['top1']:.2f} top-5 {result['top5']:.2f} (single view top-1 {result['view_top1']:.2f})"
        )
        if summary.get("failed_videos"):
            human += f"; {summary['failed_videos']} video(s) excluded, they cannot be decoded"
        run.write_summary({k: v for k, v in summary.items() if k != "per_class_accuracy"}, human)
        return summary
