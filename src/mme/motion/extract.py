"""``mme extract``: one trajectory file per video; resumable, sharded, fault-tolerant (docs/motion.md)."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
import traceback
from collections.abc import Iterable, Iterator, Mapping
from concurrent import futures
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from mme.errors import ConfigError, DataError, MMEError
from mme.io.lists import VideoEntry, list_root, read_list, video_key
from mme.motion.camera import CameraStats
from mme.motion.config import DEFAULT_OFFLINE_FLOW, TrajectoryConfig
from mme.motion.flow import set_cv2_threads, shared_flow
from mme.motion.store import (
    BLOCK_FRAMES,
    QUANT_SCALE,
    TrajectoryMeta,
    TrajectoryWriter,
    read_trajectory_meta,
    verify_trajectory_file,
)
from mme.motion.tracking import track_video
from mme.utils.atomic import TMP_MARKER, is_temp_name
from mme.utils.logging import Progress, RunLog, format_duration

SUFFIX = ".traj"


@dataclass
class ExtractSettings:
    """What decides a trajectory file's content (plus how to decode)."""

    flow: str = DEFAULT_OFFLINE_FLOW
    steps: int = 4
    grid_stride: int = 8
    median_filter: bool = True
    max_displacement: float = 20.0
    max_side: int | None = None
    camera_motion: str = "none"

    def __post_init__(self) -> None:
        self.trajectory_config()  # validates the shared fields
        if self.max_side is not None and self.max_side < self.grid_stride:
            raise ConfigError(
                f"--max-side must be >= the grid stride {self.grid_stride}, got {self.max_side}"
            )

    def trajectory_config(self) -> TrajectoryConfig:
        return TrajectoryConfig(
            flow=self.flow,
            steps=self.steps,
            grid_stride=self.grid_stride,
            median_filter=self.median_filter,
            max_displacement=self.max_displacement,
            camera_motion=self.camera_motion,
        )


@dataclass
class ExtractSummary:
    total: int
    extracted: int
    skipped: int
    failed: int
    seconds: float
    failures_path: Path
    # Frame pairs of the videos extracted by this run that were camera-compensated / fell back.
    camera_pairs: int = 0
    camera_fallbacks: int = 0

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def output_path(
    video: str | os.PathLike[str], out_dir: str | os.PathLike[str], root: str | os.PathLike[str]
) -> Path:
    """``out_dir / video_key(video, root) + ".traj"`` (the key the datasets use too)."""
    key = video_key(video, root)
    return Path(out_dir) / key.parent / (key.name + SUFFIX)


def trajectory_outputs(
    entries: Iterable[VideoEntry],
    out_dir: str | os.PathLike[str],
    root: str | os.PathLike[str],
    list_path: str | os.PathLike[str],
) -> dict[Path, Path]:
    """``{video: its trajectory file}`` per distinct video, in list order; DataError on a key clash."""
    outputs: dict[Path, Path] = {}
    owners: dict[Path, VideoEntry] = {}
    for entry in entries:
        target = output_path(entry.path, out_dir, root)
        owner = owners.setdefault(target, entry)
        if owner is entry:
            outputs[Path(entry.path)] = target
        elif os.path.abspath(owner.path) != os.path.abspath(entry.path):
            raise DataError(
                f"{list_path}:{entry.line}: {entry.path} would be extracted to {target}, the file of "
                f"{owner.path} (line {owner.line}): a video outside ROOT ({root}) is keyed by its "
                "absolute path; choose a --root that holds both"
            )
    return outputs


