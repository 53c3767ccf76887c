"""Same numbers before and after a refactoring: a fixed-seed CPU fp32 pre-training + fine-tuning.

Generates a tiny synthetic dataset into DATA with ``mme synth`` (or reuses the one there), then
runs through the ``mme`` entry point of whichever code is imported (``PYTHONPATH=... python ...``):

1. ``mme pretrain``: the packaged synthetic recipe (targets hog + traj, online trajectories),
   ViT-tiny with 2 blocks on 4x32x32 clips, 3 epochs of 4 steps, one loader process;
2. ``mme finetune`` from its last checkpoint: drop-path, mixup + cutmix, 2 clips per video,
   gradient accumulation over 2 micro-batches, validation every epoch, the multi-view test.

Writes JSON: every logged step's losses (log_every=1, exact floats), lr and weight decay, the
epoch means, validation and test metrics, and a sha256 of every weight tensor saved (the last
checkpoint's model and optimiser state, the exported model). Two runs of the same code, or of
code that computes the same thing, give equal files (``--compare``).

    python benchmarks/reproducibility.py --data /tmp/repro_data --out before.json
    python benchmarks/reproducibility.py --data /tmp/repro_data --out after.json --compare before.json

The dataset is only generated when DATA lacks it: comparing two versions of the code on the same
DATA leaves changes of the data generator out of the comparison.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

TINY = [
    "data.num_frames=4",
    "data.stride=2",
    "data.input_size=32",
    "model.overrides.depth=2",
    "batch.per_gpu=2",
    "schedule.warmup_epochs=1",
    "optim.base_lr=0.128",
    "runtime.workers=0",
    "runtime.tensorboard=false",
    "runtime.device=cpu",
    "runtime.precision=fp32",
    "runtime.seed=3",
    "runtime.log_every=1",
]
PRETRAIN = ["data.mask_ratio=0.5", "schedule.epochs=3", "optim.min_lr=0.0"]
FINETUNE = [
    "data.short_side_size=32",
    "data.num_sample=2",
    "data.test_clips=2",
    "data.test_crops=3",
    "mixup.mixup_alpha=0.8",
    "mixup.cutmix_alpha=1.0",
    "batch.update_freq=2",
    "schedule.epochs=3",
]
# Logged every step but not a result of the computation.
UNTIMED = ("clips_per_s",)


def ensure_data(data: Path) -> Path:
    """The tiny dataset in ``data`` (3 classes x 5 videos of 16 frames at 40x32), made if missing."""
    from mme.cli.main import main

    if not (data / "train.csv").is_file():
        args = ["synth", "--out", str(data), "--classes", "3", "--videos-per-class", "5"]
        args += ["--frames", "16", "--size", "40x32", "--workers", "1"]
        if main(args) != 0:
            raise SystemExit(f"mme synth failed for {data}")
    return data


def recipe(name: str) -> str:
    """The packaged recipe of the code under test (``mme/configs`` links to ``configs/``)."""
    import mme

    return str(Path(mme.__file__).parent / "configs" / "synthetic" / f"{name}.yaml")


def sets(items: list[str]) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def tensor_digest(tensor: torch.Tensor) -> str:
    tensor = tensor.detach().cpu().contiguous()
    header = f"{tensor.dtype}{tuple(tensor.shape)}".encode()
    return hashlib.sha256(header + tensor.reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest()


def state_digests(state: Any, prefix: str = "") -> dict[str, str]:
    """sha256 of every tensor in a nested dict/list, keyed by its dotted path."""
    found: dict[str, str] = {}
    if isinstance(state, torch.Tensor):
        found[prefix] = tensor_digest(state)
    elif isinstance(state, dict):
        for key in sorted(state, key=str):
            found.update(state_digests(state[key], f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(state, (list, tuple)):
        for index, value in enumerate(state):
            found.update(state_digests(value, f"{prefix}.{index}" if prefix else str(index)))
    return found


def run_record(out: Path, command: str) -> dict[str, Any]:
    """What a finished run computed: logged numbers and the digests of its saved weights."""
    from safetensors.torch import load_file

    records = [json.loads(line) for line in (out / f"{command}.jsonl").read_text().splitlines()]
    numbers: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if record["kind"] in ("train", "epoch", "test"):
            kept = {key: value for key, value in record.items() if key not in ("time", "kind", *UNTIMED)}
            numbers.setdefault(record["kind"], []).append(kept)
    steps = sorted((out / "checkpoints").glob("step-*.pt"))
    last = torch.load(steps[-1], map_location="cpu", weights_only=True)
    summary = json.loads((out / "summary.json").read_text())
    return {
        "steps": last["step"],
        "numbers": numbers,
        "summary": {key: value for key, value in summary.items() if key != "model"},
        "checkpoint": steps[-1].name,
        "model": state_digests(last["model"]),
        "optimizer": state_digests(last["optimizer"]),
        "exported": state_digests(load_file(str(out / "model" / "model.safetensors"))),
    }


def reproduce(data: Path, work: Path) -> dict[str, Any]:
    """Pre-train then fine-tune in ``work``; the record of both runs."""
    from mme.cli.main import main

    data = ensure_data(data)
    pt, ft = work / "pretrain", work / "finetune"
    lists = [f"data.train_list={data / 'train.csv'}"]
    args = ["pretrain", "--config", recipe("pretrain")]
    args += sets([*TINY, *lists, *PRETRAIN, f"runtime.output_dir={pt}"])
    if main(args) != 0:
        raise SystemExit("mme pretrain failed")
    checkpoint = sorted((pt / "checkpoints").glob("step-*.pt"))[-1]
    lists += [f"data.val_list={data / 'val.csv'}", f"data.test_list={data / 'test.csv'}"]
    args = ["finetune", "--config", recipe("finetune")]
    args += sets([*TINY, *lists, *FINETUNE, f"model.init_from={checkpoint}", f"runtime.output_dir={ft}"])
    if main(args) != 0:
        raise SystemExit("mme finetune failed")
    return {"pretrain": run_record(pt, "pretrain"), "finetune": run_record(ft, "finetune")}


def differences(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ (floats compared exactly)."""
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in sorted(set(before) | set(after)):
            found += differences(before.get(key), after.get(key), f"{prefix}{key}.")
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [
            d
            for i, (a, b) in enumerate(zip(before, after, strict=True))
            for d in differences(a, b, f"{prefix}{i}.")
        ]
    return [] if before == after else [prefix.rstrip(".")]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="dataset folder (made if empty)")
    parser.add_argument("--out", type=Path, required=True, help="JSON to write")
    parser.add_argument("--work", type=Path, help="run folders (default: a temporary folder)")
    parser.add_argument("--compare", type=Path, help="a JSON of an earlier run: exit 1 if any number differs")
    args = parser.parse_args()
    # One intra-op thread (the jobs keep it: OMP_NUM_THREADS is set), whatever cores are free.
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="mme-repro-") as scratch:
        record = reproduce(args.data.resolve(), (args.work or Path(scratch)).resolve())
    record["torch"] = torch.__version__
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")
    if args.compare is None:
        return 0
    before = json.loads(args.compare.read_text())
    found = differences(
        {k: v for k, v in before.items() if k != "torch"}, {k: record[k] for k in before if k != "torch"}
    )
    print(f"{len(found)} difference(s) from {args.compare}" + "".join(f"\n  {key}" for key in found[:40]))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
