"""``mme embed``: frozen-encoder features in safetensors shards with an index (docs/using.md)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mme.errors import ConfigError, DataError
from mme.eval.evaluate import VideoValues, infer_videos
from mme.eval.infer import (
    ViewSettings,
    data_config,
    inference_threads,
    load_model,
    local_env,
    make_dataset,
    make_loader,
    scratch_folder,
)
from mme.io.inputs import VideoInput, gather_videos, list_videos
from mme.io.lists import VideoEntry
from mme.train.trainer import Precision
from mme.utils.atomic import atomic_path, atomic_write_json
from mme.utils.logging import Progress, RunLog, format_duration

FORMAT = "mme-embeddings"
FORMAT_VERSION = 1
POOLS = ("mean", "cls-free", "tokens")
SETTINGS_FILE = "embed.json"
INDEX_FILE = "index.json"
METADATA_KEY = "mme_embeddings"


def default_shard_size(pool: str) -> int:
    """Videos per shard when not given: token grids are ~N times larger than pooled vectors."""
    return 32 if pool == "tokens" else 1024


@dataclass
class EmbedSummary:
    videos: int  # in the whole input
    mine: int  # in this process's shards
    embedded: int  # by this run
    skipped: int  # in shards a previous run finished
    failed: int  # in this process's shards, by this run or an earlier one
    seconds: float
    index: Path | None  # written by this process (None: other shards are not finished yet)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def pool_forward(model: nn.Module, pool: str, precision: Precision) -> Callable[[torch.Tensor], torch.Tensor]:
    """``forward(normalised clips)`` giving the ``pool`` features of each clip (docs/using.md)."""

    def forward(clip: torch.Tensor) -> torch.Tensor:
        with precision.autocast():
            if pool == "mean":
                return model.forward_features(clip).float()
            tokens = model.forward_blocks(model.embed(clip))
            return (tokens if pool == "tokens" else tokens.mean(dim=1)).float()

    return forward


def embed(
    checkpoint: str | os.PathLike[str] | nn.Module,
    videos: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | None = None,
    out: str | os.PathLike[str] | None = None,
    *,
    list_file: str | os.PathLike[str] | None = None,
    pool: str = "mean",
    per_view: bool = False,
    shard_size: int | None = None,
    shard: int | None = None,
    num_shards: int | None = None,
    settings: dict[str, Any] | None = None,
) -> EmbedSummary:
    """Embed ``videos`` or ``list_file``'s videos into ``out`` (by default one centred clip per video)."""
    from mme.motion.extract import resolve_shard

    if out is None:
        raise ConfigError("--out must name the output folder")
    view_settings = ViewSettings.from_options({"clips": 1, "crops": 1, **(settings or {})})
    if pool not in POOLS:
        raise ConfigError(f"pool (--pool) must be one of {', '.join(POOLS)}, got {pool!r}")
    shard_size = default_shard_size(pool) if shard_size is None else shard_size
    if shard_size < 1:
        raise ConfigError(f"shard_size (--shard-size) must be >= 1, got {shard_size}")
    shard, num_shards = resolve_shard(shard, num_shards)
    inputs = select_inputs(videos, list_file)
    out = Path(out)
    tag = "" if num_shards == 1 else f".shard-{shard}-of-{num_shards}"
    with RunLog(out, f"embed{tag}", defer_files=True) as log:
        model = load_model(checkpoint, log)
        data = data_config(model, view_settings)
        described = describe_run(checkpoint, model, inputs, pool, per_view, shard_size, view_settings)
        check_settings(out, described)  # before any file: a mismatch leaves the folder as it was
        log.open_files()
        groups = [inputs[first : first + shard_size] for first in range(0, len(inputs), shard_size)]
        mine = [k for k in range(len(groups)) if k % num_shards == shard]
        todo = shards_to_do(out, mine, log)
        skipped = sum(len(groups[k]) for k in mine if k not in todo)
        log.event(
            "start",
            human=f"embed: {len(inputs)} videos in {len(groups)} shard(s) of {shard_size}; shard "
            f"{shard} of {num_shards} of the job: {len(mine)} shard(s), {len(mine) - len(todo)} done before; "
            f"pool={pool}, per_view={per_view}, views {view_settings.clips}x{view_settings.crops}",
            videos=len(inputs),
            shards=len(groups),
            todo=todo,
            settings=described,
        )
        started = time.perf_counter()
        jobs = [(k, groups[k]) for k in todo]
        embedded = embed_shards(model, jobs, out, shard_size, data, view_settings, pool, per_view, log)
        # Failed videos of every shard of this process, finished now or by an earlier run.
        failed = sum(len(shard_metadata(shard_path(out, k))["failed"]) for k in mine)
        index = write_index_when_complete(out, len(groups), described)
        seconds = time.perf_counter() - started
        mine_videos = sum(len(groups[k]) for k in mine)
        summary = EmbedSummary(len(inputs), mine_videos, embedded, skipped, failed, seconds, index)
        log.event(
            "summary",
            human=f"embed: {embedded} videos embedded, {skipped} skipped (done before), {failed} failed, in "
            f"{format_duration(seconds)} ({embedded / max(seconds, 1e-9):.2f} videos/s); "
            + (f"index: {index}" if index else "index.json follows when every shard is done"),
            embedded=embedded,
            skipped=skipped,
            failed=failed,
            seconds=round(seconds, 3),
            index=str(index) if index else None,
        )
        return summary


