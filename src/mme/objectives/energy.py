"""Mean per-token trajectory-target energy on motions of known kind (benchmarks/traj_energy.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

from mme.motion import clip_trajectories, read_trajectories, resample_trajectories
from mme.motion.config import DEFAULT_OFFLINE_FLOW, DEFAULT_ONLINE_FLOW, TrajectoryConfig
from mme.motion.flow import shared_flow, to_gray
from mme.motion.known_motion import Motion, render_frames
from mme.motion.store import TrajectoryMeta, TrajectoryWriter
from mme.motion.tracking import track_video
from mme.objectives.config import TargetConfig
from mme.objectives.targets import build_targets

STEPS = 4
KINDS = {
    "static": Motion("static"),
    "translating": Motion("translate", dx=1.5, dy=0.7),
    "rotating": Motion("rotate", angle=0.06),
    "zooming": Motion("zoom", zoom=1.03),
}


def noisy(frames: np.ndarray, rng: np.random.Generator, sigma: float = 2.0) -> np.ndarray:
    return np.clip(frames + rng.normal(0.0, sigma, frames.shape), 0, 255).astype(np.uint8)


def boundary_scene(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A square moving 2 px/frame over a static texture, and the mask of tokens its edges cross."""
    background = render_frames(Motion("static"), STEPS + 1, size, size, seed=seed)
    moving = render_frames(Motion("move", dx=2.0), STEPS + 1, size, size, seed=seed + 100)
    frames = background.copy()
    side, top = size // 2, size // 4
    for t in range(STEPS + 1):
        left = size // 4 + 2 * t
        frames[t, top : top + side, left : left + side] = moving[t, top : top + side, left : left + side]
    tokens = size // 32
    edge = np.zeros((tokens, tokens), bool)
    for x in (size // 4, size // 4 + side):  # native x of the two vertical edges at frame 0
        column = (x // 2) // 16
        edge[(top // 2) // 16 + 1 : ((top + side) // 2) // 16 - 1, column] = True
    return frames, edge.ravel()


def online(frames: np.ndarray, size: int, flow: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The loader's online path: resize to the input size, then flow + tracking there."""
    small = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])
    disp, valid = clip_trajectories(small[None], TrajectoryConfig(flow=flow, steps=STEPS))
    return disp[None], valid[None]


def offline(
    frames: np.ndarray, size: int, flow: str = DEFAULT_OFFLINE_FLOW
) -> tuple[torch.Tensor, torch.Tensor]:
    """Track at native resolution with the offline flow, store, read back, resample to ``size``."""
    config = TrajectoryConfig(flow=flow, steps=STEPS)
    native = frames.shape[1]
    meta = TrajectoryMeta(
        num_frames=0, width=native, height=native, steps=STEPS, grid_stride=8,
        grid_height=native // 8, grid_width=native // 8, flow=config.flow, median_filter=True,
        max_displacement=20.0, fps=25.0, source_width=native, source_height=native,
        source_bytes=0, max_side=None,
    )  # fmt: skip
    writer = TrajectoryWriter(meta)
    for disp, valid in track_video(iter(to_gray(frames)), config, shared_flow(config.flow)):
        writer.append(disp, valid)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.traj"
        writer.save(path)
        disp, valid, _ = read_trajectories(path, [0])
    disp, valid = resample_trajectories(disp, valid, 8, (0.0, 0.0, native, native), (size, size))
    return torch.from_numpy(disp)[None], torch.from_numpy(valid)[None]


def energies(
    disp: torch.Tensor, valid: torch.Tensor, size: int, config: TargetConfig, scale: float
) -> torch.Tensor:
    """Per-token energy (N,) of the traj target of one tubelet."""
    clip = torch.zeros(1, 3, 2, size, size)
    batch = {
        "clip": clip,
        "traj_disp": disp,
        "traj_valid": valid,
        "traj_flow_scale": torch.full((1, 2), scale),
    }
    values, _ = build_targets(["traj"], batch, config)["traj"]
    return values[0].pow(2).sum(-1)


def measure_energies(
    size: int,
    norms: dict[str, TargetConfig],
    seeds: int = 3,
    online_flow: str = DEFAULT_ONLINE_FLOW,
    kinds: tuple[str, ...] = (*KINDS, "boundary"),
) -> dict[str, dict[str, float]]:
    """``{"<kind>/<online|offline>": {norm: mean energy per token}}`` over ``seeds`` noisy scenes."""
    rng = np.random.default_rng(0)
    native = 2 * size
    tokens = size // 16
    inner = np.zeros((tokens, tokens), bool)
    inner[2:-2, 2:-2] = True  # away from the border, where points leave the frame
    results: dict[str, dict[str, float]] = {}
    paths = (("online", online, online_flow, 1.0), ("offline", offline, DEFAULT_OFFLINE_FLOW, 0.5))
    for kind in kinds:
        for mode, compute, flow, scale in paths:
            per_norm: dict[str, list[float]] = {name: [] for name in norms}
            for seed in range(seeds):
                if kind == "boundary":
                    frames, chosen = boundary_scene(native, seed)
                else:
                    frames, chosen = (
                        render_frames(KINDS[kind], STEPS + 1, native, native, seed=seed),
                        inner.ravel(),
                    )
                disp, valid = compute(noisy(frames, rng), size, flow)
                for name, config in norms.items():
                    per_norm[name].append(
                        energies(disp, valid, size, config, scale)[torch.from_numpy(chosen)]
                    )
            results[f"{kind}/{mode}"] = {name: float(torch.cat(v).mean()) for name, v in per_norm.items()}
    return results
