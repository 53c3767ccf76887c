"""Generate the synthetic motion dataset: classes defined by motion, appearance class-independent.

Writes real H.264 videos under OUT/videos, the lists OUT/train.csv, val.csv, test.csv (path,label),
OUT/classes.json and OUT/dataset.json. Deterministic from --seed; resumable (rerun the same
command to finish an interrupted run). Classes, in order: move right/left/up/down, rotate
clockwise/counter-clockwise, expand, contract, stretch horizontally/vertically, shear right/left
(--classes N takes the first N). See docs/data.md.
"""

from __future__ import annotations

import argparse

NAME = "synth"
HELP = "generate the synthetic motion dataset (videos + list files)"


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 160x120, got {text!r}") from None
    return width, height


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--classes", type=int, default=8, help="number of motion classes, 2..12 (default 8)")
    parser.add_argument("--videos-per-class", type=int, default=32, help="videos per class (default 32)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--frames", type=int, default=24, help="frames per video (default 24)")
    parser.add_argument("--size", type=_size, default=(96, 72), help="WIDTHxHEIGHT, even (default 96x72)")
    parser.add_argument("--fps", type=float, default=25.0, help="frame rate (default 25)")
    parser.add_argument("--val-fraction", type=float, default=0.15, help="share of each class in val.csv")
    parser.add_argument("--test-fraction", type=float, default=0.15, help="share of each class in test.csv")
    parser.add_argument("--workers", type=int, default=0, help="encoding processes (default: one per core)")


def run(args: argparse.Namespace) -> int:
    from mme.data.synthetic import SynthConfig, generate_dataset

    width, height = args.size
    config = SynthConfig(
        classes=args.classes,
        videos_per_class=args.videos_per_class,
        seed=args.seed,
        frames=args.frames,
        width=width,
        height=height,
        fps=args.fps,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
    )
    generate_dataset(config, args.out, workers=args.workers)
    return 0
