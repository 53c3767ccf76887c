"""Probe of a frozen pre-trained encoder: features cached once, a head fitted on them, val top-1
reported. probe.head: linear (BatchNorm + linear layer, saved as a classifier `mme eval` can
test), attentive (one learned query cross-attending over the token grid + linear layer) or knn
(cosine k-nearest-neighbour vote, probe.k and probe.temperature). With data.test_list, every head
is also tested with mme eval's views and files (under <output_dir>/eval).

    mme probe --config configs/probe/ucf101_vitb.yaml --set model.init_from=runs/pt/model \\
              --set runtime.output_dir=runs/probe --set probe.head=knn
"""

from __future__ import annotations

import argparse

from mme.train.cli import add_run_arguments

NAME = "probe"
HELP = "linear, attentive or kNN probe of a frozen pre-trained encoder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser, resume=False)


def run(args: argparse.Namespace) -> int:
    from mme.eval.probe import run_probe
    from mme.train.run_config import ProbeConfig, load_run_config

    run_probe(load_run_config(ProbeConfig, args.config, args.set))
    return 0
