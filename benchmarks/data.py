"""Data-pipeline throughput per worker core: decoding, pre-training and fine-tuning samples.

    python benchmarks/data.py [--quick] [--out results.json]

Sources: synthetic motion videos (mme.data.synthetic) at 320x240, 30 fps, H.264 with x264's
default keyframe interval (250) — a Kinetics-like 10 s / 300-frame clip each (96 frames with
--quick). Everything runs on ONE core (OpenCV and torch limited to one thread), as in a
data-loader worker, and reports:

1. decoding, PyAV and decord side by side on the same files: opening a video (PyAV builds its
   packet index here), the frames of one pre-training clip (T=16 at stride 4 plus the dense
   frames r_k..r_k+4: 40 distinct frames, random start) read by seeking, and a full sequential
   decode (frames/s);
2. resizing one 16-frame crop to 224x224: OpenCV bilinear vs torch's antialiased uint8 resize
   (how mme.data.geometry.resize_frames chooses);
3. pre-training samples at 16x224x224 (decode + multi-scale crop + online trajectories with the
   online default flow + tube mask): the time of each stage and PretrainDataset samples/s;
4. fine-tuning samples at 16x224x224 (decode + random resized crop + RandAugment m7-n4 + random
   erasing, 2 clips per video): the stages and VideoClassificationDataset clips/s.

Workers needed = (clips/s the GPU consumes) / (clips/s per core), see benchmarks/README.md.
Timings are medians of repeats in CPU seconds of this process (the per-core cost; wall times are
recorded too and show the load of a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from mme.data.config import ClassificationDataConfig, PretrainDataConfig
from mme.data.datasets import PretrainDataset, VideoClassificationDataset
from mme.data.geometry import multi_scale_crop, random_resized_crop
from mme.data.masking import MaskGenerator
from mme.data.sampling import stride_clip
from mme.data.synthetic import SynthConfig, render_video
from mme.data.transforms import RandAugment, random_erase, to_clip_tensor
from mme.io.lists import list_root, read_list, write_list
from mme.io.video import open_video, write_video
from mme.motion import TrajectoryConfig, dense_clip_trajectories
from mme.motion.config import DEFAULT_ONLINE_FLOW
from mme.motion.extract import ExtractSettings, extract_video, output_path


def timed(function: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """(median CPU seconds, median wall seconds) of ``repeats`` calls after one warm-up call.

    CPU time (``time.process_time``: all threads of this process) is the per-core cost and is
    what the tables report: on a shared machine wall time also counts the waits for a core
    (it is recorded alongside, to show the load).
    """
    function()
    cpu, wall = [], []
    for _ in range(repeats):
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        function()
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start_wall)
    return statistics.median(cpu), statistics.median(wall)


def machine() -> dict[str, Any]:
    model = "unknown"
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import av

    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "opencv": cv2.__version__,
        "pyav": av.__version__,
        "numpy": np.__version__,
    }


def make_sources(folder: Path, count: int, frames: int, gop: int | None = None) -> Path:
    """``count`` 320x240 30 fps H.264 videos (keyframe every ``gop`` frames, None: x264's 250)
    and a list of them."""
    folder.mkdir(parents=True, exist_ok=True)
    config = SynthConfig(classes=8, videos_per_class=3, frames=frames, width=320, height=240, fps=30.0)
    entries = []
    for index in range(count):
        path = folder / f"video_{index}.mp4"
        write_video(path, render_video(config, index, index % 8), fps=30.0, crf=20, gop=gop)
        entries.append((path, index % 8))
    write_list(folder / "list.csv", entries)
    return folder / "list.csv"


def bench_decoding(paths: list[Path], repeats: int, gop: str) -> list[dict[str, Any]]:
    """Open / one pre-training clip (seeking) / full sequential decode, per backend."""
    rows = []
    backends = ["pyav"]
    try:
        import decord  # noqa: F401

        backends.append("decord")
    except ImportError:
        print("decord not installed: skipped", file=sys.stderr)
    with open_video(paths[0]) as reader:
        frame_count = reader.num_frames
    for backend in backends:
        rng = np.random.default_rng(0)
        order = iter(range(10**9))

        def open_only(backend: str = backend, order=order) -> None:
            with open_video(paths[next(order) % len(paths)], backend):
                pass

        decoded: list[int] = []

        def one_clip(backend: str = backend, order=order, rng=rng, decoded=decoded) -> None:
            with open_video(paths[next(order) % len(paths)], backend) as reader:
                unique, _, _ = stride_clip(reader.num_frames, 16, 4, rng, steps=4).union()
                reader.get_frames(unique)
                decoded.append(getattr(reader, "frames_decoded", 0))  # PyAV counts them

        def sequential(backend: str = backend) -> None:
            with open_video(paths[0], backend) as reader:
                for _ in reader.iter_frames():
                    pass

        open_cpu, _ = timed(open_only, repeats)
        clip_cpu, clip_wall = timed(one_clip, repeats)
        seq_cpu, seq_wall = timed(sequential, max(3, repeats // 4))
        rows.append(
            {
                "backend": backend,
                "gop": gop,
                "open_ms": 1000 * open_cpu,
                "clip_ms": 1000 * clip_cpu,
                "clip_wall_ms": 1000 * clip_wall,
                "clips_per_s": 1 / clip_cpu,
                "frames_decoded_per_clip": statistics.mean(decoded) if backend == "pyav" else None,
                "sequential_fps": frame_count / seq_cpu,
                "sequential_wall_fps": frame_count / seq_wall,
            }
        )
    return rows


def bench_resize(repeats: int) -> dict[str, float]:
    crop = np.random.default_rng(0).integers(0, 256, (16, 240, 240, 3), dtype=np.uint8)
    tensor = torch.from_numpy(crop).permute(0, 3, 1, 2)

    def with_cv2() -> None:
        for frame in crop:
            cv2.resize(frame, (224, 224), interpolation=cv2.INTER_LINEAR)

    def with_torch() -> None:
        torch.nn.functional.interpolate(tensor, size=(224, 224), mode="bilinear", antialias=True)

    return {
        "cv2_bilinear_ms": 1000 * timed(with_cv2, repeats)[0],
        "torch_antialias_uint8_ms": 1000 * timed(with_torch, repeats)[0],
    }


def bench_pretrain(
    list_path: Path, folder: Path, repeats: int, traj_root: Path | None = None
) -> dict[str, Any]:
    """Stages and end-to-end samples/s; offline trajectories from ``traj_root`` when given."""
    traj = TrajectoryConfig()  # the online default flow
    if traj_root is not None:
        config = PretrainDataConfig(
            train_list=str(list_path), trajectories="offline", traj_root=str(traj_root)
        )
        dataset = PretrainDataset(config, traj, bad_video_dir=folder / "bad_offline")
        np.random.seed(0)
        order = iter(range(10**9))
        cpu, wall = timed(lambda: dataset[next(order) % len(dataset)], repeats)
        return {
            "trajectories": "offline",
            "sample_ms": 1000 * cpu,
            "sample_wall_ms": 1000 * wall,
            "clips_per_s": 1 / cpu,
        }
    config = PretrainDataConfig(train_list=str(list_path))
    dataset = PretrainDataset(config, traj, bad_video_dir=folder / "bad")
    paths = [entry.path for entry in read_list(list_path)]
    rng = np.random.default_rng(0)
    with open_video(paths[0]) as reader:
        indices = stride_clip(reader.num_frames, 16, 4, rng, steps=traj.steps)
        unique, frame_pos, dense_pos = indices.union()
        frames = reader.get_frames(unique)
    geometry = multi_scale_crop(240, 320, 224, rng)
    augmented = geometry.apply_to_frames(frames)
    masks = MaskGenerator((8, 14, 14), 0.7)
    stages = {
        "decode_ms": timed(lambda: _decode(paths, rng), repeats)[0],
        "crop_resize_ms": timed(
            lambda: multi_scale_crop(240, 320, 224, rng).apply_to_frames(frames), repeats
        )[0],
        "trajectories_ms": timed(lambda: dense_clip_trajectories(augmented, dense_pos, traj), repeats)[0],
        "to_tensor_mask_ms": timed(lambda: (to_clip_tensor(augmented[frame_pos]), masks(rng)), repeats)[0],
    }
    stages = {key: 1000 * value for key, value in stages.items()}
    np.random.seed(0)
    cursor = {"i": 0}

    def sample() -> None:
        cursor["i"] += 1
        dataset[cursor["i"] % len(dataset)]

    cpu, wall = timed(sample, repeats)
    return {
        "flow": traj.flow,
        **stages,
        "sample_ms": 1000 * cpu,
        "sample_wall_ms": 1000 * wall,
        "clips_per_s": 1 / cpu,
        "trajectories": "online",
    }


def _decode(paths: list[Path], rng: np.random.Generator) -> None:
    path = paths[int(rng.integers(len(paths)))]
    with open_video(path) as reader:
        unique, _, _ = stride_clip(reader.num_frames, 16, 4, rng, steps=4).union()
        reader.get_frames(unique)


def bench_finetune(list_path: Path, folder: Path, repeats: int) -> dict[str, Any]:
    config = ClassificationDataConfig(train_list=str(list_path))
    dataset = VideoClassificationDataset(config, "train", bad_video_dir=folder / "bad_ft")
    paths = [entry.path for entry in read_list(list_path)]
    rng = np.random.default_rng(0)
    with open_video(paths[0]) as reader:
        frames = reader.get_frames(stride_clip(reader.num_frames, 16, 4, rng).frames)
    augment = RandAugment.from_string(config.rand_augment)
    resized = random_resized_crop(240, 320, 224, rng).apply_to_frames(frames)

    def decode() -> None:
        path = paths[int(rng.integers(len(paths)))]
        with open_video(path) as reader:
            reader.get_frames(stride_clip(reader.num_frames, 16, 4, rng).frames)

    stages = {
        "decode_ms": timed(decode, repeats)[0],
        "crop_resize_ms": timed(
            lambda: random_resized_crop(240, 320, 224, rng).apply_to_frames(frames), repeats
        )[0],
        "rand_augment_ms": timed(lambda: augment(resized.copy(), rng), repeats)[0],
        "erase_to_tensor_ms": timed(lambda: to_clip_tensor(random_erase(resized.copy(), rng, 0.25)), repeats)[
            0
        ],
    }
    stages = {key: 1000 * value for key, value in stages.items()}
    np.random.seed(0)
    cursor = {"i": 0}

    def item() -> None:
        cursor["i"] += 1
        dataset[cursor["i"] % len(dataset)]

    cpu, wall = timed(item, repeats)
    clips = config.num_sample
    return {
        **stages,
        "item_ms": 1000 * cpu,
        "item_wall_ms": 1000 * wall,
        "clips_per_item": clips,
        "clips_per_s": clips / cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer, shorter videos and repeats")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    count, frames, repeats = (3, 96, 7) if args.quick else (6, 300, 25)
    results: dict[str, Any] = {"machine": machine(), "load_before": os.getloadavg(), "quick": args.quick}
    with tempfile.TemporaryDirectory(prefix="mme-bench-data-") as tmp:
        folder = Path(tmp)
        print(f"rendering {count} videos of {frames} frames at 320x240 ...", file=sys.stderr)
        list_path = make_sources(folder / "gop250", count, frames)
        short_gop = make_sources(folder / "gop16", count, frames, gop=16)
        paths = [entry.path for entry in read_list(list_path)]
        results["sources"] = {"videos": count, "frames": frames, "size": "320x240", "fps": 30}
        results["decoding"] = bench_decoding(paths, repeats, "250 (x264 default)")
        results["decoding"] += bench_decoding([e.path for e in read_list(short_gop)], repeats, "16")
        results["resize_16x240_to_224"] = bench_resize(repeats)
        results["pretrain"] = bench_pretrain(list_path, folder, repeats)
        print("extracting offline trajectories ...", file=sys.stderr)
        settings = ExtractSettings(flow=DEFAULT_ONLINE_FLOW)
        for path in paths:
            extract_video(path, output_path(path, folder / "traj", list_root(list_path)), settings)
        results["pretrain_offline"] = bench_pretrain(list_path, folder, repeats, folder / "traj")
        results["finetune"] = bench_finetune(list_path, folder, repeats)
    results["load_after"] = os.getloadavg()
    print(report(results))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


def report(results: dict[str, Any]) -> str:
    lines = [f"machine: {results['machine']}"]
    lines.append(f"load average before {results['load_before']}, after {results['load_after']}")
    lines.append("CPU ms of one core (wall ms in brackets)")
    lines.append(
        "\n| backend | GOP | open ms | pre-training clip (40 frames) ms | clips/s | frames decoded per clip "
        "| sequential frames/s |"
    )
    lines.append("|---|---|---|---|---|---|---|")
    for row in results["decoding"]:
        decoded = "-" if row["frames_decoded_per_clip"] is None else f"{row['frames_decoded_per_clip']:.0f}"
        lines.append(
            f"| {row['backend']} | {row['gop']} | {row['open_ms']:.1f} | {row['clip_ms']:.1f} "
            f"({row['clip_wall_ms']:.1f}) | {row['clips_per_s']:.1f} | {decoded} "
            f"| {row['sequential_fps']:.0f} |"
        )
    resize = results["resize_16x240_to_224"]
    lines.append(
        f"\nresize 16 frames 240->224: cv2 bilinear {resize['cv2_bilinear_ms']:.1f} ms, "
        f"torch antialiased uint8 {resize['torch_antialias_uint8_ms']:.1f} ms"
    )
    pre, fine, offline = results["pretrain"], results["finetune"], results["pretrain_offline"]
    lines.append(
        f"\npre-training sample ({pre['flow']}): decode {pre['decode_ms']:.1f} + crop/resize "
        f"{pre['crop_resize_ms']:.1f} + trajectories {pre['trajectories_ms']:.1f} + tensor/mask "
        f"{pre['to_tensor_mask_ms']:.1f} ms; end to end {pre['sample_ms']:.1f} ms "
        f"({pre['sample_wall_ms']:.1f}) = {pre['clips_per_s']:.1f} clips/s per core"
    )
    lines.append(
        f"pre-training sample, offline trajectories: {offline['sample_ms']:.1f} ms "
        f"({offline['sample_wall_ms']:.1f}) = {offline['clips_per_s']:.1f} clips/s per core"
    )
    lines.append(
        f"fine-tuning item ({fine['clips_per_item']} clips): decode {fine['decode_ms']:.1f} + per clip: "
        f"crop/resize {fine['crop_resize_ms']:.1f} + RandAugment {fine['rand_augment_ms']:.1f} + "
        f"erase/tensor {fine['erase_to_tensor_ms']:.1f} ms; end to end {fine['item_ms']:.1f} ms "
        f"({fine['item_wall_ms']:.1f}) = {fine['clips_per_s']:.1f} clips/s per core"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
