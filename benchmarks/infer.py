"""Throughput of `mme predict` and `mme embed` (videos/s), end to end, on random-weight ViTs.

    python benchmarks/infer.py [--videos 16] [--sizes small,base] [--batch 8] [--workers W]
                               [--precisions fp32] [--device cpu] [--out results.json]

Sources: ``--videos`` moving-texture videos of 3 s at 320x240, 30 fps, H.264 (x264 defaults),
written to a temporary folder. Each model (16x224x224 clips, 400 classes, random weights:
speed does not depend on them) is saved as an mme folder, then timed through the Python API as
a user calls it: ``mme.predict`` (1 clip x 1 crop, top-5) and ``mme.embed`` (``mean`` pool,
1 x 1) on the whole folder. Each figure is the wall time of the whole call (model loading,
loader workers, decoding, the forward passes, writing), best of ``--repeats``; videos/s =
videos / that time. The machine (``lscpu`` model name, cores, load average before and after) is
recorded beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import mme
from mme.eval.infer import default_workers
from mme.io.video import write_video
from mme.models import create_model, save_model
from mme.train.distributed import cpu_threads


def write_videos(folder: Path, count: int, seconds: float = 3.0) -> None:
    """Textures translating at a different speed each (so that decoding is not trivial)."""
    rng = np.random.default_rng(0)
    frames = int(30 * seconds)
    for index in range(count):
        texture = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
        speed = 1 + index % 5
        clip = (texture[(t * speed) % 240 :][:240, :320] for t in range(frames))
        write_video(folder / f"video_{index:03d}.mp4", clip, fps=30)


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in lscpu.splitlines() if "Model name" in line)
    except (OSError, subprocess.CalledProcessError, StopIteration):
        pass
    return {
        "cpu": model,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def best_wall(call: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def time_commands(
    checkpoint: Path, videos: Path, out: Path, settings: dict[str, Any], repeats: int
) -> tuple[float, float]:
    """Best wall seconds of ``mme.predict`` and of ``mme.embed`` (into a fresh ``out``) on ``videos``."""

    def embed_once() -> None:
        shutil.rmtree(out, ignore_errors=True)
        mme.embed(checkpoint, videos, out, settings=settings)

    predict = best_wall(lambda: mme.predict(checkpoint, videos, **settings), repeats)
    return predict, best_wall(embed_once, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--sizes", default="small,base")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--workers", type=int, default=None, help="loader workers (default: mme's)")
    parser.add_argument("--precisions", default="fp32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    results: dict[str, Any] = {"machine": machine(), "load_before": os.getloadavg(), "runs": []}
    # What the commands use: loader workers, and on CPU the intra-op threads the workers leave.
    workers = default_workers() if args.workers is None else args.workers
    threads = (cpu_threads(workers) or torch.get_num_threads()) if args.device == "cpu" else None
    print(json.dumps(results["machine"]))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_videos(root / "videos", args.videos)
        for size in args.sizes.split(","):
            checkpoint = root / size
            save_model(create_model(f"vit_{size}_patch16_224", num_classes=400), checkpoint)
            for precision in args.precisions.split(","):
                settings = {
                    "clips": 1,
                    "crops": 1,
                    "batch_size": args.batch,
                    "device": args.device,
                    "precision": precision,
                    "workers": args.workers,
                }
                out = root / f"embed-{size}-{precision}"
                seconds, embed_seconds = time_commands(
                    checkpoint, root / "videos", out, settings, args.repeats
                )
                run = {
                    "model": f"ViT-{size[0].upper()}",
                    "precision": precision,
                    "batch": args.batch,
                    "workers": workers,
                    "threads": threads,
                    "predict_videos_per_s": round(args.videos / seconds, 3),
                    "embed_videos_per_s": round(args.videos / embed_seconds, 3),
                    "predict_s": round(seconds, 2),
                    "embed_s": round(embed_seconds, 2),
                }
                results["runs"].append(run)
                print(json.dumps(run), flush=True)
    results["load_after"] = os.getloadavg()
    print(json.dumps({"load_before": results["load_before"], "load_after": results["load_after"]}))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
