"""``mme predict``: top-k classes of any videos, scored as ``mme eval`` scores (docs/using.md)."""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from mme.errors import CheckpointError, ConfigError, DataError
from mme.eval.evaluate import infer_videos, softmax_scores
from mme.eval.infer import (
    ViewSettings,
    WindowEntry,
    data_config,
    frame_windows,
    inference_threads,
    load_model,
    local_env,
    make_dataset,
    make_loader,
    scratch_folder,
)
from mme.io.inputs import VideoInput, gather_videos
from mme.io.lists import VideoEntry
from mme.train.trainer import Precision
from mme.utils.atomic import atomic_write
from mme.utils.logging import RunLog, format_duration

OUTPUT_SUFFIXES = (".jsonl", ".csv")


@dataclass(frozen=True)
class Row:
    """One record to be: a video or a window of it, and its dataset entry (None: could not be opened)."""

    video: int
    source: VideoInput
    entry: VideoEntry | None
    window: tuple[int, float, float] | None = None  # (index, start s, end s)
    reason: str = ""


def predict(
    checkpoint: str | os.PathLike[str] | nn.Module,
    videos: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    classes: str | os.PathLike[str] | None = None,
    topk: int = 5,
    window_seconds: float | None = None,
    stride_seconds: float | None = None,
    out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    log: RunLog | None = None,
    **settings: Any,
) -> list[dict[str, Any]]:
    """Top-``topk`` records of every video (or window) of ``videos``; also written to ``out`` if given."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError(
            "mme predict runs as one process (under torchrun every process would score every video); "
            "use mme eval for a labelled list on several GPUs"
        )
    view_settings = ViewSettings.from_options(settings)
    out_path = check_output(out, overwrite)
    windows = check_windows(window_seconds, stride_seconds)
    if isinstance(videos, (str, os.PathLike)):
        videos = [videos]
    inputs = gather_videos(videos)
    log = log or RunLog(None, "predict")
    model = load_model(checkpoint, log)
    if model.num_classes == 0:
        raise CheckpointError(
            f"{checkpoint} has no classification head (a pre-training checkpoint?): there are no classes "
            "to predict. Use `mme embed` for its features, or `mme probe` / `mme finetune` to train a head"
        )
    names = class_names(model, classes, checkpoint)
    if topk < 1:
        raise ConfigError(f"topk (--topk) must be >= 1, got {topk}")
    topk = min(topk, model.num_classes)
    data = data_config(model, view_settings)
    rows = plan_rows(inputs, windows, data.decode_backend)
    env = local_env(view_settings.device)
    started = time.perf_counter()
    with scratch_folder() as scratch, inference_threads(env, view_settings.workers):
        entries = [row.entry for row in rows if row.entry is not None]
        scores = None
        if entries:
            dataset = make_dataset(entries, data, scratch)
            loader = make_loader(dataset, view_settings, env)
            model.to(env.device).eval()
            forward = softmax_scores(model, Precision(view_settings.precision, env.device))
            scores = infer_videos(forward, loader, dataset, env, log, "predict", tolerate=True)
    records = make_records(rows, scores, names, topk)
    seconds = time.perf_counter() - started
    failed = sum(1 for record in records if record.get("failed"))
    if out_path is not None:
        write_records(records, out_path, topk)
    what = f"{len(records)} windows of {len(inputs)} videos" if windows else f"{len(inputs)} videos"
    log.info(
        "predict: %s (%d failed) in %s, %.2f videos/s%s",
        what,
        failed,
        format_duration(seconds),
        len(inputs) / max(seconds, 1e-9),
        f"; wrote {out_path}" if out_path is not None else "",
    )
    return records


def check_output(out: str | os.PathLike[str] | None, overwrite: bool) -> Path | None:
    """The output file, checked before any work: a known suffix, and not there unless ``overwrite``."""
    if out is None:
        return None
    path = Path(out)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ConfigError(f"--out {path}: the file name must end in .jsonl or .csv")
    if path.exists() and not overwrite:
        raise ConfigError(f"--out {path} already exists; refusing to overwrite it (use --overwrite)")
    if path.is_dir():
        raise ConfigError(f"--out {path} is a folder; name a .jsonl or .csv file")
    return path


def check_windows(window_seconds: float | None, stride_seconds: float | None) -> tuple[float, float] | None:
    """``(window, stride)`` in seconds (the stride defaults to the window), or None."""
    if window_seconds is None:
        if stride_seconds is not None:
            raise ConfigError("--stride-seconds needs --window-seconds")
        return None
    stride_seconds = window_seconds if stride_seconds is None else stride_seconds
    for flag, value in (("--window-seconds", window_seconds), ("--stride-seconds", stride_seconds)):
        if not value > 0:
            raise ConfigError(f"{flag} must be > 0, got {value}")
    return float(window_seconds), float(stride_seconds)


def class_names(model: nn.Module, classes: str | os.PathLike[str] | None, checkpoint: Any) -> list[str]:
    """The name of every output: the ``classes`` file, else the model's, else the indices."""
    from mme.io.classes import read_class_names
    from mme.models.config import check_class_names

    if classes is None:
        return model.class_names or [str(index) for index in range(model.num_classes)]
    names = read_class_names(classes)
    if len(names) != model.num_classes:
        raise DataError(
            f"{classes} (--classes) names {len(names)} classes, but the checkpoint {checkpoint} "
            f"predicts {model.num_classes}"
        )
    try:
        return check_class_names(names, model.num_classes)
    except ConfigError as error:
        raise DataError(f"{classes} (--classes): {error}") from error