def shards_to_do(out: Path, mine: Sequence[int], log: RunLog) -> list[int]:
    """This process's shards without a file, after removing its own stale temporary files."""
    from mme.motion.extract import remove_stale_temp_files

    removed = remove_stale_temp_files({shard_path(out, k) for k in mine})
    if removed:
        log.info("removed %d temporary file(s) left by an interrupted run", removed)
    return [k for k in mine if not shard_path(out, k).is_file()]


def embed_shards(
    model: nn.Module,
    jobs: Sequence[tuple[int, Sequence[VideoInput]]],
    out: Path,
    shard_size: int,
    data: Any,
    settings: ViewSettings,
    pool: str,
    per_view: bool,
    log: RunLog,
) -> int:
    """Compute and write the shards ``jobs`` (shard index, its videos); the videos embedded."""
    env = local_env(settings.device)
    model.to(env.device).eval()
    forward = pool_forward(model, pool, Precision(settings.precision, env.device))
    embedded = failed = 0
    total = sum(len(videos) for _, videos in jobs)
    with (
        scratch_folder() as scratch,
        inference_threads(env, settings.workers),
        Progress(total, "embed", unit="video", logger=log) as bar,
    ):
        for k, videos in jobs:
            dataset = make_dataset([VideoEntry(v.path, v.label or 0) for v in videos], data, scratch)
            loader = make_loader(dataset, settings, env)
            values = infer_videos(forward, loader, dataset, env, log, f"embed shard {k}", tolerate=True)
            assert values is not None  # this process is rank 0 of its own
            count = write_shard(shard_path(out, k), values, videos, k * shard_size, per_view)
            failed += count
            embedded += len(videos) - count
            bar.update(len(videos), failed=failed)
    return embedded


def select_inputs(
    videos: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | None,
    list_file: str | os.PathLike[str] | None,
) -> list[VideoInput]:
    if (videos is None) == (list_file is None):
        raise ConfigError("name the videos either with --list LIST or as INPUTs (one of the two)")
    if list_file is not None:
        return list_videos(list_file)
    if isinstance(videos, (str, os.PathLike)):
        videos = [videos]
    return gather_videos(videos)


def shard_path(out: Path, k: int) -> Path:
    return out / f"shard-{k:05d}.safetensors"


def describe_run(
    checkpoint: Any,
    model: nn.Module,
    inputs: Sequence[VideoInput],
    pool: str,
    per_view: bool,
    shard_size: int,
    settings: ViewSettings,
) -> dict[str, Any]:
    """Everything that decides the stored values and where each lands: ``embed.json``."""
    listing = "\n".join(f"{os.path.abspath(v.path)}\t{v.label}" for v in inputs)
    if isinstance(checkpoint, (str, os.PathLike)):
        source = os.path.abspath(checkpoint)
    else:  # a model handed over in Python: its architecture (below) is all that can be compared
        source = f"a {type(checkpoint).__name__} given in Python"
    config = model.config
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "checkpoint": source,
        "model": {key: getattr(config, key) for key in ("embed_dim", "depth", "num_frames", "img_size")},
        "pool": pool,
        "per_view": per_view,
        "shard_size": shard_size,
        "views": settings.describe(),
        "videos": len(inputs),
        "inputs_sha256": hashlib.sha256(listing.encode()).hexdigest(),
    }


