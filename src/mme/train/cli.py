"""Command-line arguments shared by ``mme pretrain | finetune | eval | probe`` (cheap to import)."""

from __future__ import annotations

import argparse


def add_run_arguments(parser: argparse.ArgumentParser, resume: bool) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE.yaml",
        help="recipe (YAML; may include others with _base_); a configs/... path that does not exist "
        "here names the recipe installed with mme",
    )
    parser.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override one config value (dotted key, e.g. optim.base_lr=1e-3); repeatable",
    )
    if resume:
        parser.add_argument(
            "--resume",
            metavar="auto|PATH",
            help="continue a run: 'auto' = the latest intact checkpoint of runtime.output_dir "
            "(start fresh if there is none), or a checkpoint file",
        )
