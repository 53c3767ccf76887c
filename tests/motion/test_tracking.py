from __future__ import annotations

import cv2
import numpy as np
import pytest
from motion_helpers import INDEX, SIZE, STARTS

from mme.motion.config import DEFAULT_OFFLINE_FLOW, DEFAULT_ONLINE_FLOW, TrajectoryConfig
from mme.motion.flow import create_flow, to_gray
from mme.motion.known_motion import STANDARD_MOTIONS, tracking_errors, true_positions
from mme.motion.tracking import (
    advance,
    bilinear_sample,
    grid_seeds,
    positions_from_displacements,
    prepare_flow,
    track_tubelets,
    track_video,
)


class ConstantFlow:
    """A fake backend: the same flow everywhere, counting its calls."""

    name = "constant"

    def __init__(self, dx: float, dy: float) -> None:
        self.dx, self.dy, self.calls = dx, dy, []

    def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        self.calls.append((int(prev[0, 0]), int(nxt[0, 0])))
        flow = np.empty((*prev.shape, 2), np.float32)
        flow[..., 0], flow[..., 1] = self.dx, self.dy
        return flow


def numbered_frames(count: int, height: int = 32, width: int = 32) -> np.ndarray:
    """Gray frames whose pixel (0, 0) holds their number (so a fake backend can log pairs)."""
    frames = np.zeros((count, height, width), np.uint8)
    frames[:, 0, 0] = np.arange(count)
    return frames


def test_seeds_sit_at_cell_centres_of_whole_cells():
    seeds = grid_seeds(20, 24, 8)  # 20 rows hold 2 whole cells
    assert seeds.shape == (2, 3, 2)
    np.testing.assert_array_equal(seeds[0, :, 0], [3.5, 11.5, 19.5])
    np.testing.assert_array_equal(seeds[:, 0, 1], [3.5, 11.5])
    with pytest.raises(ValueError, match="no 8x8 cell"):
        grid_seeds(7, 30, 8)


def test_bilinear_sampling_is_exact_for_linear_fields_and_clamps_at_borders():
    height, width = 17, 23
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    fields = np.stack(
        [np.stack([0.5 * xs - 0.25 * ys + 1, 2 * ys - xs], -1), np.stack([xs + ys, -ys], -1)]
    ).astype(np.float32)
    rng = np.random.default_rng(0)
    points = rng.uniform([0, 0], [width - 1, height - 1], (2, 50, 2)).astype(np.float32)
    sampled = bilinear_sample(fields, np.array([1, 0]), points)
    x, y = points[..., 0], points[..., 1]
    np.testing.assert_allclose(sampled[0], np.stack([x[0] + y[0], -y[0]], -1), atol=1e-4)
    np.testing.assert_allclose(
        sampled[1], np.stack([0.5 * x[1] - 0.25 * y[1] + 1, 2 * y[1] - x[1]], -1), atol=1e-4
    )
    outside = np.array([[[-5.0, -5.0], [width + 3.0, height + 9.0]]], np.float32)
    np.testing.assert_allclose(
        bilinear_sample(fields, np.array([0]), outside)[0], fields[0, [0, -1], [0, -1]]
    )


def test_median_filter_is_3x3_per_component_and_removes_isolated_outliers():
    rng = np.random.default_rng(1)
    flow = rng.standard_normal((20, 30, 2)).astype(np.float32)
    filtered = prepare_flow(flow, median_filter=True)
    for component in range(2):
        expected = cv2.medianBlur(np.ascontiguousarray(flow[..., component]), 3)
        np.testing.assert_array_equal(filtered[..., component], expected)
    smooth = np.ones((20, 30, 2), np.float32)
    smooth[10, 15] = [40.0, -40.0]
    np.testing.assert_array_equal(prepare_flow(smooth, True), np.ones_like(smooth))
    np.testing.assert_array_equal(prepare_flow(smooth, False), smooth)


def test_points_leaving_the_frame_become_and_stay_invalid_with_zero_later_steps():
    config = TrajectoryConfig(steps=4, median_filter=False)
    disp, valid = track_tubelets(numbered_frames(5), np.arange(5)[None], config, ConstantFlow(7.0, 0.0))
    seeds_x = grid_seeds(32, 32, 8)[0, :, 0]  # 3.5, 11.5, 19.5, 27.5; the frame ends at 31.5
    for column, x in enumerate(seeds_x):
        positions = x + 7.0 * np.arange(1, 5)
        inside = positions <= 31.5
        np.testing.assert_array_equal(valid[0, :, 0, column], inside)
        died = int(np.argmin(inside)) if not inside.all() else 4
        # The step that takes a point out keeps its displacement; later steps are 0.
        expected_dx = np.where(np.arange(4) <= died, 7.0, 0.0)
        np.testing.assert_array_equal(disp[0, :, 0, column, 0], expected_dx)
    assert valid[0, :, 3, 0].tolist() == [True, True, True, True]  # first column: 3.5 -> 31.5 is inside


def test_displacements_are_clamped_to_max_displacement():
    config = TrajectoryConfig(steps=2, median_filter=False, max_displacement=20.0)
    frames = numbered_frames(3, 128, 128)
    disp, valid = track_tubelets(frames, np.arange(3)[None], config, ConstantFlow(-50.0, 3.0))
    np.testing.assert_array_equal(disp[0, 0, 5, 10], [-20.0, 3.0])
    # a point that starts at x = 83.5 moves to 63.5 then 43.5: still inside
    assert valid[0, :, 5, 10].all()


