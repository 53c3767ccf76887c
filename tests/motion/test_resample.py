from __future__ import annotations

import numpy as np

from mme.motion.resample import resample_trajectories
from mme.motion.tracking import grid_seeds


def affine_trajectories(height: int, width: int, steps: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Stored trajectories of a grid whose displacement is an affine function of the seed."""
    seeds = grid_seeds(height, width, 8)
    step = np.stack([0.02 * seeds[..., 0] - 1.0, -0.01 * seeds[..., 1] + 0.5], -1)
    disp = np.broadcast_to(step, (1, steps, *step.shape)).astype(np.float32).copy()
    return disp, np.ones(disp.shape[:-1], bool)


def test_identity_box_reproduces_the_stored_grid():
    disp, valid = affine_trajectories(64, 96)
    out, alive = resample_trajectories(disp, valid, 8, (0, 0, 96, 64), (96, 64))
    np.testing.assert_allclose(out, disp, atol=1e-6)
    np.testing.assert_array_equal(alive, valid)


def test_crop_on_the_grid_is_the_sub_grid_and_scaling_scales_displacements():
    disp, valid = affine_trajectories(64, 96)
    out, _ = resample_trajectories(disp, valid, 8, (16, 8, 64, 48), (64, 48))
    np.testing.assert_allclose(out, disp[:, :, 1:7, 2:10], atol=1e-6)
    half, _ = resample_trajectories(disp, valid, 8, (0, 0, 96, 64), (48, 32))  # half size: seeds between
    seeds_native = (grid_seeds(32, 48, 8) + 0.5) * 2 - 0.5
    expected = np.stack([0.02 * seeds_native[..., 0] - 1.0, -0.01 * seeds_native[..., 1] + 0.5], -1) / 2
    np.testing.assert_allclose(half[0, 0], expected, atol=1e-5)


def test_flip_mirrors_the_grid_and_negates_dx():
    disp, valid = affine_trajectories(32, 64)
    out, _ = resample_trajectories(disp, valid, 8, (0, 0, 64, 32), (64, 32), flip=True)
    np.testing.assert_allclose(out[..., 0], -disp[:, :, :, ::-1, 0], atol=1e-6)
    np.testing.assert_allclose(out[..., 1], disp[:, :, :, ::-1, 1], atol=1e-6)


def test_validity_needs_all_neighbours_and_the_output_window():
    height, width = 32, 64
    disp = np.zeros((1, 2, 4, 8, 2), np.float32)
    disp[..., 0] = 5.0  # everything moves right 5 px per step
    valid = np.ones((1, 2, 4, 8), bool)
    valid[0, 1:, 0, 0] = False  # stored point (0, 0) dies at the second step
    out, alive = resample_trajectories(disp, valid, 8, (0, 0, width, height), (width // 2, height // 2))
    # Output seed (0, 0) sits between stored seeds (0..1, 0..1): it dies with stored point (0, 0).
    assert alive[0, :, 0, 0].tolist() == [True, False]
    assert out[0, 1, 0, 0, 0] == 2.5  # the dying step keeps its (scaled) displacement
    # The right-most output column: 27.5 + 2.5 = 30 inside a 32-wide frame, then 32.5 is out.
    assert alive[0, :, 1, 3].tolist() == [True, False]
