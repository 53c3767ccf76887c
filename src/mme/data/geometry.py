"""One spatial augmentation per sample, applied to frames AND trajectories (docs/data.md, "Geometry")."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

# Bilinear is a fine low-pass filter down to half size; below that, use an antialiased resize.
_ANTIALIAS_BELOW = 0.5


@dataclass(frozen=True)
class Geometry:
    """Crop ``box = (x0, y0, w, h)`` (source pixels) → resize to ``out_size = (W, H)`` → flip."""

    box: tuple[int, int, int, int]
    out_size: tuple[int, int]
    flip: bool = False

    @property
    def scale(self) -> tuple[float, float]:
        """Output pixels per source pixel, (x, y)."""
        return self.out_size[0] / self.box[2], self.out_size[1] / self.box[3]

    def apply_to_frames(self, frames: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) source frames → uint8 (N, out_H, out_W, 3)."""
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 (N, H, W, 3), got {frames.dtype}{frames.shape}")
        x0, y0, w, h = self.box
        if x0 < 0 or y0 < 0 or x0 + w > frames.shape[2] or y0 + h > frames.shape[1]:
            raise ValueError(f"crop box {self.box} outside {frames.shape[2]}x{frames.shape[1]} frames")
        out = resize_frames(frames[:, y0 : y0 + h, x0 : x0 + w], self.out_size)
        if self.flip:
            out = np.ascontiguousarray(out[:, :, ::-1])
        return out

    def map_points(self, points: np.ndarray) -> np.ndarray:
        """Source-pixel positions (..., 2) (x, y) → output-pixel positions."""
        sx, sy = self.scale
        x = (points[..., 0] - self.box[0] + 0.5) * sx - 0.5
        y = (points[..., 1] - self.box[1] + 0.5) * sy - 0.5
        if self.flip:
            x = self.out_size[0] - 1 - x
        return np.stack([x, y], axis=-1)

    def apply_to_trajectories(
        self,
        disp: np.ndarray,
        valid: np.ndarray,
        source_stride: int,
        out_stride: int = 8,
        source_scale: tuple[float, float] = (1.0, 1.0),
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A stored trajectory field -> torch ``disp`` (S, L, H/out_stride, W/out_stride, 2), ``valid``."""
        from mme.motion import resample_trajectories

        kx, ky = source_scale
        x0, y0, w, h = self.box
        stored_box = (x0 * kx, y0 * ky, w * kx, h * ky)
        out_disp, out_valid = resample_trajectories(
            disp, valid, source_stride, stored_box, self.out_size, out_stride=out_stride, flip=self.flip
        )
        return torch.from_numpy(np.ascontiguousarray(out_disp)), torch.from_numpy(
            np.ascontiguousarray(out_valid)
        )


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize uint8 (N, H, W, 3) to ``size = (W, H)``: OpenCV bilinear, torch antialiased below half size."""
    out_w, out_h = size
    count, height, width = frames.shape[:3]
    if (width, height) == (out_w, out_h):
        return np.ascontiguousarray(frames)
    if out_w / width >= _ANTIALIAS_BELOW and out_h / height >= _ANTIALIAS_BELOW:
        out = np.empty((count, out_h, out_w, 3), np.uint8)
        for i in range(count):
            cv2.resize(frames[i], (out_w, out_h), dst=out[i], interpolation=cv2.INTER_LINEAR)
        return out
    clip = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    resized = torch.nn.functional.interpolate(clip, size=(out_h, out_w), mode="bilinear", antialias=True)
    return resized.permute(0, 2, 3, 1).contiguous().numpy()


# -- box samplers -----------------------------------------------------------------------------
def _fixed_offsets(width: int, height: int, crop_w: int, crop_h: int, more: bool) -> list[tuple[int, int]]:
    """The fixed crop positions of GroupMultiScaleCrop: corners and centre (+ 8 more)."""
    step_x, step_y = (width - crop_w) // 4, (height - crop_h) // 4
    grid = [(0, 0), (4, 0), (0, 4), (4, 4), (2, 2)]
    if more:
        grid += [(0, 2), (4, 2), (2, 4), (2, 0), (1, 1), (3, 1), (1, 3), (3, 3)]
    return [(gx * step_x, gy * step_y) for gx, gy in grid]


def multi_scale_crop(
    height: int,
    width: int,
    out_size: int,
    rng: np.random.Generator,
    scales: Sequence[float] = (1.0, 0.875, 0.75, 0.66),
    max_distort: int = 1,
    fix_crop: bool = True,
    more_fix_crop: bool = True,
    flip: bool = False,
) -> Geometry:
    """The pre-training crop (GroupMultiScaleCrop of TSN/VideoMAE; docs/data.md)."""
    short = min(height, width)
    sides = [int(short * scale) for scale in scales]
    sides = [out_size if abs(side - out_size) < 3 else side for side in sides]
    pairs = [(w, h) for i, h in enumerate(sides) for j, w in enumerate(sides) if abs(i - j) <= max_distort]
    crop_w, crop_h = pairs[int(rng.integers(len(pairs)))]
    if fix_crop:
        offsets = _fixed_offsets(width, height, crop_w, crop_h, more_fix_crop)
        x0, y0 = offsets[int(rng.integers(len(offsets)))]
    else:
        x0, y0 = int(rng.integers(0, width - crop_w + 1)), int(rng.integers(0, height - crop_h + 1))
    return Geometry((x0, y0, crop_w, crop_h), (out_size, out_size), bool(flip and rng.random() < 0.5))


def random_resized_crop(
    height: int,
    width: int,
    out_size: int,
    rng: np.random.Generator,
    area: tuple[float, float] = (0.25, 1.0),
    aspect: tuple[float, float] = (3 / 4, 4 / 3),
    flip: bool = True,
    attempts: int = 10,
) -> Geometry:
    """The fine-tuning crop, as torchvision's RandomResizedCrop; flip with probability 1/2."""
    total = height * width
    log_low, log_high = math.log(aspect[0]), math.log(aspect[1])
    for _ in range(attempts):
        target = total * rng.uniform(area[0], area[1])
        ratio = math.exp(rng.uniform(log_low, log_high))
        w = round(math.sqrt(target * ratio))
        h = round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            x0 = int(rng.integers(0, width - w + 1))
            y0 = int(rng.integers(0, height - h + 1))
            return Geometry((x0, y0, w, h), (out_size, out_size), bool(flip and rng.random() < 0.5))
    ratio = width / height
    if ratio < aspect[0]:
        w, h = width, round(width / aspect[0])
    elif ratio > aspect[1]:
        w, h = round(height * aspect[1]), height
    else:
        w, h = width, height
    box = ((width - w) // 2, (height - h) // 2, w, h)
    return Geometry(box, (out_size, out_size), bool(flip and rng.random() < 0.5))


def short_side_crop(
    height: int,
    width: int,
    out_size: int,
    short_side_size: int | None = None,
    crop: int = 0,
    num_crops: int = 1,
) -> Geometry:
    """Crop ``crop`` of ``num_crops`` squares along the long side after resizing the short side."""
    short_side_size = short_side_size or out_size
    short, long = min(height, width), max(height, width)
    side = max(1, min(short, round(short * out_size / short_side_size)))
    across = (short - side) // 2
    room = long - side
    along = room // 2 if num_crops == 1 else round(crop * room / (num_crops - 1))
    x0, y0 = (along, across) if width >= height else (across, along)
    return Geometry((x0, y0, side, side), (out_size, out_size), False)
