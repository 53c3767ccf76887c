"""How much of each pre-training target a model could predict without looking at the video.

Prints :func:`mme.eval.target_floors.measure_floors` for a pre-training config (the demo's MME
recipe, configs/demo/pretrain/mme.yaml, by default): per target, the masked loss of predicting
zeros and of predicting the dataset mean (the "context-free floor": a pre-training loss that
stays there has learnt nothing about the video), and how much the points inside a token move
relative to each other.

    python benchmarks/target_floors.py --data demo_out/data [--samples 160] [--out floors.json]
    python benchmarks/target_floors.py --data demo_out/data --set data.input_size=112
    python benchmarks/target_floors.py --config my_pretrain.yaml --set data.train_list=...

With --data the demo's recipe applies, offline trajectories included: they are read from the
`traj` folder beside the dataset (where `mme demo` extracts them). For a dataset without them,
add --set data.trajectories=online (computed per clip with the recipe's flow).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mme.eval.target_floors import measure_floors
from mme.train.run_config import PretrainConfig, load_run_config

DEMO_RECIPE = "configs/demo/pretrain/mme.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, help="a demo dataset folder (its train.csv, the demo's recipe)")
    parser.add_argument("--config", type=Path, help="a pre-training YAML instead of the demo's recipe")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--samples", type=int, default=160)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    if args.config is None and args.data is None:
        parser.error("give --data (a demo dataset) or --config")
    overrides = list(args.overrides)
    if args.config is None:
        data = args.data.resolve()
        paths = [f"data.train_list={data / 'train.csv'}", f"data.traj_root={data.parent / 'traj'}"]
        overrides = [*paths, "runtime.output_dir=unused", *overrides]
    config = load_run_config(PretrainConfig, args.config or DEMO_RECIPE, overrides)
    text = json.dumps(measure_floors(config, args.samples, args.batch), indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
