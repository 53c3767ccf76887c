"""Energy of the trajectory target per token for motions of known kind, online and offline.

Prints the table of docs/motion.md ("trajectory target"): mean sum of squares of the traj target
per token, for static, translating, rotating, zooming and object-boundary tokens, computed online
and offline (:mod:`mme.objectives.energy`), for each normalisation.

    python benchmarks/traj_energy.py [--size 112] [--floors 0 0.1 0.15 0.2] [--online-flow NAME] [--json F]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from mme.motion.config import DEFAULT_ONLINE_FLOW
from mme.objectives import TargetConfig
from mme.objectives.energy import STEPS, measure_energies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=112, help="network input side (default 112)")
    parser.add_argument("--floors", type=float, nargs="+", default=[0.0, 0.1, 0.15, 0.2])
    parser.add_argument("--online-flow", default=DEFAULT_ONLINE_FLOW, help="online flow backend")
    parser.add_argument("--seeds", type=int, default=3, help="scenes per kind of motion")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args()
    base = TargetConfig(traj_steps=STEPS)
    norms = {f"patch_std floor {f:g}": dataclasses.replace(base, traj_std_floor=f) for f in args.floors}
    norms["patch_std_int"] = dataclasses.replace(base, traj_norm="patch_std_int")
    results = measure_energies(args.size, norms, seeds=args.seeds, online_flow=args.online_flow)
    names = list(norms)
    print(f"online flow {args.online_flow}, input {args.size} px")
    print("| tokens | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for row, values in results.items():
        print(f"| {row} | " + " | ".join(f"{values[n]:.2f}" for n in names) + " |")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"size": args.size, "online_flow": args.online_flow, "energy": results}, indent=1)
        )


if __name__ == "__main__":
    main()
