"""Offline trajectories -> a clip's geometry: bilinear resampling of a stored grid onto the crop's."""

from __future__ import annotations

import numpy as np

from mme.motion.tracking import grid_seeds


def resample_trajectories(
    disp: np.ndarray,
    valid: np.ndarray,
    stride: int,
    box: tuple[float, float, float, float],
    out_size: tuple[int, int],
    out_stride: int = 8,
    flip: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Stored ``disp``/``valid`` resampled onto the grid of ``box`` resized to ``out_size`` (and flipped)."""
    grid_h, grid_w = valid.shape[2:]
    if disp.shape != (*valid.shape, 2):
        raise ValueError(f"disp {disp.shape} and valid {valid.shape} do not match")
    x0, y0, box_w, box_h = box
    out_w, out_h = out_size
    scale_x, scale_y = box_w / out_w, box_h / out_h
    seeds = grid_seeds(out_h, out_w, out_stride).astype(np.float64)  # output pixels, (H', W', 2)
    mirrored_x = (out_w - 1 - seeds[..., 0]) if flip else seeds[..., 0]
    source_x = x0 - 0.5 + (mirrored_x + 0.5) * scale_x
    source_y = y0 - 0.5 + (seeds[..., 1] + 0.5) * scale_y
    # Fractional grid coordinates of the new seeds among the stored seeds.
    centre = (stride - 1) / 2.0
    grid_x = np.clip((source_x - centre) / stride, 0.0, grid_w - 1.0)
    grid_y = np.clip((source_y - centre) / stride, 0.0, grid_h - 1.0)
    left = np.minimum(np.floor(grid_x).astype(np.int64), max(grid_w - 2, 0))
    top = np.minimum(np.floor(grid_y).astype(np.int64), max(grid_h - 2, 0))
    right, bottom = np.minimum(left + 1, grid_w - 1), np.minimum(top + 1, grid_h - 1)
    wx, wy = (grid_x - left)[..., None], (grid_y - top)[..., None]

    def corners(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (
            values[:, :, top, left],
            values[:, :, top, right],
            values[:, :, bottom, left],
            values[:, :, bottom, right],
        )

    d00, d01, d10, d11 = corners(disp.astype(np.float64))
    upper = d00 + (d01 - d00) * wx
    lower = d10 + (d11 - d10) * wx
    moved = upper + (lower - upper) * wy  # (S, L, H', W', 2) stored pixels
    v00, v01, v10, v11 = corners(valid)
    alive = v00 & v01 & v10 & v11
    out = np.empty_like(moved)
    out[..., 0] = moved[..., 0] / scale_x * (-1.0 if flip else 1.0)
    out[..., 1] = moved[..., 1] / scale_y
    positions = seeds + np.cumsum(out, axis=1)
    inside = (
        (positions[..., 0] >= -0.5)
        & (positions[..., 0] <= out_w - 0.5)
        & (positions[..., 1] >= -0.5)
        & (positions[..., 1] <= out_h - 0.5)
    )
    alive = np.logical_and.accumulate(alive & inside, axis=1)
    # Once invalid, later displacements are 0 (the step that makes a point invalid keeps its own).
    before = np.concatenate([np.ones_like(alive[:, :1]), alive[:, :-1]], axis=1)
    out[~before] = 0.0
    return out.astype(np.float32), alive
