"""Online trajectories: computed per clip, after the spatial augmentation, in data-loader workers.

This removes the pre-extraction stage entirely: the worker decodes the dense raw frames
``r_k .. r_k + L`` of every tubelet k, applies the sample's crop/resize/flip to them, and calls one
of the functions below. Points are seeded on the augmented frames, so displacements come out
directly in network-input pixels (no resampling of stored trajectories).

Two entry points, one result:

- :func:`clip_trajectories` takes ``(K, L+1, H, W, 3)``: simplest when the tubelets share no frame.
- :func:`dense_clip_trajectories` takes the distinct frames once plus an index ``(K, L+1)`` into
  them. The data pipeline calls this one: a frame used by several tubelets is decoded, augmented
  and converted to grayscale once, and a frame pair used by several tubelets gets one flow.
  (With the released recipe, stride s = 4 and L = 4, tubelet k spans raw frames 8k .. 8k+4 and
  tubelet k+1 starts at 8k+8, so nothing is shared and a 16-frame clip costs 32 flows; strides
  with 2s < L share flow pairs, and clips padded by repeating a video's last frame share frames.)

Both run on one core: call :func:`mme.motion.flow.set_cv2_threads(1) <mme.motion.flow.set_cv2_threads>`
(and ``torch.set_num_threads(1)``) in the worker init function. The flow backend is created once
per process and cached by name.
"""

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
    """Trajectories of K tubelets from distinct frames and an index into them.

    frames: uint8 (N, H, W, 3) RGB, already augmented (the network-input geometry).
    index: int (K, L+1): ``frames[index[k, t]]`` is raw frame ``r_k + t``.
    Returns ``traj_disp`` float32 (K, L, H/stride, W/stride, 2) (dx, dy) in these frames' pixels
    and ``traj_valid`` bool (K, L, H/stride, W/stride) (the Trajectory-inputs contract).
    With ``config.camera_motion = "homography"`` the displacements are relative to the camera
    and ``stats`` (when given) counts the distinct frame pairs compensated and fallen back to
    uncompensated flow (a fallen-back pair named by its first frame's index into ``frames``).
    """
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
    """Trajectories of K tubelets from their frames uint8 (K, L+1, H, W, 3) (frames r_k .. r_k+L).

    Same result as :func:`dense_clip_trajectories`; see there for shapes and ``stats``.
    """
    frames = np.asarray(frames)
    if frames.ndim != 5 or frames.shape[1] != config.steps + 1:
        raise ValueError(f"frames must be uint8 (K, {config.steps + 1}, H, W, 3), got {frames.shape}")
    count = frames.shape[0]
    index = np.arange(count * (config.steps + 1)).reshape(count, config.steps + 1)
    return dense_clip_trajectories(frames.reshape(-1, *frames.shape[2:]), index, config, stats)
