"""Multi-view test of a classifier: clips x crops per video, softmax scores averaged per video.

    mme eval --config configs/eval/ssv2_vitb.yaml --set checkpoint=runs/ft/checkpoints/best.pt \\
             --set runtime.output_dir=runs/ft-test

Accepts any checkpoint mme.models.load_classifier reads (ours, original MME/VideoMAE, DeepSpeed,
Hugging Face). Writes eval.json, predictions.jsonl, confusion.csv and summary.json. Distributed
with torchrun like training; N processes give exactly the single-process numbers. A video that
cannot be decoded is excluded from the scores and listed (never replaced by another); more than
data.max_bad_fraction of them stop the job.
"""

from __future__ import annotations

import argparse

from mme.train.cli import add_run_arguments

NAME = "eval"
HELP = "multi-view evaluation of a classifier checkpoint"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser, resume=False)


def run(args: argparse.Namespace) -> int:
    from mme.eval.evaluate import run_eval
    from mme.train.run_config import EvalConfig, load_run_config

    run_eval(load_run_config(EvalConfig, args.config, args.set))
    return 0