def resolve_shard(
    shard: int | None, num_shards: int | None, environ: Mapping[str, str] | None = None
) -> tuple[int, int]:
    """(shard, num_shards) from the arguments, else torchrun's or Slurm's environment, else (0, 1)."""
    environ = os.environ if environ is None else environ
    if (shard is None) != (num_shards is None):
        raise ConfigError("give both --shard and --num-shards, or neither")
    source = "--shard/--num-shards"
    if shard is None:
        if "RANK" in environ and "WORLD_SIZE" in environ:
            source = "RANK/WORLD_SIZE"
            shard, num_shards = _env_int(environ, "RANK"), _env_int(environ, "WORLD_SIZE")
        elif "SLURM_ARRAY_TASK_ID" in environ and "SLURM_ARRAY_TASK_COUNT" in environ:
            source = "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT"
            first = _env_int(environ, "SLURM_ARRAY_TASK_MIN") if "SLURM_ARRAY_TASK_MIN" in environ else 0
            shard = _env_int(environ, "SLURM_ARRAY_TASK_ID") - first
            num_shards = _env_int(environ, "SLURM_ARRAY_TASK_COUNT")
        else:
            shard, num_shards = 0, 1
    if num_shards < 1 or not 0 <= shard < num_shards:
        raise ConfigError(f"shard {shard} of {num_shards} (from {source}) is not in [0, num_shards)")
    return shard, num_shards


def _env_int(environ: Mapping[str, str], name: str) -> int:
    try:
        return int(environ[name])
    except ValueError:
        raise ConfigError(f"environment variable {name}={environ[name]!r} is not an integer") from None


def frame_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) of the frames the flow runs on: native, or shrunk so the longer side <= max_side."""
    if max_side is None or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def extract_video(
    video: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    settings: ExtractSettings,
    decode_threads: int = 1,
) -> dict[str, Any]:
    """Compute and write one video's trajectory file; returns counts for the log (DataError if unreadable)."""
    from mme.io.video import open_video

    video = Path(video)
    config = settings.trajectory_config()
    backend = shared_flow(config.flow)
    start = time.perf_counter()
    with open_video(video, threads=decode_threads) as reader:
        source_bytes = video.stat().st_size
        width, height = frame_size(reader.width, reader.height, settings.max_side)
        if width < config.grid_stride or height < config.grid_stride:
            raise DataError(
                f"{video}: frames of {width}x{height} hold no {config.grid_stride}-pixel grid cell"
            )
        meta = TrajectoryMeta(
            num_frames=0,
            width=width,
            height=height,
            steps=config.steps,
            grid_stride=config.grid_stride,
            grid_height=height // config.grid_stride,
            grid_width=width // config.grid_stride,
            flow=config.flow,
            median_filter=config.median_filter,
            max_displacement=float(config.max_displacement),
            fps=float(reader.fps),
            source_width=reader.width,
            source_height=reader.height,
            source_bytes=source_bytes,
            max_side=settings.max_side,
            camera_motion=config.camera_motion,
        )
        writer = TrajectoryWriter(meta)
        gray = _gray_frames(reader.iter_frames(), (width, height))
        stats = CameraStats()
        for disp, valid in track_video(gray, config, backend, stats):
            writer.append(disp, valid)
    if writer.count == 0:
        raise DataError(f"no frame could be decoded from {video}")
    meta.camera_fallbacks = stats.fallback_pairs
    writer.save(out_path)
    result: dict[str, Any] = {
        "frames": meta.num_frames,
        "seconds": time.perf_counter() - start,
        "bytes": meta.file_size,
    }
    if config.camera_motion != "none":
        result.update(
            camera_pairs=stats.pairs, camera_fallbacks=stats.fallbacks, camera_summary=stats.summary()
        )
    return result


def _gray_frames(frames: Iterator[np.ndarray], size: tuple[int, int]) -> Iterator[np.ndarray]:
    for frame in frames:
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if (gray.shape[1], gray.shape[0]) != size:
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        yield gray


def expected_settings(settings: ExtractSettings, video: Path) -> dict[str, Any]:
    """The :meth:`TrajectoryMeta.settings` a finished file for ``video`` must have."""
    return {
        "steps": settings.steps,
        "grid_stride": settings.grid_stride,
        "flow": settings.flow,
        "median_filter": settings.median_filter,
        "max_displacement": float(settings.max_displacement),
        "max_side": settings.max_side,
        "camera_motion": settings.camera_motion,
        "quant_scale": QUANT_SCALE,
        "block_frames": BLOCK_FRAMES,
        "source_bytes": video.stat().st_size,
    }


