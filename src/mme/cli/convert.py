"""Convert a checkpoint to mme's format (default) or to a Hugging Face VideoMAE folder.

SRC is anything mme.models.load_classifier reads: an mme folder or training checkpoint, an
original MME/VideoMAE .pth (fine-tuned, or pre-trained with "encoder." keys), a DeepSpeed
mp_rank_00_model_states.pt or the folder holding it, or a Hugging Face VideoMAE folder.
What was loaded, newly initialised or left out is printed and written to DST/convert.log and
DST/convert.jsonl. DST is written under a temporary name and renamed when complete. A Hugging
Face folder (--to hf) holds config.json (id2label from the checkpoint's class names),
model.safetensors and preprocessor_config.json, for transformers' pipeline("video-classification").

examples:
  mme convert checkpoint-best/ ucf101-vitb/                        # DeepSpeed folder -> mme folder
  mme convert k400_pretrain.pth vitb-k400-hf/ --to hf --num-classes 400
  mme convert k400_pretrain.pth mme-pretrain/ --pretrain            # keep decoder + heads
  mme convert ssv2.pth out/ --set num_frames=8 --set img_size=160   # architecture overrides
"""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "convert"
HELP = "convert a checkpoint (original MME/VideoMAE, DeepSpeed, Hugging Face, mme) to mme or HF format"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help="checkpoint file or folder to read")
    parser.add_argument("dst", help="folder to write (must not exist unless --force)")
    parser.add_argument(
        "--to",
        choices=("mme", "hf"),
        default="mme",
        help="output format: mme's folder or a Hugging Face folder",
    )
    parser.add_argument(
        "--num-classes",
        type=int,
        default=None,
        metavar="N",
        help="classes of the classifier head (default: the checkpoint's; another count gets a new head)",
    )
    parser.add_argument(
        "--pretrain",
        action="store_true",
        help="keep the pre-training model (decoder and prediction heads); only with --to mme",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a model setting, e.g. num_frames=8 or num_heads=6 (repeatable)",
    )
    parser.add_argument("--force", action="store_true", help="replace DST if it exists")
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow unpickling arbitrary objects from SRC (can run code: only for files you trust)",
    )


def parse_settings(items: list[str]) -> dict[str, object]:
    """``["num_frames=8", "heads=[hog, traj]"]`` -> ``{"num_frames": 8, "heads": ["hog", "traj"]}``.

    Values are read as YAML, so numbers, booleans and lists come out typed.
    """
    import yaml

    from mme.errors import ConfigError

    settings: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        try:
            settings[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as error:
            raise ConfigError(f"--set {item!r}: cannot read the value ({error})") from error
    return settings


def run(args: argparse.Namespace) -> int:
    from mme.errors import CheckpointError, ConfigError
    from mme.interop import load_classifier_with_report, load_pretrain_model_with_report
    from mme.interop.export import write_hf_files
    from mme.models.saving import write_model_files
    from mme.models.storage import atomic_folder
    from mme.utils.logging import Progress, RunLog

    if args.pretrain and args.to == "hf":
        raise ConfigError(
            "--pretrain keeps the decoder, which a Hugging Face classifier folder cannot hold; use --to mme"
        )
    if args.pretrain and args.num_classes is not None:
        raise ConfigError("--num-classes applies to classifiers; drop it or drop --pretrain")
    overrides = parse_settings(args.set)
    heads = overrides.get("heads")
    if isinstance(heads, list):  # a head named alone: its width and activation are the target registry's
        from mme.objectives import head_specs

        overrides["heads"] = [head_specs([h])[0] if isinstance(h, str) else h for h in heads]
    src, dst = Path(args.src), Path(args.dst)
    if dst.exists() and not args.force:
        raise CheckpointError(f"{dst} already exists; refusing to overwrite it (use --force)")

    with atomic_folder(dst, overwrite=args.force) as tmp, RunLog(tmp, "convert") as log:
        log.event("start", human=f"converting {src} -> {dst} (--to {args.to})", src=src, dst=dst, to=args.to)
        with Progress(3, "convert", unit="step", logger=log) as bar:
            if args.pretrain:
                model, report = load_pretrain_model_with_report(
                    src, trust_pickle=args.trust_pickle, **overrides
                )
            else:
                model, report = load_classifier_with_report(
                    src, args.num_classes, trust_pickle=args.trust_pickle, **overrides
                )
            bar.update()
            log.event("load_report", human=report.summary(), report=report.to_dict())
            if args.to == "hf":
                write_hf_files(model, tmp)
            else:
                write_model_files(model, tmp)
            bar.update()
            files = sorted(path.name for path in tmp.iterdir() if path.suffix in (".json", ".safetensors"))
            log.event("done", human=f"wrote {dst} ({', '.join(files)})", dst=dst, files=files)
            bar.update()
    return 0
