"""Linear probe of a frozen pre-trained encoder: features cached once, a BatchNorm + linear head
trained on them, val top-1 reported; the probe is saved as a classifier `mme eval` can test.

    mme probe --config configs/probe/ucf101_vitb.yaml --set model.init_from=runs/pt/model \\
              --set runtime.output_dir=runs/probe
"""

from __future__ import annotations

import argparse

from mme.train.cli import add_run_arguments

NAME = "probe"
HELP = "linear probing of a frozen pre-trained encoder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser, resume=False)


def run(args: argparse.Namespace) -> int:
    from mme.train.config import ProbeConfig, load_run_config
    from mme.train.probe import run_probe

    run_probe(load_run_config(ProbeConfig, args.config, args.set))
    return 0