def test_each_distinct_frame_pair_gets_one_flow_and_self_pairs_none():
    backend = ConstantFlow(1.0, 0.0)
    index = np.array([[0, 1, 2, 3, 4], [2, 3, 4, 5, 6], [6, 6, 6, 6, 6]])
    disp, valid = track_tubelets(numbered_frames(7), index, TrajectoryConfig(median_filter=False), backend)
    assert sorted(backend.calls) == [(i, i + 1) for i in range(6)]
    assert (disp[2] == 0).all() and valid[2].all()  # a repeated last frame: no motion
    np.testing.assert_array_equal(disp[1, :, 1, 1, 0], 1.0)


@pytest.mark.parametrize("motion", [m.name for m in STANDARD_MOTIONS])
def test_offline_default_backend_tracks_known_motion_accurately(known_scenes, motion):
    scene, frames = known_scenes[motion]
    config = TrajectoryConfig(flow=DEFAULT_OFFLINE_FLOW)
    disp, _ = track_tubelets(to_gray(frames), INDEX, config, create_flow(config.flow))
    step_errors, endpoint_errors = tracking_errors(scene, disp, STARTS, *SIZE)
    assert len(endpoint_errors) > 500
    assert np.median(step_errors) <= 0.1
    assert np.median(endpoint_errors) <= 0.25


@pytest.mark.parametrize("motion", [m.name for m in STANDARD_MOTIONS])
def test_online_default_backend_tracks_known_motion_within_budget(known_scenes, motion):
    scene, frames = known_scenes[motion]
    config = TrajectoryConfig()
    assert config.flow == DEFAULT_ONLINE_FLOW
    disp, _ = track_tubelets(to_gray(frames), INDEX, config, create_flow(config.flow))
    _, endpoint_errors = tracking_errors(scene, disp, STARTS, *SIZE)
    assert np.median(endpoint_errors) <= 0.75


@pytest.mark.parametrize("motion", ["translate_fast", "zoom_in"])
def test_points_pushed_out_of_the_frame_are_flagged_invalid(known_scenes, motion):
    scene, frames = known_scenes[motion]
    height, width = SIZE
    config = TrajectoryConfig(flow=DEFAULT_OFFLINE_FLOW)
    _, valid = track_tubelets(to_gray(frames), INDEX, config, create_flow(config.flow))
    seeds = grid_seeds(height, width, 8)
    truth = true_positions(scene, seeds, 0, 4, height, width)[1:]  # (L, Gh, Gw, 2) after each step
    distance_inside = np.minimum(
        np.minimum(truth[..., 0] + 0.5, width - 0.5 - truth[..., 0]),
        np.minimum(truth[..., 1] + 0.5, height - 0.5 - truth[..., 1]),
    )
    # Once out, always out: compare with the worst distance seen so far along the trajectory.
    margin = np.minimum.accumulate(distance_inside, axis=0)
    clearly_out, clearly_in = margin < -1.0, margin > 1.0
    assert clearly_out.sum() > 20
    assert not valid[0][clearly_out].any()
    assert valid[0][clearly_in].all()


def test_streaming_video_tracking_matches_tubelets_and_ends_invalid(known_scenes):
    _, frames = known_scenes["rotate"]
    gray = to_gray(frames[:7])
    config = TrajectoryConfig(flow="dis_ultrafast", steps=4)
    backend = create_flow(config.flow)
    results = list(track_video(iter(gray), config, backend))
    assert len(results) == 7  # one per start frame, the last ones included
    reference, reference_valid = track_tubelets(
        gray, np.array([[0, 1, 2, 3, 4], [2, 3, 4, 5, 6]]), config, backend
    )
    np.testing.assert_array_equal(results[0][0], reference[0])
    np.testing.assert_array_equal(results[2][0], reference[1])
    np.testing.assert_array_equal(results[2][1], reference_valid[1])
    # Start frame 4 has 2 flows left (4->5, 5->6): steps 3 and 4 are invalid and still.
    disp, valid = results[4]
    assert valid[:2].any() and not valid[2:].any() and (disp[2:] == 0).all()
    assert not results[6][1].any()


def test_advance_leaves_dead_points_still():
    fields = np.full((1, 10, 10, 2), 2.0, np.float32)
    points = np.array([[[4.0, 4.0], [8.0, 8.0]]], np.float32)
    alive = np.array([[True, False]])
    disp, moved, still_alive = advance(points, alive, fields, np.array([0]), 20.0)
    np.testing.assert_array_equal(disp[0], [[2.0, 2.0], [0.0, 0.0]])
    np.testing.assert_array_equal(moved[0, 1], [8.0, 8.0])
    assert still_alive.tolist() == [[True, False]]


def test_positions_from_displacements_start_at_seeds():
    disp = np.ones((3, 2, 4, 2), np.float32)
    positions = positions_from_displacements(disp, stride=8)
    assert positions.shape == (4, 2, 4, 2)
    np.testing.assert_array_equal(positions[0], grid_seeds(16, 32, 8))
    np.testing.assert_array_equal(positions[3] - positions[0], 3.0)
