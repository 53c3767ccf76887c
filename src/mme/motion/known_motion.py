"""Videos with exactly known motion, for measuring flow and tracking accuracy (docs/motion.md)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Motion:
    """Frame ``t``: moved ``t * (dx, dy)``, rotated ``t * angle``, scaled ``zoom ** t`` about the centre."""

    name: str
    dx: float = 0.0
    dy: float = 0.0
    angle: float = 0.0
    zoom: float = 1.0

    def matrix(self, t: float, centre: tuple[float, float]) -> np.ndarray:
        """2x3 affine map from scene coordinates to frame-``t`` coordinates."""
        cx, cy = centre
        scale = self.zoom**t
        cos, sin = scale * math.cos(self.angle * t), scale * math.sin(self.angle * t)
        linear = np.array([[cos, -sin], [sin, cos]])
        offset = np.array([cx + self.dx * t, cy + self.dy * t]) - linear @ np.array([cx, cy])
        return np.concatenate([linear, offset[:, None]], axis=1)


# The motions the accuracy tests and the benchmark table use: slow and fast, integer and
# sub-pixel translations, a rotation and a zoom (up to ~3.5 px/frame at the frame corners).
STANDARD_MOTIONS: tuple[Motion, ...] = (
    Motion("translate_subpixel", dx=0.37, dy=-0.21),
    Motion("translate_1px", dx=1.0, dy=0.5),
    Motion("translate_fast", dx=3.3, dy=-2.4),
    Motion("rotate", angle=math.radians(1.5)),
    Motion("zoom_in", zoom=1.03),
    Motion("zoom_out", zoom=1 / 1.03),
)


def smooth_texture(height: int, width: int, sigma: float = 2.0, seed: int = 0) -> np.ndarray:
    """Float32 (H, W, 3) texture in [0, 255]: Gaussian-filtered white noise, contrast-stretched."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((height, width, 3), dtype=np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
    smooth -= smooth.mean(axis=(0, 1), keepdims=True)
    smooth /= smooth.std(axis=(0, 1), keepdims=True) * 4.0
    return np.clip((smooth + 0.5) * 255.0, 0.0, 255.0)