def plan_rows(inputs: Sequence[VideoInput], windows: tuple[float, float] | None, backend: str) -> list[Row]:
    """One row per input video, or per window of it (a video that cannot be opened: one failed row)."""
    from mme.io.video import open_video

    rows = []
    for video, source in enumerate(inputs):
        label = 0 if source.label is None else source.label  # the dataset's field; not reported
        if windows is None:
            rows.append(Row(video, source, VideoEntry(source.path, label)))
            continue
        try:
            with open_video(source.path, backend) as reader:
                num_frames, fps = reader.num_frames, reader.fps
        except DataError as error:
            rows.append(Row(video, source, None, reason=str(error)))
            continue
        if not fps > 0:
            rows.append(
                Row(video, source, None, reason=f"{source.path}: unknown frame rate, cannot cut windows")
            )
            continue
        for index, (start, end) in enumerate(frame_windows(num_frames, fps, *windows)):
            entry = WindowEntry(source.path, label, start_frame=start, end_frame=end)
            rows.append(Row(video, source, entry, (index, round(start / fps, 3), round(end / fps, 3))))
    return rows


def make_records(rows: Sequence[Row], scores: Any, names: list[str], topk: int) -> list[dict[str, Any]]:
    """The records of the rows from :func:`infer_videos`' per-video scores."""
    best = None
    position: dict[int, int] = {}
    if scores is not None and scores.video_ids.numel():
        best = scores.values.topk(topk, dim=1)
        position = {int(item): row for row, item in enumerate(scores.video_ids)}
    records, item = [], 0
    for row in rows:
        record: dict[str, Any] = {"video": row.video, "path": str(row.source.path)}
        if row.source.label is not None:
            record["label"] = row.source.label
        if row.window is not None:
            record.update(window=row.window[0], start=row.window[1], end=row.window[2])
        if row.entry is None:
            record.update(failed=True, reason=row.reason)
        else:
            if item in position:
                indices = best.indices[position[item]].tolist()
                record.update(
                    prediction=indices[0],
                    prediction_name=names[indices[0]],
                    topk=indices,
                    topk_names=[names[index] for index in indices],
                    topk_scores=[round(float(score), 6) for score in best.values[position[item]]],
                )
            else:
                record.update(failed=True, reason=scores.failures[item])
            item += 1
        records.append(record)
    return records


def csv_header(topk: int) -> list[str]:
    columns = ["video", "path", "label", "window", "start", "end", "failed", "reason"]
    for rank in range(1, topk + 1):
        columns += [f"class_{rank}", f"name_{rank}", f"score_{rank}"]
    return columns


def write_records(records: Sequence[dict[str, Any]], path: Path, topk: int) -> None:
    """JSON lines or CSV (by the suffix), atomically."""
    with atomic_write(path) as handle:
        if path.suffix.lower() == ".jsonl":
            handle.writelines(json.dumps(record) + "\n" for record in records)
            return
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(csv_header(topk))
        for record in records:
            row = [record.get(key, "") for key in ("video", "path", "label", "window", "start", "end")]
            row += [bool(record.get("failed", False)), record.get("reason", "")]
            for rank in range(topk):
                if record.get("failed"):
                    row += ["", "", ""]
                else:
                    row += [record["topk"][rank], record["topk_names"][rank], record["topk_scores"][rank]]
            writer.writerow(row)


def records_table(records: Sequence[dict[str, Any]]) -> Any:
    """A rich table of the records for the terminal: video (and window), then the top-k."""
    from rich.table import Table

    windows = any("window" in record for record in records)
    table = Table(show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("video", overflow="fold")
    if windows:
        table.add_column("window (s)")
    table.add_column("top-k (probability)")
    for record in records:
        cells = [str(record["video"]), record["path"]]
        if windows:
            cells.append(f"{record['start']:.2f}-{record['end']:.2f}" if "window" in record else "")
        if record.get("failed"):
            cells.append(f"[red]FAILED[/red] {_escape(record['reason'])}")
        else:
            pairs = zip(record["topk_names"], record["topk_scores"], strict=True)
            cells.append(", ".join(f"{_escape(name)} {100 * score:.1f}%" for name, score in pairs))
        table.add_row(*cells)
    return table


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
