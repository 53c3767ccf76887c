"""Fine-tune a video ViT for classification (VideoMAE protocol: layer decay, mixup/cutmix,
RandAugment, repeated augmentation), validate each epoch, test with multiple views at the end.

Single process:   mme finetune --config configs/synthetic/finetune.yaml \\
                      --set model.init_from=runs/pt/model --set runtime.output_dir=runs/ft
Multi-GPU / node: torchrun --nproc_per_node 8 -m mme.cli.main finetune \\
                      --config configs/finetune/ssv2_vitb.yaml \\
                      --set model.init_from=runs/pretrain/k400_vitb_800ep/model
Resume:           add --resume auto.
See docs/training.md.
"""

from __future__ import annotations

import argparse

from mme.train.cli import add_run_arguments

NAME = "finetune"
HELP = "fine-tune a (pre-trained) video ViT on a labelled dataset"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser, resume=True)


def run(args: argparse.Namespace) -> int:
    from mme.tasks.classify import run_finetune
    from mme.train.run_config import FinetuneConfig, load_run_config

    run_finetune(load_run_config(FinetuneConfig, args.config, args.set, resume=args.resume))
    return 0
