"""How much of each pre-training target a model could predict without looking at the video.

For a pre-training config (the demo's by default) this draws samples exactly as ``mme pretrain``
does (same dataset class, crops, masks and online trajectories), builds the ``traj``, ``hog`` and
``pixel`` targets of the masked tokens, and prints:

- the masked loss of predicting zeros and of predicting the dataset mean of the target (the best
  any model can do without using the visible tokens: a pre-training loss that stays at this
  "context-free floor" has learnt nothing about the video);
- how much the points inside a token move relative to each other, in network-input pixels: the
  patch-std trajectory target divides by this, so where it is below the flow's own error
  (docs/motion.md) the target is mostly flow noise.

    python benchmarks/target_floors.py --data demo_out/data [--samples 160] [--out floors.json]
    python benchmarks/target_floors.py --config my_pretrain.yaml --set data.train_list=...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from mme.data.datasets import PretrainDataset
from mme.data.transforms import normalize_clip
from mme.demo.settings import full_settings, method, pretrain_overrides
from mme.objectives import build_targets, grid_to_tokens
from mme.train.config import PretrainConfig, load_run_config

TARGETS = ("traj", "hog", "pixel")


def within_patch_motion(disp: torch.Tensor, per_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Per token: mean over (coordinate, step) of the std over its points, and of |mean motion|."""
    tokens = grid_to_tokens(disp.permute(0, 1, 3, 4, 2, 5), per_side)  # (B, N, P, L, 2)
    spread = tokens.std(dim=2, unbiased=True).flatten(2).mean(-1)
    drift = tokens.mean(dim=2).abs().flatten(2).mean(-1)
    return spread.flatten().numpy(), drift.flatten().numpy()


def measure(config: PretrainConfig, samples: int, batch: int) -> dict:
    dataset = PretrainDataset(config.data, config.traj)
    subset = torch.utils.data.Subset(dataset, range(min(samples, len(dataset))))
    loader = torch.utils.data.DataLoader(subset, batch_size=batch, num_workers=0)
    targets = config.targets
    per_side = targets.patch_size // targets.traj_stride
    masked: dict[str, list[torch.Tensor]] = {name: [] for name in TARGETS}
    weights: list[torch.Tensor] = []
    spreads, drifts = [], []
    for sample in loader:
        batch_in = {**sample, "clip": normalize_clip(sample["clip"])}
        built = build_targets(list(TARGETS), batch_in, targets)
        mask = sample["mask"]
        for name, (values, weight) in built.items():
            masked[name].append(values[mask])
            if name == "traj":
                weights.append(weight[mask])
        spread, drift = within_patch_motion(sample["traj_disp"], per_side)
        spreads.append(spread)
        drifts.append(drift)
    floors = {}
    for name, chunks in masked.items():
        values = torch.cat(chunks).double()
        weight = (
            torch.cat(weights).double() if name == "traj" else torch.ones(len(values), dtype=torch.double)
        )
        mean = (values * weight[:, None]).sum(0) / weight.sum()
        floors[name] = {
            "zeros": float(((values**2).sum(1) * weight).sum() / len(values)),
            "dataset_mean": float((((values - mean) ** 2).sum(1) * weight).sum() / len(values)),
        }
    spread, drift = np.concatenate(spreads), np.concatenate(drifts)
    return {
        "samples": len(subset),
        "masked_tokens": int(sum(len(chunk) for chunk in masked["traj"])),
        "floors": floors,
        "traj_norm": targets.traj_norm,
        "within_patch_spread_px": {
            "percentiles_10_25_50_75_90": np.percentile(spread, [10, 25, 50, 75, 90]).round(4).tolist(),
            "share_below": {str(t): round(float((spread < t).mean()), 4) for t in (0.05, 0.1, 0.25, 0.5)},
        },
        "patch_mean_motion_px": {
            "percentiles_50_90_99": np.percentile(drift, [50, 90, 99]).round(4).tolist(),
            "share_below_0.1": round(float((drift < 0.1).mean()), 4),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, help="a demo dataset folder (its train.csv, demo settings)")
    parser.add_argument("--config", type=Path, help="a pre-training YAML instead of the demo's settings")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--samples", type=int, default=160)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    if args.config is None and args.data is None:
        parser.error("give --data (a demo dataset) or --config")
    overrides = list(args.overrides)
    if args.config is None:
        overrides = pretrain_overrides(full_settings(), method("mme"), args.data.resolve(), Path("unused"))
        overrides += args.overrides
    config = load_run_config(PretrainConfig, args.config, overrides)
    torch.manual_seed(config.runtime.seed)
    np.random.seed(config.runtime.seed)
    result = measure(config, args.samples, args.batch)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