def is_done(video: Path, out_path: Path, settings: ExtractSettings, verify: bool = False) -> bool:
    """True when ``out_path`` is an intact file made from ``video`` with ``settings``."""
    if not out_path.is_file() or not video.is_file():
        return False
    try:
        meta = verify_trajectory_file(out_path) if verify else read_trajectory_meta(out_path)
    except DataError:
        return False
    return meta.settings() == expected_settings(settings, video)


def list_done(listing: Path, out_dir: Path, settings: ExtractSettings) -> bool:
    """True when every video of the list file ``listing`` has an intact trajectory file in ``out_dir``."""
    from mme.io.lists import list_root, read_list

    try:
        outputs = trajectory_outputs(read_list(listing), out_dir, list_root(listing), listing)
    except DataError:
        return False
    return all(is_done(video, path, settings) for video, path in outputs.items())


def remove_stale_temp_files(finals: set[Path]) -> int:
    """Delete temporary files a killed run left next to this job's ``finals`` (never other shards')."""
    removed = 0
    for folder in {final.parent for final in finals}:
        if not folder.is_dir():
            continue
        for entry in os.scandir(folder):
            if is_temp_name(entry.name) and folder / entry.name.split(TMP_MARKER)[0] in finals:
                Path(entry.path).unlink(missing_ok=True)
                removed += 1
    return removed


def _worker_init() -> None:
    # One OpenCV thread per worker process: N workers use N cores. (Extraction never imports torch.)
    set_cv2_threads(1)


def _task(video: str, out_path: str, settings: dict[str, Any], decode_threads: int) -> dict[str, Any]:
    """Run in a worker: extract one video; failures come back as data, not exceptions."""
    try:
        result = extract_video(video, out_path, ExtractSettings(**settings), decode_threads=decode_threads)
        return {"status": "ok", **result}
    except MMEError as error:
        return {"status": "failed", "reason": str(error)}
    except Exception as error:  # one bad video (a decoder or OpenCV error) must not stop the job
        return {
            "status": "failed",
            "reason": f"{type(error).__name__}: {error}",
            "traceback": traceback.format_exc(),
        }


