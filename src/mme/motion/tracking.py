"""Dense point tracking through consecutive flows (docs/method.md §4.1; conventions: docs/motion.md)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import cv2
import numpy as np

from mme.motion.camera import CameraStats, apply_homographies, pair_flow
from mme.motion.config import TrajectoryConfig
from mme.motion.flow import FlowBackend


def grid_seeds(height: int, width: int, stride: int) -> np.ndarray:
    """Seed positions (Gh, Gw, 2) float32 (x, y) at the centres of the stride x stride cells."""
    rows, cols = height // stride, width // stride
    if rows < 1 or cols < 1:
        raise ValueError(f"a {width}x{height} frame holds no {stride}x{stride} cell")
    centre = (stride - 1) / 2.0
    ys = np.arange(rows, dtype=np.float32) * stride + centre
    xs = np.arange(cols, dtype=np.float32) * stride + centre
    grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")
    return np.stack([grid_x, grid_y], axis=-1)


def prepare_flow(flow: np.ndarray, median_filter: bool, out: np.ndarray | None = None) -> np.ndarray:
    """The flow field float32 (H, W, 2) as tracking samples it, 3x3-median-filtered if asked."""
    flow = np.ascontiguousarray(flow, dtype=np.float32)
    if out is None:
        out = np.empty_like(flow)
    if median_filter:
        cv2.medianBlur(flow, 3, dst=out)
    else:
        out[...] = flow
    return out


def bilinear_sample(fields: np.ndarray, which: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Sample ``fields[which[n]]`` (P, H, W, 2) bilinearly at ``points[n, m]``, clamped to the frame.

    Numpy gathers, not ``cv2.remap`` (its weights are quantised to 1/32 px); each (dx, dy) is gathered
    as one complex64, about 3x faster than two strided gathers.
    """
    count, height, width, channels = fields.shape
    if channels != 2 or fields.dtype != np.float32:
        raise ValueError(f"expected float32 (P, H, W, 2) fields, got {fields.dtype}{fields.shape}")
    if height < 2 or width < 2:
        raise ValueError(f"cannot interpolate a {width}x{height} field")
    x = np.clip(points[..., 0], 0.0, width - 1.0).astype(np.float32)
    y = np.clip(points[..., 1], 0.0, height - 1.0).astype(np.float32)
    x0 = np.minimum(x.astype(np.int64), width - 2)
    y0 = np.minimum(y.astype(np.int64), height - 2)
    ax, ay = x - x0, y - y0
    corner = (np.asarray(which, np.int64).reshape(-1, *([1] * (x.ndim - 1))) * height + y0) * width + x0
    pairs = np.ascontiguousarray(fields).view(np.complex64).reshape(count * height * width)
    v00, v01 = pairs.take(corner), pairs.take(corner + 1)
    v10, v11 = pairs.take(corner + width), pairs.take(corner + width + 1)
    top = v00 + (v01 - v00) * ax
    bottom = v10 + (v11 - v10) * ax
    sampled = top + (bottom - top) * ay
    return np.stack([sampled.real, sampled.imag], axis=-1)


