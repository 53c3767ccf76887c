"""Online trajectories: per clip, on the augmented frames, in data-loader workers (docs/motion.md)."""

from __future__ import annotations

import numpy as np
import torch

from mme.motion.camera import CameraStats
from mme.motion.config import TrajectoryConfig
from mme.motion.flow import shared_flow, to_gray
from mme.motion.tracking import track_tubelets


def dense_clip_trajectories(
    frames: np.ndarray, index: np.ndarray, config: TrajectoryConfig, stats: CameraStats | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``traj_disp`` (K, L, Gh, Gw, 2) and ``traj_valid`` from distinct frames and an index (K, L+1)."""
    frames = np.asarray(frames)
    index = np.asarray(index)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (N, H, W, 3), got {frames.dtype}{frames.shape}")
    if index.ndim != 2 or index.shape[1] != config.steps + 1:
        raise ValueError(f"index must be (K, {config.steps + 1}), got {index.shape}")
    if index.size and (index.min() < 0 or index.max() >= len(frames)):
        raise ValueError(f"index values must lie in [0, {len(frames)}), got [{index.min()}, {index.max()}]")
    gray = to_gray(frames)
    disp, valid = track_tubelets(gray, index, config, shared_flow(config.flow), stats)
    return torch.from_numpy(disp), torch.from_numpy(valid)


def clip_trajectories(
    frames: np.ndarray, config: TrajectoryConfig, stats: CameraStats | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """As :func:`dense_clip_trajectories`, from frames (K, L+1, H, W, 3)."""
    frames = np.asarray(frames)
    if frames.ndim != 5 or frames.shape[1] != config.steps + 1:
        raise ValueError(f"frames must be uint8 (K, {config.steps + 1}, H, W, 3), got {frames.shape}")
    count = frames.shape[0]
    index = np.arange(count * (config.steps + 1)).reshape(count, config.steps + 1)
    return dense_clip_trajectories(frames.reshape(-1, *frames.shape[2:]), index, config, stats)
