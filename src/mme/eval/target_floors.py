"""Each pre-training target's context-free floor (the loss of predicting its dataset mean) on samples
drawn as ``mme pretrain`` draws them, plus how much points move inside a token (docs/demo.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from mme.data.datasets import PretrainDataset
from mme.data.transforms import normalize_clip
from mme.errors import ConfigError
from mme.objectives import build_targets, grid_to_tokens

TARGETS = ("traj", "hog", "pixel")


# What each head activation can output (model.heads); identity is unbounded.
RANGES = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}


def _out_of_range(values: torch.Tensor, activation: str) -> dict[str, float]:
    """Share of target values a head with ``activation`` cannot output, and the loss per token
    that stays even for the best in-range prediction (squared distance to the range)."""
    low, high = RANGES[activation]
    outside = (values < low) | (values > high)
    gap = (values - values.clamp(low, high)).pow(2).sum(-1)
    return {"share_outside": round(float(outside.double().mean()), 4), "unreachable_loss": float(gap.mean())}


def within_patch_motion(disp: torch.Tensor, per_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Per token of ``disp`` (B, K, L, Gh, Gw, 2): the std over its points and the magnitude of
    their mean motion, each averaged over coordinates and steps (pixels per raw frame)."""
    tokens = grid_to_tokens(disp.permute(0, 1, 3, 4, 2, 5), per_side)  # (B, N, P, L, 2)
    spread = tokens.std(dim=2, unbiased=True).flatten(2).mean(-1)
    drift = tokens.mean(dim=2).abs().flatten(2).mean(-1)
    return spread.flatten().numpy(), drift.flatten().numpy()


def measure_floors(config: Any, samples: int = 160, batch: int = 16) -> dict[str, Any]:
    """Floors and motion statistics over the first ``samples`` training samples of ``config``
    (a :class:`mme.train.run_config.PretrainConfig` with ``data.trajectories`` online or offline)."""
    if config.data.trajectories == "none":
        raise ConfigError("measuring the trajectory target needs data.trajectories=online or offline")
    # Samples draw their crops and masks from the global RNGs: seed them for repeatable floors,
    # and give the caller its RNG states back afterwards.
    numpy_state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.runtime.seed)
            np.random.seed(config.runtime.seed)
            return _measure(config, samples, batch)
    finally:
        np.random.set_state(numpy_state)


def run_floors(run: Path, samples: int) -> dict[str, Any]:
    """:func:`measure_floors` of the pre-training run folder ``run`` (its ``config.yaml``)."""
    from mme.train.run_config import PretrainConfig, load_run_config

    config = load_run_config(PretrainConfig, run / "config.yaml")
    return measure_floors(config, samples, config.batch.per_gpu)


def _measure(config: Any, samples: int, batch: int) -> dict[str, Any]:
    dataset = PretrainDataset(config.data, config.traj)
    subset = torch.utils.data.Subset(dataset, range(min(samples, len(dataset))))
    loader = torch.utils.data.DataLoader(subset, batch_size=batch, num_workers=0)
    targets = config.target_config()
    per_side = targets.patch_size // targets.traj_stride
    masked: dict[str, list[torch.Tensor]] = {name: [] for name in TARGETS}
    traj_weights: list[torch.Tensor] = []
    spreads, drifts = [], []
    for sample in loader:
        built = build_targets(list(TARGETS), {**sample, "clip": normalize_clip(sample["clip"])}, targets)
        mask = sample["mask"]
        for name, (values, weight) in built.items():
            masked[name].append(values[mask])
            if name == "traj":
                traj_weights.append(weight[mask])
        spread, drift = within_patch_motion(sample["traj_disp"], per_side)
        spreads.append(spread)
        drifts.append(drift)
    joined = {name: torch.cat(chunks).double() for name, chunks in masked.items()}
    floors: dict[str, dict[str, float]] = {}
    for name, values in joined.items():
        if name == "traj":  # the loss counts a token's motion only where its points stay valid
            weight = torch.cat(traj_weights).double()
        else:
            weight = torch.ones(len(values), dtype=torch.double)
        mean = (values * weight[:, None]).sum(0) / weight.sum().clamp(min=1)
        floors[name] = {
            "zeros": float(((values**2).sum(1) * weight).sum() / len(values)),
            "dataset_mean": float((((values - mean) ** 2).sum(1) * weight).sum() / len(values)),
        }
    head_ranges = {
        name: {kind: _out_of_range(values, kind) for kind in RANGES} for name, values in joined.items()
    }
    spread, drift = np.concatenate(spreads), np.concatenate(drifts)
    return {
        "samples": len(subset),
        "masked_tokens": len(joined["traj"]),
        "traj_norm": targets.traj_norm,
        "floors": floors,
        "head_ranges": head_ranges,
        "within_patch_spread_px": {
            "percentiles_10_25_50_75_90": np.percentile(spread, [10, 25, 50, 75, 90]).round(4).tolist(),
            "share_below": {str(t): round(float((spread < t).mean()), 4) for t in (0.05, 0.1, 0.25, 0.5)},
        },
        "patch_mean_motion_px": {
            "percentiles_50_90_99": np.percentile(drift, [50, 90, 99]).round(4).tolist(),
            "share_below_0.1": round(float((drift < 0.1).mean()), 4),
        },
    }
