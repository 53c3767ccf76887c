"""Helpers of the training tests: tiny recipes on top of configs/synthetic, log readers.

Everything runs through the real ``mme`` entry point (``mme.cli.main.main``) on CPU with a
two-block ViT-tiny on 4x32x32 clips, so a whole run takes a few seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from mme.cli.main import main

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

# 4 frames at 32x32: 2x2x2 = 8 tokens; tube mask 0.5 hides 4.
TINY_CLIP = ["data.num_frames=4", "data.stride=2", "data.input_size=32"]
TINY_RUNTIME = ["runtime.workers=0", "runtime.tensorboard=false", "runtime.device=cpu"]


def tiny_pretrain(data: Path, out: Path, *extra: str) -> list[str]:
    """``mme pretrain`` arguments: ViT-tiny with 2 blocks, hog + traj, online trajectories."""
    sets = [
        *TINY_CLIP,
        *TINY_RUNTIME,
        f"data.train_list={data / 'train.csv'}",
        "data.mask_ratio=0.5",
        "model.overrides.depth=2",
        "batch.per_gpu=2",
        "schedule.epochs=2",
        "schedule.warmup_epochs=0",
        "optim.base_lr=0.128",  # x 2 / 256 = 1e-3
        "optim.min_lr=0.0",
        "runtime.log_every=1",
        f"runtime.output_dir={out}",
        *extra,
    ]
    return ["pretrain", "--config", str(CONFIGS / "synthetic" / "pretrain.yaml"), *_sets(sets)]


def tiny_finetune(data: Path, out: Path, *extra: str) -> list[str]:
    sets = [
        *TINY_CLIP,
        *TINY_RUNTIME,
        f"data.train_list={data / 'train.csv'}",
        f"data.val_list={data / 'val.csv'}",
        f"data.test_list={data / 'test.csv'}",
        "data.short_side_size=32",
        "data.num_sample=2",
        "mixup.mixup_alpha=0.8",  # the synthetic recipe turns mixing off; the tests exercise it
        "mixup.cutmix_alpha=1.0",
        "data.test_clips=2",
        "data.test_crops=3",
        "model.init_from=null",
        "model.overrides.depth=2",
        "batch.per_gpu=2",
        "schedule.epochs=2",
        "schedule.warmup_epochs=0",
        "optim.base_lr=0.128",
        "runtime.log_every=1",
        f"runtime.output_dir={out}",
        *extra,
    ]
    return ["finetune", "--config", str(CONFIGS / "synthetic" / "finetune.yaml"), *_sets(sets)]


def tiny_eval(data: Path, checkpoint: Path, out: Path, *extra: str) -> list[str]:
    sets = [
        *TINY_CLIP,
        *TINY_RUNTIME,
        f"checkpoint={checkpoint}",
        f"data.test_list={data / 'test.csv'}",
        "data.short_side_size=32",
        "data.test_clips=2",
        "data.test_crops=3",
        "batch.per_gpu=2",
        f"runtime.output_dir={out}",
        *extra,
    ]
    return ["eval", "--config", str(CONFIGS / "synthetic" / "eval.yaml"), *_sets(sets)]


def tiny_probe(data: Path, init_from: Path, out: Path, *extra: str) -> list[str]:
    sets = [
        *TINY_CLIP,
        *TINY_RUNTIME,
        f"model.init_from={init_from}",
        "model.overrides.depth=2",
        f"data.train_list={data / 'train.csv'}",
        f"data.val_list={data / 'val.csv'}",
        "data.short_side_size=32",
        "probe.batch_size=4",
        "batch.per_gpu=2",
        f"runtime.output_dir={out}",
        *extra,
    ]
    return ["probe", "--config", str(CONFIGS / "synthetic" / "probe.yaml"), *_sets(sets)]


def _sets(items: list[str]) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def read_jsonl(path: Path, kind: str | None = None) -> list[dict]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in records if kind is None or r["kind"] == kind]


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    from mme.train.checkpoint import CheckpointDir

    found = CheckpointDir(run_dir / "checkpoints").latest()
    assert found is not None, f"no checkpoint in {run_dir}"
    return found[1]["model"]


def run_mme(args: list[str]) -> int:
    return main(args)


def torchrun(args: list[str], cwd: Path) -> None:
    """``mme ARGS`` as two CPU processes under torchrun (gloo); fails the test on a non-zero exit."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "mme.cli.main", *args]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MME_PROGRESS": "log"}
    done = subprocess.run(command, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