def run_extraction(
    list_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    settings: ExtractSettings | None = None,
    workers: int = 1,
    shard: int | None = None,
    num_shards: int | None = None,
    verify: bool = False,
    environ: Mapping[str, str] | None = None,
) -> ExtractSummary:
    """Extract the trajectories of this shard's videos of ``list_path`` into ``out_dir``."""
    settings = settings or ExtractSettings()
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    shard, num_shards = resolve_shard(shard, num_shards, environ)
    out_dir = Path(out_dir)
    # A video listed twice (train lists repeat videos under several labels) is extracted once.
    entries = read_list(list_path, root=root)
    targets = trajectory_outputs(entries, out_dir, list_root(list_path, root), list_path)
    videos = list(targets)
    mine = [video for index, video in enumerate(videos) if index % num_shards == shard]
    tag = "" if num_shards == 1 else f".shard-{shard}-of-{num_shards}"
    out_dir.mkdir(parents=True, exist_ok=True)
    failures_path = out_dir / f"failures{tag}.jsonl"
    started = time.perf_counter()
    with RunLog(out_dir, name=f"extract{tag}") as log:
        log.event(
            "start",
            human=f"extract: {len(mine)} of {len(videos)} videos in {list_path} "
            f"(shard {shard}/{num_shards}), flow={settings.flow}, max_side={settings.max_side}, "
            f"camera_motion={settings.camera_motion}, workers={workers}",
            list=str(list_path),
            shard=shard,
            num_shards=num_shards,
            videos=len(mine),
            settings=asdict(settings),
            workers=workers,
        )
        outputs = {video: targets[video] for video in mine}
        removed = remove_stale_temp_files(set(outputs.values()))
        if removed:
            log.info(f"removed {removed} temporary file(s) left by an interrupted run")
        todo = [video for video in mine if not is_done(video, outputs[video], settings, verify=verify)]
        skipped = len(mine) - len(todo)
        if skipped:
            log.info(f"{skipped} video(s) already extracted with these settings: skipped")
        failed = camera_pairs = camera_fallbacks = 0
        with (
            open(failures_path, "w", encoding="utf-8") as failures,
            Progress(len(todo), "extract", unit="video", logger=log) as bar,
        ):
            for video, result in _run_tasks(todo, outputs, settings, workers, log):
                if result["status"] == "ok":
                    fell_back = result.get("camera_fallbacks", 0)
                    camera_pairs += result.get("camera_pairs", 0)
                    camera_fallbacks += fell_back
                    human = f"{video}: {result['camera_summary']}" if fell_back else None
                    log.event("video", human=human, path=str(video), out=str(outputs[video]), **result)
                else:
                    failed += 1
                    failures.write(json.dumps({"path": str(video), "reason": result["reason"]}) + "\n")
                    failures.flush()
                    log.event(
                        "failure",
                        human=f"FAILED {video}: {result['reason']}",
                        path=str(video),
                        reason=result["reason"],
                    )
                    if "traceback" in result:
                        log.error(result["traceback"])
                bar.update(failed=failed)
        # A worker killed mid-write leaves its temporary file behind; its video was retried.
        remove_stale_temp_files(set(outputs.values()))
        seconds = time.perf_counter() - started
        summary = ExtractSummary(
            len(mine),
            len(todo) - failed,
            skipped,
            failed,
            seconds,
            failures_path,
            camera_pairs,
            camera_fallbacks,
        )
        camera = (
            f"; camera motion: {camera_fallbacks} of {camera_pairs} frame pairs fell back to "
            "uncompensated flow"
            if settings.camera_motion != "none"
            else ""
        )
        log.event(
            "summary",
            human=f"extract: {summary.total} videos: {summary.extracted} extracted, "
            f"{summary.skipped} skipped, {summary.failed} failed in {format_duration(seconds)}"
            + camera
            + (f"; failures listed in {failures_path}" if failed else ""),
            total=summary.total,
            extracted=summary.extracted,
            skipped=summary.skipped,
            failed=summary.failed,
            seconds=round(seconds, 3),
            camera_pairs=camera_pairs,
            camera_fallbacks=camera_fallbacks,
        )
    return summary


def _run_tasks(
    todo: list[Path], outputs: Mapping[Path, Path], settings: ExtractSettings, workers: int, log: RunLog
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Yield (video, result) as videos finish; in-process for one worker, else a process pool."""
    fields = asdict(settings)
    if workers == 1:
        for video in todo:
            yield video, _task(str(video), str(outputs[video]), fields, 1)
        return
    context = multiprocessing.get_context("spawn")
    pending = list(reversed(todo))
    attempts: dict[Path, int] = {}
    died = "the worker process died while extracting it (twice: killed, out of memory or crashed)"
    while pending:
        # A pool breaks when one worker dies (the OOM killer, a crash in a decoder); its in-flight
        # videos cannot tell which one did it, so each is retried once in a fresh pool.
        with futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init) as pool:
            running: dict[futures.Future[dict[str, Any]], Path] = {}
            broken = False
            while (pending or running) and not broken:
                while pending and len(running) < 2 * workers:
                    video = pending.pop()
                    attempts[video] = attempts.get(video, 0) + 1
                    running[pool.submit(_task, str(video), str(outputs[video]), fields, 1)] = video
                done, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
                for future in done:
                    try:
                        result = future.result()
                    except futures.process.BrokenProcessPool:
                        broken = True
                        continue
                    yield running.pop(future), result
            if broken:
                log.warning("a worker process died; retrying its videos in a fresh pool")
                for video in running.values():
                    if attempts[video] >= 2:
                        yield video, {"status": "failed", "reason": died}
                    else:
                        pending.append(video)
