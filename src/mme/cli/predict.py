"""Top-k classes of videos with a trained classifier: a table on the terminal, JSON lines or CSV.

    mme predict --checkpoint runs/ft/checkpoints/best.pt clip.mp4 more_videos/ data/test.csv
    mme predict --checkpoint ucf101-hf/ long.mp4 --window-seconds 4 --stride-seconds 2 --out long.jsonl

CHECKPOINT is anything mme.models.load_classifier reads (ours, original MME/VideoMAE, DeepSpeed,
Hugging Face). INPUTs are video files, folders (searched recursively for video files) and list
files (.csv/.txt/.lst/.list, as mme eval reads), mixed. Each video is scored exactly as mme eval
scores it: --clips clips x --crops crops, softmax averaged per video (same options, same
numbers). A video that cannot be decoded gets a line marked failed; the others go on, and the
command exits with 1 at the end. Class names: --classes, else the checkpoint's, else indices.
"""

from __future__ import annotations

import argparse

NAME = "predict"
HELP = "top-k classes of videos with a trained classifier (table, JSON lines or CSV)"


def add_view_arguments(parser: argparse.ArgumentParser, clips: int | None, crops: int | None) -> None:
    """The view and device options ``mme predict`` and ``mme embed`` share (mme.eval.infer.ViewSettings)."""
    default = "mme eval's data.test_clips x data.test_crops, 5 x 3" if clips is None else f"{clips} x {crops}"
    parser.add_argument(
        "--clips",
        type=int,
        default=clips,
        help=f"clips per video, evenly spaced in time (default: {default})",
    )
    parser.add_argument(
        "--crops", type=int, default=crops, help="crops per clip, along the long side (see --clips)"
    )
    parser.add_argument(
        "--stride",
        type=int,
        default=None,
        help="frames between a clip's sampled frames (default 4, as mme eval)",
    )
    parser.add_argument(
        "--sampling",
        choices=("stride", "segment"),
        default=None,
        help="stride (K400, UCF101) or segment (SSV2) sampling (default stride)",
    )
    parser.add_argument(
        "--short-side",
        type=int,
        default=None,
        help="resize the short side to this before cropping (default: the model's input size)",
    )
    parser.add_argument("--batch", type=int, default=8, help="clips per forward pass (default 8)")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="video-decoding processes (default: half the cores, at most 8)",
    )
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="auto = cuda when available (default)",
    )
    parser.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        default="fp32",
        help="autocast precision (default fp32)",
    )


def view_options(args: argparse.Namespace) -> dict[str, object]:
    """The ViewSettings fields given on the command line (the others keep their defaults)."""
    options = {
        "clips": args.clips,
        "crops": args.crops,
        "stride": args.stride,
        "sampling": args.sampling,
        "short_side": args.short_side,
        "batch_size": args.batch,
        "workers": args.workers,
        "device": args.device,
        "precision": args.precision,
    }
    keep_none = ("short_side", "workers")  # None means "derived", not "not given"
    return {key: value for key, value in options.items() if value is not None or key in keep_none}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="video files, folders of videos, list files"
    )
    parser.add_argument(
        "--checkpoint", required=True, help="a classifier checkpoint (any layout load_classifier reads)"
    )
    parser.add_argument(
        "--classes", default=None, help="class names: a JSON list or one name per line, in label order"
    )
    parser.add_argument("--topk", type=int, default=5, help="classes shown per video (default 5)")
    parser.add_argument(
        "--window-seconds",
        type=float,
        default=None,
        help="score windows of this many seconds, one record each",
    )
    parser.add_argument(
        "--stride-seconds",
        type=float,
        default=None,
        help="seconds between window starts (default: the window)",
    )
    parser.add_argument("--out", default=None, help="also write the records to FILE.jsonl or FILE.csv")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    add_view_arguments(parser, clips=None, crops=None)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from mme.eval.predict import predict, records_table

    records = predict(
        args.checkpoint,
        args.inputs,
        classes=args.classes,
        topk=args.topk,
        window_seconds=args.window_seconds,
        stride_seconds=args.stride_seconds,
        out=args.out,
        overwrite=args.overwrite,
        **view_options(args),
    )
    console = Console()
    if not console.is_terminal:  # a file or pipe: full paths on one line rather than folded to 80 columns
        console.width = 100_000
    console.print(records_table(records))
    failed = sum(1 for record in records if record.get("failed"))
    return 1 if failed else 0
