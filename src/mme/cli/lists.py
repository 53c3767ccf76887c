"""Build list files (train.csv, val.csv, test.csv, classes.json) from a dataset's official splits.

Supported: ucf101 (ucfTrainTestlist folder), hmdb51 (the split metafiles folder), k400 (the
annotation CSVs folder), ssv2 (the annotation JSON folder). Videos listed by the annotations but
absent under --videos are skipped and written to missing.txt (--missing keep|error to change).
Output lists use our format (CSV, header path,label) and are written atomically. See docs/data.md.
"""

from __future__ import annotations

import argparse

NAME = "lists"
HELP = "build train/val/test list files from official dataset splits"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mme.io.splits import DATASETS, K400_LAYOUT

    parser.add_argument("--dataset", required=True, choices=DATASETS, help="which dataset's annotations")
    parser.add_argument(
        "--annotations", required=True, help="folder (or a file in it) of the official split files"
    )
    parser.add_argument("--videos", required=True, help="folder holding the videos (the paths' root)")
    parser.add_argument(
        "--out", required=True, help="output folder for train.csv, val.csv, test.csv, classes.json"
    )
    parser.add_argument("--split", type=int, default=1, help="UCF101/HMDB51 split 1, 2 or 3 (default 1)")
    parser.add_argument(
        "--layout",
        default=K400_LAYOUT,
        help="Kinetics file layout under --videos (fields: split, label, label_, youtube_id, time_start, "
        "time_end; default %(default)s)",
    )
    parser.add_argument("--ext", default="webm", help="SSV2 video extension (default webm)")
    parser.add_argument(
        "--relative", action="store_true", help="write paths relative to --videos (set data.root to it)"
    )
    parser.add_argument(
        "--missing",
        default="skip",
        choices=("skip", "keep", "error"),
        help="videos not found under --videos: skip them (listed in missing.txt), keep them, or fail",
    )


def run(args: argparse.Namespace) -> int:
    from mme.io.splits import build_lists

    build_lists(
        args.dataset,
        args.annotations,
        args.videos,
        args.out,
        split=args.split,
        layout=args.layout,
        ext=args.ext,
        relative=args.relative,
        missing=args.missing,
    )
    return 0
