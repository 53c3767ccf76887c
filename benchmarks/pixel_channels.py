"""Which colour channels a pixel (VideoMAE) pre-training learns: per channel, its masked loss against
that channel's context-free floor (the loss of predicting the dataset mean of the target).

Draws training samples as the run drew them (its own config.yaml), predicts them with the run's
final model, and splits the normalised-pixel target ("(p0 p1 p2) c" layout) by channel:

    python benchmarks/pixel_channels.py --run demo_out/pretrain/pixel [--samples 160] [--out r.json]

On the demo's dataset the learnable part of the pixel target is the static colour gradient of the
red and blue channels, not the moving texture of the green one (docs/demo.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from mme.data.datasets import PretrainDataset
from mme.data.transforms import normalize_clip
from mme.objectives import build_targets
from mme.tasks.pretrain import PretrainTask
from mme.train.run_config import PretrainConfig, load_run_config


def channel_losses(run: Path, samples: int, batch: int = 16) -> dict[str, dict[str, float]]:
    config = load_run_config(PretrainConfig, run / "config.yaml", [f"model.init_from={run / 'model'}"])
    task = PretrainTask(config)
    model = task.model.eval()
    torch.manual_seed(config.runtime.seed)
    np.random.seed(config.runtime.seed)
    dataset = PretrainDataset(config.data, config.traj)
    subset = torch.utils.data.Subset(dataset, range(min(samples, len(dataset))))
    predictions, targets = [], []
    with torch.no_grad():
        for sample in torch.utils.data.DataLoader(subset, batch_size=batch):
            clip, mask = normalize_clip(sample["clip"]), sample["mask"]
            predicted = model(clip, mask)["pixel"].float()
            target = build_targets(["pixel"], {**sample, "clip": clip}, task.target_config)["pixel"][0]
            predictions.append(predicted.reshape(-1, predicted.shape[-1] // 3, 3))
            targets.append(target[mask.bool()].reshape(-1, predicted.shape[-1] // 3, 3))
    predicted, target = torch.cat(predictions), torch.cat(targets)
    mean = target.mean(0, keepdim=True)
    result = {}
    for channel, name in enumerate(("red", "green", "blue")):
        loss = float(((predicted[..., channel] - target[..., channel]) ** 2).sum(-1).mean())
        floor = float(((mean[..., channel] - target[..., channel]) ** 2).sum(-1).mean())
        result[name] = {"loss": round(loss, 1), "floor": round(floor, 1), "below": round(1 - loss / floor, 3)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", type=Path, required=True, help="a pixel pre-training run folder")
    parser.add_argument("--samples", type=int, default=160)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = channel_losses(args.run, args.samples)
    for name, row in result.items():
        print(f"{name}: loss {row['loss']} vs floor {row['floor']} ({100 * row['below']:.1f} % below)")
    if args.out:
        args.out.write_text(json.dumps({"run": str(args.run), "samples": args.samples, **result}, indent=1))


if __name__ == "__main__":
    main()