def render_frames(
    motion: Motion,
    num_frames: int,
    height: int,
    width: int,
    sigma: float = 2.0,
    seed: int = 0,
    oversample: int = 4,
) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 of a texture moving by ``motion``; pixels average oversampled points."""
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for t, samples in enumerate(_scene_samples(motion, num_frames, height, width, sigma, seed, oversample)):
        frames[t] = _to_pixels(samples, height, width)
    return frames


@dataclass(frozen=True)
class MovingSquare:
    """A textured square at ``centre`` with its own whole image ``motion`` (camera-motion tests)."""

    motion: Motion
    centre: tuple[float, float]
    size: float

    def contains(
        self, points: np.ndarray, t: int, height: int, width: int, margin: float = 0.0
    ) -> np.ndarray:
        """Which ``points`` (..., 2) of frame ``t`` lie inside the square shrunk by ``margin`` px."""
        to_scene = cv2.invertAffineTransform(self.motion.matrix(t, ((width - 1) / 2.0, (height - 1) / 2.0)))
        scene = points @ to_scene[:, :2].T + to_scene[:, 2]
        half = self.size / 2.0 - margin
        return (np.abs(scene[..., 0] - self.centre[0]) <= half) & (
            np.abs(scene[..., 1] - self.centre[1]) <= half
        )


def render_layered(
    background: Motion,
    square: MovingSquare,
    num_frames: int,
    height: int,
    width: int,
    sigma: float = 2.0,
    seed: int = 0,
    oversample: int = 4,
) -> np.ndarray:
    """Frames of a background moving by ``background`` with ``square`` drawn over it, anti-aliased."""
    layers = zip(
        _scene_samples(background, num_frames, height, width, sigma, seed, oversample),
        _scene_samples(square.motion, num_frames, height, width, sigma, seed + 1, oversample),
        strict=True,
    )
    xs, ys = _fine_grid(height, width, oversample)
    fine_points = np.stack([xs, ys], axis=-1)
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for t, (back, front) in enumerate(layers):
        inside = square.contains(fine_points, t, height, width)
        frames[t] = _to_pixels(np.where(inside[..., None], front, back), height, width)
    return frames


def _fine_grid(height: int, width: int, fine: int) -> tuple[np.ndarray, np.ndarray]:
    """Output-pixel coordinates (x, y) of the fine sample grid (pixel-centre convention at both scales)."""
    ys, xs = np.mgrid[0 : height * fine, 0 : width * fine].astype(np.float64)
    return (xs + 0.5) / fine - 0.5, (ys + 0.5) / fine - 0.5


def _scene_samples(
    motion: Motion, num_frames: int, height: int, width: int, sigma: float, seed: int, fine: int
) -> Iterator[np.ndarray]:
    """Per frame, float32 (H * fine, W * fine, 3) point samples of the moving texture."""
    centre = ((width - 1) / 2.0, (height - 1) / 2.0)
    inverses = [cv2.invertAffineTransform(motion.matrix(t, centre)) for t in range(num_frames)]
    # The texture covers the scene area seen by any frame (plus a margin for the interpolation).
    corners = np.array([[-0.5, -0.5, 1.0], [width - 0.5, -0.5, 1.0], [-0.5, height - 0.5, 1.0]])
    corners = np.concatenate([corners, [[width - 0.5, height - 0.5, 1.0]]])
    seen = np.concatenate([corners @ inverse.T for inverse in inverses])
    low = np.floor(seen.min(axis=0)) - 4
    high = np.ceil(seen.max(axis=0)) + 4
    texture = smooth_texture(
        int(high[1] - low[1]) * fine, int(high[0] - low[0]) * fine, sigma=sigma * fine, seed=seed
    )
    xs, ys = _fine_grid(height, width, fine)
    for inverse in inverses:
        scene_x = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
        scene_y = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
        yield cv2.remap(
            texture,
            ((scene_x - low[0] + 0.5) * fine - 0.5).astype(np.float32),
            ((scene_y - low[1] + 0.5) * fine - 0.5).astype(np.float32),
            interpolation=cv2.INTER_CUBIC,
            borderMode=cv2.BORDER_REFLECT,
        )


def _to_pixels(samples: np.ndarray, height: int, width: int) -> np.ndarray:
    """Fine samples -> uint8 output pixels, each the mean of the samples over its area."""
    pixels = cv2.resize(samples, (width, height), interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def true_positions(
    motion: Motion, points: np.ndarray, start: int, steps: int, height: int, width: int
) -> np.ndarray:
    """Exact positions (steps + 1, ..., 2) of ``points`` of frame ``start`` in the following frames."""
    centre = ((width - 1) / 2.0, (height - 1) / 2.0)
    to_scene = cv2.invertAffineTransform(motion.matrix(start, centre))
    flat = points.reshape(-1, 2).astype(np.float64)
    scene = flat @ to_scene[:, :2].T + to_scene[:, 2]
    out = []
    for t in range(start, start + steps + 1):
        forward = motion.matrix(t, centre)
        out.append(scene @ forward[:, :2].T + forward[:, 2])
    return np.stack(out).reshape(steps + 1, *points.shape).astype(np.float64)


def true_displacements(
    motion: Motion, points: np.ndarray, start: int, steps: int, height: int, width: int
) -> np.ndarray:
    """Exact per-step displacements (steps, ..., 2) of ``points`` seen in frame ``start``."""
    return np.diff(true_positions(motion, points, start, steps, height, width), axis=0)


def camera_residuals(
    camera: Motion, positions: np.ndarray, start: int, height: int, width: int
) -> np.ndarray:
    """Exact per-step motion relative to the camera of points at ``positions``: ``C_t^-1(p_{t+1}) - p_t``."""
    centre = ((width - 1) / 2.0, (height - 1) / 2.0)
    out = []
    for step in range(len(positions) - 1):
        t = start + step
        to_scene = cv2.invertAffineTransform(camera.matrix(t + 1, centre))
        back = camera.matrix(t, centre)
        following = positions[step + 1] @ to_scene[:, :2].T + to_scene[:, 2]
        out.append(following @ back[:, :2].T + back[:, 2] - positions[step])
    return np.stack(out)


def tracking_errors(
    motion: Motion,
    disp: np.ndarray,
    starts: Sequence[int],
    height: int,
    width: int,
    stride: int = 8,
    margin: float = 16.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-step and endpoint errors (px) of tracked grids against exact motion, away from the border."""
    seeds = _grid(height, width, stride)
    steps = disp.shape[1]
    step_errors, endpoint_errors = [], []
    for k, start in enumerate(starts):
        truth = true_positions(motion, seeds, start, steps, height, width)  # (L+1, Gh, Gw, 2)
        inside = (
            (truth[..., 0] >= margin)
            & (truth[..., 0] <= width - 1 - margin)
            & (truth[..., 1] >= margin)
            & (truth[..., 1] <= height - 1 - margin)
        ).all(axis=0)
        true_steps = np.diff(truth, axis=0)
        step_errors.append(np.linalg.norm(disp[k] - true_steps, axis=-1)[:, inside].ravel())
        endpoint_errors.append(np.linalg.norm(disp[k].sum(axis=0) - true_steps.sum(axis=0), axis=-1)[inside])
    return np.concatenate(step_errors), np.concatenate(endpoint_errors)


def _grid(height: int, width: int, stride: int) -> np.ndarray:
    # The seed grid of mme.motion.tracking, restated so this module stays independent of it.
    centre = (stride - 1) / 2.0
    ys = np.arange(height // stride) * stride + centre
    xs = np.arange(width // stride) * stride + centre
    grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")
    return np.stack([grid_x, grid_y], axis=-1)
