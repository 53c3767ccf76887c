from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from motion_helpers import INDEX, SIZE, STARTS

from mme.motion import TrajectoryConfig, clip_trajectories, dense_clip_trajectories, resample_trajectories
from mme.motion.flow import create_flow, to_gray
from mme.motion.known_motion import Motion, render_frames, tracking_errors, true_positions
from mme.motion.store import TrajectoryMeta, TrajectoryWriter, read_trajectories
from mme.motion.tracking import grid_seeds, track_video


def test_clip_trajectories_follow_the_contract(known_scenes):
    _, frames = known_scenes["rotate"]
    per_tubelet = np.stack([frames[0:5], frames[4:9]])  # (K=2, L+1=5, H, W, 3)
    disp, valid = clip_trajectories(per_tubelet, TrajectoryConfig())
    assert isinstance(disp, torch.Tensor) and disp.dtype == torch.float32
    assert valid.dtype == torch.bool
    assert disp.shape == (2, 4, 28, 28, 2) and valid.shape == (2, 4, 28, 28)


def test_dense_frames_with_an_index_give_the_same_result(known_scenes):
    _, frames = known_scenes["zoom_in"]
    config = TrajectoryConfig()
    dense = dense_clip_trajectories(frames, INDEX, config)
    stacked = clip_trajectories(np.stack([frames[row] for row in INDEX]), config)
    for got, want in zip(dense, stacked, strict=True):
        torch.testing.assert_close(got, want)


def test_online_trajectories_are_accurate_on_known_motion(known_scenes):
    motion, frames = known_scenes["translate_fast"]
    disp, _ = dense_clip_trajectories(frames, INDEX, TrajectoryConfig())
    _, endpoint_errors = tracking_errors(motion, disp.numpy(), STARTS, *SIZE)
    assert np.median(endpoint_errors) <= 0.75


def test_bad_inputs_are_rejected_with_their_shapes():
    config = TrajectoryConfig()
    with pytest.raises(ValueError, match=r"\(K, 5, H, W, 3\)"):
        clip_trajectories(np.zeros((2, 4, 32, 32, 3), np.uint8), config)
    with pytest.raises(ValueError, match="uint8"):
        dense_clip_trajectories(np.zeros((5, 32, 32, 3), np.float32), np.arange(5)[None], config)
    with pytest.raises(ValueError, match=r"index values"):
        dense_clip_trajectories(np.zeros((5, 32, 32, 3), np.uint8), np.arange(1, 6)[None], config)


@pytest.mark.parametrize("flip", [False, True])
def test_online_agrees_with_offline_trajectories_resampled_to_the_crop(tmp_path, flip):
    """Offline: track the whole (native) frames, store, read, resample onto the crop.
    Online: crop + resize the frames first, then track. Same flow backend for both."""
    motion = Motion("drift_and_turn", dx=1.3, dy=0.6, angle=np.radians(0.8))
    height, width = 240, 320
    frames = render_frames(motion, 5, height, width, seed=11)
    config = TrajectoryConfig(flow="dis_fine")

    meta = TrajectoryMeta(
        num_frames=0, width=width, height=height, steps=4, grid_stride=8, grid_height=height // 8,
        grid_width=width // 8, flow=config.flow, median_filter=True, max_displacement=20.0, fps=25.0,
        source_width=width, source_height=height, source_bytes=0,
    )  # fmt: skip
    writer = TrajectoryWriter(meta)
    for disp, valid in track_video(iter(to_gray(frames)), config, create_flow(config.flow)):
        writer.append(disp, valid)
    writer.save(tmp_path / "video.traj")
    stored_disp, stored_valid, _ = read_trajectories(tmp_path / "video.traj", start_frames=[0])

    box = (40, 16, 256, 208)  # x0, y0, w, h of the crop, resized to 224 x 224
    offline_disp, offline_valid = resample_trajectories(
        stored_disp, stored_valid, 8, box, (224, 224), flip=flip
    )
    offline_disp, offline_valid = offline_disp[0], offline_valid[0]

    crops = frames[:, 16 : 16 + 208, 40 : 40 + 256]
    augmented = np.stack([cv2.resize(crop, (224, 224), interpolation=cv2.INTER_AREA) for crop in crops])
    if flip:
        augmented = np.ascontiguousarray(augmented[:, :, ::-1])
    online_disp, online_valid = clip_trajectories(augmented[None], config)
    online_disp, online_valid = online_disp[0].numpy(), online_valid[0].numpy()

    # Compare where both are valid and the point stays well inside (flow is least reliable at borders).
    positions = grid_seeds(224, 224, 8) + np.cumsum(online_disp, axis=0)
    inside = ((positions > 16) & (positions < 224 - 16)).all(axis=(0, -1))
    both = online_valid.all(axis=0) & offline_valid.all(axis=0) & inside
    assert both.sum() > 400
    step_difference = np.linalg.norm(online_disp - offline_disp, axis=-1)[:, both]
    endpoint_difference = np.linalg.norm(online_disp.sum(0) - offline_disp.sum(0), axis=-1)[both]
    assert np.median(step_difference) <= 0.12
    assert np.median(endpoint_difference) <= 0.3
    # ... and both agree with the truth: dx scales by 224/256, dy by 224/208, flip negates dx.
    seeds_out = grid_seeds(224, 224, 8).astype(np.float64)
    seed_x = (223 - seeds_out[..., 0]) if flip else seeds_out[..., 0]
    native = np.stack(
        [40 - 0.5 + (seed_x + 0.5) * 256 / 224, 16 - 0.5 + (seeds_out[..., 1] + 0.5) * 208 / 224], -1
    )
    truth = np.diff(true_positions(motion, native, 0, 4, height, width), axis=0)
    truth[..., 0] *= (-1 if flip else 1) * 224 / 256
    truth[..., 1] *= 224 / 208
    assert np.median(np.linalg.norm(offline_disp - truth, axis=-1)[:, both]) <= 0.1
