"""Dense point tracking through consecutive optical flows (docs/method.md §4.1).

Seeds sit at the centres of the ``stride`` x ``stride`` cells of the start frame and move by
``p_{t+1} = p_t + flow_t(p_t)``, the flow being sampled bilinearly at the sub-pixel position
(optionally after a 3x3 median filter, as in the dense-trajectory literature). Each per-step
displacement is clamped to +-``max_displacement``. A point is *valid* after step t while it is
inside the frame; once it has left it stays invalid, and its later displacements are 0 (the
displacement of the step that takes it out is kept).

With ``config.camera_motion = "homography"`` the flow of each pair is the residual flow relative
to the camera's homography ``H_t`` (:mod:`mme.motion.camera`): the recorded displacement is the
residual ``r_t = flow_t(p_t)`` and the point moves to ``p_{t+1} = H_t (p_t + r_t)``, its true
position in frame t+1 (``H_t`` = identity for a pair that fell back to uncompensated flow).

Conventions (shared by every module of :mod:`mme.motion`):

- positions are pixel-centre coordinates: pixel (i, j) has its centre at x = j, y = i; the frame
  is the area covered by its pixels, ``-0.5 <= x <= W - 0.5`` and ``-0.5 <= y <= H - 0.5``;
- seed (gy, gx) is at ``x = stride * gx + (stride - 1) / 2`` (the centre of its cell), with
  ``Gh = H // stride`` rows and ``Gw = W // stride`` columns (cells wholly inside the frame);
- displacements are (dx, dy) in pixels of the frames the flow was computed on.

Everything here is vectorised over points (and over trajectories that advance together); the
only Python loops run over flow steps.
"""

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
    """The flow field as tracking samples it: float32 (H, W, 2), 3x3-median-filtered if asked.

    Written into ``out`` when given (a slot of a preallocated stack of fields). The median runs
    on both components at once (OpenCV's 3x3 float median treats channels independently).
    """
    flow = np.ascontiguousarray(flow, dtype=np.float32)
    if out is None:
        out = np.empty_like(flow)
    if median_filter:
        cv2.medianBlur(flow, 3, dst=out)
    else:
        out[...] = flow
    return out


def bilinear_sample(fields: np.ndarray, which: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Sample the flow fields ``fields[which[n]]`` bilinearly at ``points[n, m]``.

    fields float32 (P, H, W, 2); which (N,) int index into P; points (N, M, 2) (x, y) pixel-centre
    coordinates, clamped to the frame (the border value is replicated). Returns (N, M, 2) float32.
    Written with numpy gathers rather than ``cv2.remap``, whose bilinear weights are quantised
    to 1/32 pixel. Each (dx, dy) pair is gathered as one complex64 value: one 8-byte gather per
    corner instead of two strided ones, about 3x faster.
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
    """One tracking step of points (N, M, 2) with validity (N, M) through ``fields[which[n]]``.

    Returns (displacement (N, M, 2), new points, new validity). Points already invalid do not
    move (displacement 0); a point whose new position is outside the frame becomes invalid.
    With ``homographies`` (P, 3, 3), the fields are residual flows relative to them: the
    displacement is the residual and the point moves to ``homographies[which[n]] (p + residual)``.
    """
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
    """Trajectories of K grids, each seeded in one frame and tracked through the next L frames.

    ``gray`` (N, H, W) uint8 holds frames; ``index`` (K, L+1) int says which of them are the
    frames r_k, r_k+1, ..., r_k+L of trajectory k. The flow of each distinct pair of frames is
    computed once (tubelets that share frame pairs share their flows); a pair of one frame with
    itself (a clip padded by repeating its last frame) has zero flow without computing it.
    With camera-motion compensation, ``stats`` (when given) counts the distinct pairs compensated
    and fallen back, a fallen-back pair named by its first frame's index into ``gray``.

    Returns disp (K, L, Gh, Gw, 2) float32 and valid (K, L, Gh, Gw) bool.
    """
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
    """Trajectories of every start frame of a video, streamed in start-frame order.

    ``gray_frames`` yields the video's grayscale uint8 (H, W) frames in order. Each consecutive
    flow is computed once and advances every trajectory that needs it (the up to L trajectories
    started in the L previous frames), so memory stays at L grids whatever the video length.
    Yields (disp (L, Gh, Gw, 2) float32, valid (L, Gh, Gw) bool) for start frames 0, 1, ..., F-1.
    A start frame f with f + L > F - 1 runs out of frames: its steps past the last frame are
    invalid with displacement 0 (as for a point that left the frame). With camera-motion
    compensation, ``stats`` (when given) counts the pairs, a fallen-back pair named by the
    video index of its first frame.
    """
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
    """Tracked positions (..., L+1, Gh, Gw, 2) from per-step displacements (..., L, Gh, Gw, 2).

    The true positions for uncompensated trajectories only: camera-compensated displacements are
    residuals relative to the camera, and their sum is the path with the camera's motion removed.
    """
    grid_h, grid_w = disp.shape[-3:-1]
    seeds = grid_seeds(grid_h * stride, grid_w * stride, stride)
    start = np.broadcast_to(seeds, (*disp.shape[:-4], 1, grid_h, grid_w, 2))
    return np.concatenate([start, start + np.cumsum(disp, axis=-4)], axis=-4)
