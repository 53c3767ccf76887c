"""See MME work on a laptop: pre-train a tiny video ViT three ways on a synthetic dataset whose
classes are defined by motion, then fine-tune, linearly probe and test each.

  1. MME: predict the trajectories (and HOG) of masked patches;
  2. VideoMAE: predict the pixels of masked patches (same model, data, mask and budget);
  3. no pre-training (the same random initialisation).

Everything runs through the public jobs (mme synth / extract / pretrain / finetune / probe / eval) on
the recipes of configs/demo/; each run folder under OUT keeps its config.yaml and logs. Rerunning the
same command skips the stages already done and continues an interrupted one. Writes OUT/results.json,
OUT/results.md and OUT/figures/*.png (losses, accuracies, trajectories), and prints the results table.

  mme demo                     # about 8 minutes on 2 CPU cores, into demo_out/
  mme demo --quick --out /tmp/d  # every stage at toy size, ~10 s (a smoke test; numbers meaningless)

See docs/demo.md.
"""

from __future__ import annotations

import argparse

NAME = "demo"
HELP = "MME vs pixel pre-training vs none on synthetic motion videos, with figures (CPU, ~8 min on 2 cores)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="toy sizes: every stage in ~10 s on 2 cores (a smoke test; numbers meaningless)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and of every job (default 0)")


def run(args: argparse.Namespace) -> int:
    from mme.demo import run_demo

    run_demo(args.out, quick=args.quick, seed=args.seed)
    return 0