def advance(
    points: np.ndarray,
    alive: np.ndarray,
    fields: np.ndarray,
    which: np.ndarray,
    max_displacement: float,
    homographies: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One tracking step: (displacement, new points, new validity); with ``homographies``, residual flows."""
    height, width = fields.shape[1:3]
    disp = bilinear_sample(fields, which, points)
    np.clip(disp, -max_displacement, max_displacement, out=disp)
    disp[~alive] = 0.0
    points = points + disp
    if homographies is not None:
        points = apply_homographies(homographies[which], points)
    inside = (
        (points[..., 0] >= -0.5)
        & (points[..., 0] <= width - 0.5)
        & (points[..., 1] >= -0.5)
        & (points[..., 1] <= height - 0.5)
    )
    return disp, points, alive & inside


def track_tubelets(
    gray: np.ndarray,
    index: np.ndarray,
    config: TrajectoryConfig,
    backend: FlowBackend,
    stats: CameraStats | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``disp`` (K, L, Gh, Gw, 2) and ``valid`` of K grids; each distinct frame pair gets one flow."""
    index = np.asarray(index, dtype=np.int64)
    count, steps_plus_one = index.shape
    if steps_plus_one != config.steps + 1:
        raise ValueError(
            f"index has {steps_plus_one - 1} steps per trajectory, config.steps is {config.steps}"
        )
    height, width = gray.shape[1:3]
    seeds = grid_seeds(height, width, config.grid_stride)
    grid_shape = seeds.shape[:2]

    pairs = np.stack([index[:, :-1], index[:, 1:]], axis=-1).reshape(-1, 2)
    unique_pairs, pair_of = np.unique(pairs, axis=0, return_inverse=True)
    pair_of = pair_of.reshape(count, config.steps)
    fields = np.empty((len(unique_pairs), height, width, 2), np.float32)
    compensated = config.camera_motion != "none"
    homographies = np.tile(np.eye(3), (len(unique_pairs), 1, 1)) if compensated else None
    for slot, (a, b) in enumerate(unique_pairs):
        if a == b:
            fields[slot] = 0.0  # a frame paired with itself: no motion at all, camera included
            continue
        flow, homography = pair_flow(backend, gray[a], gray[b], config.camera_motion, stats, int(a))
        prepare_flow(flow, config.median_filter, out=fields[slot])
        if homography is not None:
            homographies[slot] = homography

    points = np.broadcast_to(seeds.reshape(1, -1, 2), (count, seeds[..., 0].size, 2)).copy()
    alive = np.ones(points.shape[:2], bool)
    disp = np.empty((count, config.steps, *points.shape[1:]), np.float32)
    valid = np.empty((count, config.steps, points.shape[1]), bool)
    for t in range(config.steps):
        disp[:, t], points, alive = advance(
            points, alive, fields, pair_of[:, t], config.max_displacement, homographies
        )
        valid[:, t] = alive
    return disp.reshape(count, config.steps, *grid_shape, 2), valid.reshape(count, config.steps, *grid_shape)


def track_video(
    gray_frames: Iterable[np.ndarray],
    config: TrajectoryConfig,
    backend: FlowBackend,
    stats: CameraStats | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Every start frame's trajectories, streamed; each consecutive flow is computed once."""
    active: list[_Trajectory] = []
    previous: np.ndarray | None = None
    for index, frame in enumerate(gray_frames):
        if previous is not None:
            if frame.shape != previous.shape:
                raise ValueError(f"frame size changed mid-video: {previous.shape} -> {frame.shape}")
            flow, homography = pair_flow(backend, previous, frame, config.camera_motion, stats, index - 1)
            field = prepare_flow(flow, config.median_filter)[None]
            points = np.stack([trajectory.points for trajectory in active])
            alive = np.stack([trajectory.alive for trajectory in active])
            which = np.zeros(len(active), np.int64)  # every active trajectory samples this one flow
            homographies = None if homography is None else homography[None]
            disp, points, alive = advance(points, alive, field, which, config.max_displacement, homographies)
            for n, trajectory in enumerate(active):
                trajectory.record(disp[n], points[n], alive[n])
            while active and active[0].done:
                yield active.pop(0).result()
        active.append(
            _Trajectory(grid_seeds(frame.shape[0], frame.shape[1], config.grid_stride), config.steps)
        )
        previous = frame
    for trajectory in active:
        yield trajectory.result()


class _Trajectory:
    """One start frame's grid being tracked by :func:`track_video`."""

    def __init__(self, seeds: np.ndarray, steps: int) -> None:
        self.grid_shape = seeds.shape[:2]
        self.points = seeds.reshape(-1, 2).copy()
        self.alive = np.ones(len(self.points), bool)
        self.disp = np.zeros((steps, len(self.points), 2), np.float32)
        self.valid = np.zeros((steps, len(self.points)), bool)
        self.step = 0

    @property
    def done(self) -> bool:
        return self.step == len(self.disp)

    def record(self, disp: np.ndarray, points: np.ndarray, alive: np.ndarray) -> None:
        self.disp[self.step], self.valid[self.step] = disp, alive
        self.points, self.alive = points, alive
        self.step += 1

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        return self.disp.reshape(len(self.disp), *self.grid_shape, 2), self.valid.reshape(
            len(self.valid), *self.grid_shape
        )


def positions_from_displacements(disp: np.ndarray, stride: int) -> np.ndarray:
    """Positions (..., L+1, Gh, Gw, 2) from displacements (true ones only without camera compensation)."""
    grid_h, grid_w = disp.shape[-3:-1]
    seeds = grid_seeds(grid_h * stride, grid_w * stride, stride)
    start = np.broadcast_to(seeds, (*disp.shape[:-4], 1, grid_h, grid_w, 2))
    return np.concatenate([start, start + np.cumsum(disp, axis=-4)], axis=-4)