def check_settings(out: Path, described: dict[str, Any]) -> None:
    """Write ``embed.json``, or check that an existing one (a previous run) says the same."""
    path = out / SETTINGS_FILE
    if path.is_file():
        before = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(key for key in set(before) | set(described) if before.get(key) != described.get(key))
        if changed:
            details = "; ".join(
                f"{key}: {before.get(key)!r} then, {described.get(key)!r} now" for key in changed
            )
            raise ConfigError(
                f"{out} holds embeddings made with other settings ({details}); rerun with the same "
                "settings to resume, or choose another --out"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, described)


def write_shard(
    path: Path, values: VideoValues, videos: Sequence[VideoInput], first: int, per_view: bool
) -> int:
    """One shard file (atomically); returns how many of its videos failed."""
    from safetensors.torch import save_file

    features, video_ids, view_ids, rows = [], [], [], []
    position = {int(item): row for row, item in enumerate(values.video_ids)}
    next_row = 0
    for item, source in enumerate(videos):
        if item not in position:
            continue
        if per_view:
            kept = values.view_values[values.view_video == position[item]]
            views = torch.arange(kept.shape[0])
        else:
            kept = values.values[position[item]].unsqueeze(0)
            views = torch.tensor([-1])
        features.append(kept)
        video_ids.append(torch.full((kept.shape[0],), first + item, dtype=torch.long))
        view_ids.append(views.long())
        rows.append(
            {
                "video": first + item,
                "path": str(source.path),
                "label": source.label,
                "row": next_row,
                "rows": kept.shape[0],
            }
        )
        next_row += kept.shape[0]
    failed = [
        {"video": first + item, "path": str(videos[item].path), "reason": reason}
        for item, reason in sorted(values.failures.items())
    ]
    shape = tuple(values.values.shape[1:]) if values.values.numel() else ()
    tensors = {
        "features": torch.cat(features) if features else torch.zeros((0, *shape)),
        "video": torch.cat(video_ids) if video_ids else torch.zeros(0, dtype=torch.long),
        "view": torch.cat(view_ids) if view_ids else torch.zeros(0, dtype=torch.long),
    }
    metadata = {
        METADATA_KEY: json.dumps({"format_version": FORMAT_VERSION, "videos": rows, "failed": failed})
    }
    with atomic_path(path) as tmp:
        save_file({key: value.contiguous() for key, value in tensors.items()}, str(tmp), metadata=metadata)
    return len(failed)


def shard_metadata(path: Path) -> dict[str, Any]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as handle:
            return json.loads((handle.metadata() or {})[METADATA_KEY])
    except (OSError, KeyError, ValueError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: not a shard of mme embed ({error}); delete it and run again") from error


def write_index_when_complete(out: Path, num_shards: int, described: dict[str, Any]) -> Path | None:
    """``index.json`` from every shard's metadata once all shards exist (else None)."""
    paths = [shard_path(out, k) for k in range(num_shards)]
    if not all(path.is_file() for path in paths):
        return None
    videos, failed = [], []
    for path in paths:
        meta = shard_metadata(path)
        videos.extend({**row, "shard": path.name} for row in meta["videos"])
        failed.extend(meta["failed"])
    index = {
        **described,
        "shards": [path.name for path in paths],
        "embedded": len(videos),
        "failed_videos": len(failed),
        "entries": sorted(videos, key=lambda row: row["video"]),
        "failed": sorted(failed, key=lambda row: row["video"]),
    }
    atomic_write_json(out / INDEX_FILE, index)
    return out / INDEX_FILE


def read_embeddings(folder: str | os.PathLike[str]) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """Every row of a finished ``mme embed`` folder, in input order, and each video's index entry."""
    from safetensors.torch import load_file

    folder = Path(folder)
    index_path = folder / INDEX_FILE
    if not index_path.is_file():
        raise DataError(f"{folder}: no {INDEX_FILE} (is every shard of mme embed done?)")
    index = json.loads(index_path.read_text(encoding="utf-8"))
    shards = {name: load_file(str(folder / name))["features"] for name in index["shards"]}
    rows, entries, start = [], [], 0
    for entry in index["entries"]:
        rows.append(shards[entry["shard"]][entry["row"] : entry["row"] + entry["rows"]])
        entries.append({**entry, "start": start})
        start += entry["rows"]
    dim = next(iter(shards.values())).shape[1:] if shards else ()
    return (torch.cat(rows) if rows else torch.zeros((0, *dim))), entries
