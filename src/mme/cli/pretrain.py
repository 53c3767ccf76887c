"""MME pre-training: mask tubes of a video and predict the trajectories (and HOG) of the hidden ones.

Single process:   mme pretrain --config configs/synthetic/pretrain.yaml --set runtime.output_dir=runs/pt
Multi-GPU / node: torchrun --nproc_per_node 8 [--nnodes N --node_rank R --rdzv_endpoint HOST:PORT] \\
                  -m mme.cli.main pretrain --config configs/pretrain/k400_vitb_800ep.yaml
Resume:           add --resume auto (the latest intact checkpoint of runtime.output_dir).
See docs/training.md.
"""

from __future__ import annotations

import argparse

from mme.train.cli import add_run_arguments

NAME = "pretrain"
HELP = "MME pre-training of a video ViT (masked motion encoding)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser, resume=True)


def run(args: argparse.Namespace) -> int:
    from mme.tasks.pretrain import run_pretrain
    from mme.train.run_config import PretrainConfig, load_run_config

    run_pretrain(load_run_config(PretrainConfig, args.config, args.set, resume=args.resume))
    return 0
