"""Pre-compute dense trajectories for every video of a list (offline mode).

One file per video under OUT (mirroring the paths under ROOT, suffix .traj; a video outside ROOT
keeps its whole absolute path under OUT) holding, for every raw start frame, the L-step
trajectories of the grid of cell centres. Resumable (finished files are skipped), fault-tolerant
(failures go to failures.jsonl, exit code 1), parallel (--workers) and sharded
(--shard/--num-shards, or RANK/WORLD_SIZE, or SLURM_ARRAY_TASK_ID/COUNT).
Format: docs/trajectory-format.md. Not needed for online trajectories (the default in training).

Pre-training reads them with --set data.trajectories=offline --set data.traj_root=OUT, given the
same list (data.train_list) and root (data.root = --root, or neither).
"""

from __future__ import annotations

import argparse

NAME = "extract"
HELP = "pre-compute trajectory files for the videos of a list (offline trajectories)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mme.io.lists import FORMATS

    parser.add_argument("--list", required=True, dest="list_path", help=f"video list: {FORMATS}")
    parser.add_argument(
        "--root",
        default=None,
        help="folder the list's relative paths start from, and that OUT mirrors (default: the list "
        "file's folder)",
    )
    parser.add_argument("--out", required=True, help="output folder (trajectory files, logs, failures.jsonl)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes, one core each (default 1)")
    parser.add_argument(
        "--shard", type=int, default=None, help="this shard's index (video i -> shard i %% N)"
    )
    parser.add_argument("--num-shards", type=int, default=None, help="number of shards")
    parser.add_argument("--flow", default=None, help="flow backend (default: the offline default, dis_fine)")
    parser.add_argument(
        "--max-side",
        type=int,
        default=None,
        help="shrink frames so their longer side is at most this (default: native)",
    )
    parser.add_argument("--steps", type=int, default=4, help="trajectory length L in raw frames (default 4)")
    parser.add_argument("--grid-stride", type=int, default=8, help="seed grid spacing in pixels (default 8)")
    parser.add_argument("--no-median-filter", action="store_true", help="do not median-filter the flow")
    parser.add_argument(
        "--camera-motion",
        default="none",
        help="none | homography: remove the camera's motion (a homography fitted per frame pair), so "
        "displacements are relative to the camera; pairs whose fit fails use plain flow and are "
        "counted (default none)",
    )
    parser.add_argument("--verify", action="store_true", help="checksum existing files before skipping them")


def run(args: argparse.Namespace) -> int:
    from mme.motion.config import DEFAULT_OFFLINE_FLOW
    from mme.motion.extract import ExtractSettings, run_extraction

    settings = ExtractSettings(
        flow=args.flow or DEFAULT_OFFLINE_FLOW,
        steps=args.steps,
        grid_stride=args.grid_stride,
        median_filter=not args.no_median_filter,
        max_side=args.max_side,
        camera_motion=args.camera_motion,
    )
    summary = run_extraction(
        args.list_path,
        args.out,
        root=args.root,
        settings=settings,
        workers=args.workers,
        shard=args.shard,
        num_shards=args.num_shards,
        verify=args.verify,
    )
    return summary.exit_code
