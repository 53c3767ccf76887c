"""Photometric augmentation per clip (OpenCV on uint8; docs/data.md) and batch transforms."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from mme.errors import ConfigError
from mme.utils.normalization import IMAGENET_MEAN, IMAGENET_STD

FILL = (128, 128, 128)  # timm's fill colour for rotate / shear / translate
MAX_LEVEL = 10.0


# -- batch transforms (device) ------------------------------------------------------------------
def normalize_clip(clip: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 clips (..., 3, T, H, W) on any device → ``(x / 255 - mean) / std`` as ``dtype``."""
    if clip.dtype != torch.uint8:
        raise TypeError(f"normalize_clip expects uint8 clips, got {clip.dtype}")
    if clip.ndim < 4 or clip.shape[-4] != 3:
        raise ValueError(f"clips must be (..., 3, T, H, W), got {tuple(clip.shape)}")
    mean = torch.tensor(IMAGENET_MEAN, device=clip.device, dtype=dtype).view(3, 1, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=clip.device, dtype=dtype).view(3, 1, 1, 1)
    return clip.to(dtype).mul_(1.0 / (255.0 * std)).sub_(mean / std)


def to_clip_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) frames → the contract's clip uint8 (3, T, H, W), contiguous."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).contiguous()


def smooth_one_hot(labels: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """One-hot targets, smoothed: ``1 - smoothing + smoothing/C`` on the class, ``smoothing/C`` elsewhere."""
    off = smoothing / num_classes
    targets = torch.full((labels.shape[0], num_classes), off, device=labels.device)
    return targets.scatter_(1, labels.long().view(-1, 1), 1.0 - smoothing + off)


class Mixup:
    """Mixup / CutMix over a batch with label smoothing (timm's ``Mixup``, 'batch' mode; docs/data.md)."""

    def __init__(
        self,
        num_classes: int,
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        label_smoothing: float = 0.1,
        seed: int = 0,
    ) -> None:
        if num_classes < 2:
            raise ConfigError(f"mixup needs at least 2 classes, got {num_classes}")
        self.num_classes = num_classes
        self.mixup_alpha, self.cutmix_alpha = mixup_alpha, cutmix_alpha
        self.prob, self.switch_prob = prob, switch_prob
        self.label_smoothing = label_smoothing
        self.rng = np.random.default_rng(seed)

    @classmethod
    def from_config(cls, num_classes: int, config: object, seed: int = 0) -> Mixup:
        return cls(
            num_classes,
            mixup_alpha=config.mixup_alpha,  # type: ignore[attr-defined]
            cutmix_alpha=config.cutmix_alpha,  # type: ignore[attr-defined]
            prob=config.prob,  # type: ignore[attr-defined]
            switch_prob=config.switch_prob,  # type: ignore[attr-defined]
            label_smoothing=config.label_smoothing,  # type: ignore[attr-defined]
            seed=seed,
        )

    def _draw(self, height: int, width: int) -> tuple[float, tuple[int, int, int, int] | None]:
        """(lam, cutmix box (y0, y1, x0, x1) or None) for one batch."""
        enabled = self.mixup_alpha > 0 or self.cutmix_alpha > 0
        if not enabled or self.rng.random() >= self.prob:
            return 1.0, None
        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            use_cutmix = self.rng.random() < self.switch_prob
        else:
            use_cutmix = self.cutmix_alpha > 0
        if not use_cutmix:
            return float(self.rng.beta(self.mixup_alpha, self.mixup_alpha)), None
        lam = float(self.rng.beta(self.cutmix_alpha, self.cutmix_alpha))
        ratio = math.sqrt(1.0 - lam)
        cut_h, cut_w = int(height * ratio), int(width * ratio)
        cy, cx = int(self.rng.integers(0, height)), int(self.rng.integers(0, width))
        y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
        x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
        return 1.0 - (y1 - y0) * (x1 - x0) / (height * width), (y0, y1, x0, x1)

    def __call__(self, clip: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Float clips (B, 3, T, H, W) and labels (B,) → mixed clips (in place) and targets (B, C)."""
        if not clip.is_floating_point():
            raise TypeError("mix normalised float clips (normalize_clip first), not uint8")
        lam, box = self._draw(clip.shape[-2], clip.shape[-1])
        if lam < 1.0:
            if box is not None:
                y0, y1, x0, x1 = box
                clip[..., y0:y1, x0:x1] = clip.flip(0)[..., y0:y1, x0:x1]
            else:
                partner = clip.flip(0)  # a copy, taken before clip changes in place
                clip.mul_(lam).add_(partner, alpha=1.0 - lam)
        one_hot = smooth_one_hot(labels, self.num_classes, self.label_smoothing)
        targets = one_hot * lam + one_hot.flip(0) * (1.0 - lam)
        return clip, targets


# -- random erasing (per sample) ----------------------------------------------------------------
def random_erase(
    frames: np.ndarray,
    rng: np.random.Generator,
    prob: float = 0.25,
    area: tuple[float, float] = (0.02, 1 / 3),
    aspect: tuple[float, float] = (0.3, 1 / 0.3),
    attempts: int = 10,
) -> np.ndarray:
    """With ``prob``, fill one box (same on every frame) with uint8 that normalises to N(0, 1); in place."""
    if rng.random() >= prob:
        return frames
    count, height, width = frames.shape[:3]
    log_low, log_high = math.log(aspect[0]), math.log(aspect[1])
    for _ in range(attempts):
        target = rng.uniform(area[0], area[1]) * height * width
        ratio = math.exp(rng.uniform(log_low, log_high))
        h, w = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if 0 < h < height and 0 < w < width:
            top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
            noise = rng.standard_normal((count, h, w, 3), dtype=np.float32)
            values = (
                np.asarray(IMAGENET_MEAN, np.float32) + noise * np.asarray(IMAGENET_STD, np.float32)
            ) * 255
            frames[:, top : top + h, left : left + w] = np.clip(np.rint(values), 0, 255).astype(np.uint8)
            break
    return frames


# -- RandAugment ops on uint8 (T, H, W, 3) clips ------------------------------------------------
def _lut(frames: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Apply a 256-entry table (same for every channel) to the clip."""
    return cv2.LUT(frames.reshape(-1, frames.shape[-2], 3), lut.astype(np.uint8)).reshape(frames.shape)


def _per_frame_lut(frames: np.ndarray, luts: np.ndarray) -> np.ndarray:
    """Apply per-frame, per-channel tables ``luts`` (T, 3, 256)."""
    out = np.empty_like(frames)
    for t in range(len(frames)):
        cv2.LUT(frames[t], np.ascontiguousarray(luts[t].T.reshape(256, 1, 3)).astype(np.uint8), dst=out[t])
    return out


def _channel_extremes(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame, per-channel minimum and maximum, (T, 3) each (OpenCV: ~100x numpy's strided reduce)."""
    low = np.empty((len(frames), 3))
    high = np.empty((len(frames), 3))
    for t, frame in enumerate(frames):
        for c, plane in enumerate(cv2.split(frame)):
            low[t, c], high[t, c] = cv2.minMaxLoc(plane)[:2]
    return low, high


def auto_contrast(frames: np.ndarray) -> np.ndarray:
    """Stretch each frame's channels to [0, 255] (PIL ImageOps.autocontrast, no cutoff)."""
    low, high = _channel_extremes(frames)
    scale = np.where(high > low, 255.0 / np.maximum(high - low, 1), 1.0)
    offset = np.where(high > low, -low * scale, 0.0)
    levels = np.arange(256, dtype=np.float64)
    luts = np.clip(np.floor(levels[None, None, :] * scale[..., None] + offset[..., None]), 0, 255)
    return _per_frame_lut(frames, luts)


def equalize(frames: np.ndarray) -> np.ndarray:
    """Histogram-equalise each frame's channels (PIL ImageOps.equalize)."""
    count = len(frames)
    luts = np.empty((count, 3, 256))
    levels = np.arange(256)
    for t in range(count):
        for c in range(3):
            hist = cv2.calcHist([frames[t]], [c], None, [256], [0, 256]).ravel().astype(np.int64)
            used = np.nonzero(hist)[0]
            step = (hist.sum() - hist[used[-1]]) // 255 if len(used) > 1 else 0
            if step == 0:
                luts[t, c] = levels
            else:
                before = np.concatenate([[0], np.cumsum(hist)[:-1]])
                luts[t, c] = np.minimum((step // 2 + before) // step, 255)
    return _per_frame_lut(frames, luts)


def invert(frames: np.ndarray) -> np.ndarray:
    return 255 - frames


def posterize(frames: np.ndarray, bits: int) -> np.ndarray:
    """Keep the ``bits`` most significant bits of every value (8 or more: unchanged)."""
    if bits >= 8:
        return frames
    return frames & np.uint8((0xFF << (8 - max(bits, 0))) & 0xFF)


def solarize(frames: np.ndarray, threshold: int) -> np.ndarray:
    """Invert values at or above ``threshold``."""
    levels = np.arange(256)
    return _lut(frames, np.where(levels < threshold, levels, 255 - levels))


def solarize_add(frames: np.ndarray, add: int, threshold: int = 128) -> np.ndarray:
    """Add ``add`` (saturating) to values below ``threshold``."""
    levels = np.arange(256)
    return _lut(frames, np.where(levels < threshold, np.minimum(levels + add, 255), levels))


def _flat(frames: np.ndarray) -> np.ndarray:
    """The clip as one 2-D image (T*H, W*3) for OpenCV calls that treat every value alike."""
    return frames.reshape(-1, frames.shape[2] * 3)


def _blend(
    frame: np.ndarray, degenerate: np.ndarray | None, factor: float, constant: float = 0.0
) -> np.ndarray:
    """``degenerate + factor * (frame - degenerate)`` in uint8 (PIL's blend within one level)."""
    if degenerate is None:
        return cv2.addWeighted(frame, factor, frame, 0.0, constant * (1.0 - factor))
    return cv2.addWeighted(frame, factor, degenerate, 1.0 - factor, 0.0)


def color(frames: np.ndarray, factor: float) -> np.ndarray:
    """Saturation: blend with the grey version (0 = grey, 1 = unchanged); grey = ITU-R 601-2 luma."""
    out = np.empty_like(frames)
    for t, frame in enumerate(frames):
        grey = cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        out[t] = _blend(frame, grey, factor)
    return out


def contrast(frames: np.ndarray, factor: float) -> np.ndarray:
    """Contrast: blend with each frame's mean grey level (rounded, as PIL)."""
    out = np.empty_like(frames)
    for t, frame in enumerate(frames):
        mean = float(np.floor(cv2.mean(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))[0] + 0.5))
        out[t] = _blend(frame, None, factor, mean)
    return out


def brightness(frames: np.ndarray, factor: float) -> np.ndarray:
    """Brightness: blend with black."""
    return _blend(_flat(frames), None, factor).reshape(frames.shape)


_SMOOTH = np.asarray([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float32) / 13.0


def sharpness(frames: np.ndarray, factor: float) -> np.ndarray:
    """Sharpness: blend with a smoothed copy (PIL's SMOOTH kernel; borders stay unsmoothed)."""
    out = np.empty_like(frames)
    for t, frame in enumerate(frames):
        smooth = frame.copy()
        smooth[1:-1, 1:-1] = cv2.filter2D(frame, -1, _SMOOTH)[1:-1, 1:-1]
        out[t] = _blend(frame, smooth, factor)
    return out


def affine(frames: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Warp frames by the inverse ``matrix`` (out -> in), grey 128 fill; bilinear (bicubic costs 3x)."""
    height, width = frames.shape[1:3]
    out = np.empty_like(frames)
    for t in range(len(frames)):
        cv2.warpAffine(
            frames[t],
            matrix,
            (width, height),
            dst=out[t],
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=FILL,
        )
    return out


def _pil_affine(frames: np.ndarray, a: float, b: float, c: float, d: float, e: float, f: float) -> np.ndarray:
    """PIL's ``Image.transform(AFFINE, ...)``, rewritten from PIL's pixel centres at ``i + 0.5`` to ``i``."""
    matrix = np.asarray([[a, b, c + (a + b - 1) / 2], [d, e, f + (d + e - 1) / 2]], np.float64)
    return affine(frames, matrix)


def rotate(frames: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate counter-clockwise (as seen on screen) about the frame centre."""
    height, width = frames.shape[1:3]
    forward = cv2.getRotationMatrix2D(((width - 1) / 2.0, (height - 1) / 2.0), degrees, 1.0)
    return affine(frames, cv2.invertAffineTransform(forward))


def shear_x(frames: np.ndarray, factor: float) -> np.ndarray:
    """Output (x, y) takes input (x + factor * y, y) (PIL coordinates)."""
    return _pil_affine(frames, 1, factor, 0, 0, 1, 0)


def shear_y(frames: np.ndarray, factor: float) -> np.ndarray:
    return _pil_affine(frames, 1, 0, 0, factor, 1, 0)


def translate_x(frames: np.ndarray, fraction: float) -> np.ndarray:
    """Output (x, y) takes input (x + fraction * width, y): content moves left for fraction > 0."""
    return _pil_affine(frames, 1, 0, fraction * frames.shape[2], 0, 1, 0)


def translate_y(frames: np.ndarray, fraction: float) -> np.ndarray:
    return _pil_affine(frames, 1, 0, 0, 0, 1, fraction * frames.shape[1])


# Level (magnitude in [0, 10]) → op argument, as timm's level-to-arg functions. ``sign`` is a
# random ±1 for the ops whose direction is random.
def _signed(scale: float) -> Callable[[float, float], tuple[float]]:
    return lambda level, sign: (sign * level / MAX_LEVEL * scale,)


def _enhance_increasing(level: float, sign: float) -> tuple[float]:
    return (1.0 + sign * level / MAX_LEVEL * 0.9,)


def _enhance(level: float, sign: float) -> tuple[float]:
    return (level / MAX_LEVEL * 1.8 + 0.1,)


_OPS: dict[str, tuple[Callable[..., np.ndarray], Callable[[float, float], tuple] | None]] = {
    "AutoContrast": (auto_contrast, None),
    "Equalize": (equalize, None),
    "Invert": (invert, None),
    "Rotate": (rotate, _signed(30.0)),
    "Posterize": (posterize, lambda level, sign: (int(level / MAX_LEVEL * 4),)),
    "PosterizeIncreasing": (posterize, lambda level, sign: (4 - int(level / MAX_LEVEL * 4),)),
    "Solarize": (solarize, lambda level, sign: (int(level / MAX_LEVEL * 256),)),
    "SolarizeIncreasing": (solarize, lambda level, sign: (256 - int(level / MAX_LEVEL * 256),)),
    "SolarizeAdd": (solarize_add, lambda level, sign: (int(level / MAX_LEVEL * 110),)),
    "Color": (color, _enhance),
    "ColorIncreasing": (color, _enhance_increasing),
    "Contrast": (contrast, _enhance),
    "ContrastIncreasing": (contrast, _enhance_increasing),
    "Brightness": (brightness, _enhance),
    "BrightnessIncreasing": (brightness, _enhance_increasing),
    "Sharpness": (sharpness, _enhance),
    "SharpnessIncreasing": (sharpness, _enhance_increasing),
    "ShearX": (shear_x, _signed(0.3)),
    "ShearY": (shear_y, _signed(0.3)),
    "TranslateXRel": (translate_x, _signed(0.45)),
    "TranslateYRel": (translate_y, _signed(0.45)),
}
_COMMON = ["AutoContrast", "Equalize", "Invert", "Rotate"]
_GEOMETRIC = ["ShearX", "ShearY", "TranslateXRel", "TranslateYRel"]
STANDARD_OPS = [
    *_COMMON,
    "Posterize",
    "Solarize",
    "SolarizeAdd",
    "Color",
    "Contrast",
    "Brightness",
    "Sharpness",
]
STANDARD_OPS += _GEOMETRIC
INCREASING_OPS = [*_COMMON, "PosterizeIncreasing", "SolarizeIncreasing", "SolarizeAdd", "ColorIncreasing"]
INCREASING_OPS += ["ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing", *_GEOMETRIC]


@dataclass(frozen=True)
class RandAugment:
    """timm's RandAugment on whole clips: ``num_ops`` ops, each with ``prob`` at magnitude ~ N(m, std)."""

    num_ops: int = 2
    magnitude: float = 10.0
    magnitude_std: float = 0.0
    increasing: bool = False
    prob: float = 0.5

    @classmethod
    def from_string(cls, spec: str) -> RandAugment:
        """Parse timm's config string, e.g. ``rand-m7-n4-mstd0.5-inc1``."""
        parts = spec.split("-")
        if parts[0] != "rand":
            raise ConfigError(f"RandAugment string must start with 'rand', got {spec!r}")
        fields: dict[str, float | bool] = {}
        for part in parts[1:]:
            match = re.fullmatch(r"(mstd|inc|m|n)(\d+(?:\.\d+)?)", part)
            if match is None:
                raise ConfigError(
                    f"RandAugment string {spec!r}: unknown part {part!r} (known: m, n, mstd, inc)"
                )
            key, value = match.groups()
            if key == "m":
                fields["magnitude"] = float(value)
            elif key == "n":
                fields["num_ops"] = int(float(value))
            elif key == "mstd":
                fields["magnitude_std"] = float(value)
            else:
                fields["increasing"] = bool(int(float(value)))
        return cls(**fields)  # type: ignore[arg-type]

    @property
    def ops(self) -> list[str]:
        return INCREASING_OPS if self.increasing else STANDARD_OPS

    def draw(self, rng: np.random.Generator) -> list[tuple[str, tuple]]:
        """The ops and arguments for one clip (the random part, separate so tests can see it)."""
        chosen = []
        for index in rng.integers(0, len(self.ops), self.num_ops):
            name = self.ops[int(index)]
            if rng.random() > self.prob:
                continue
            level = self.magnitude
            if self.magnitude_std > 0:
                level = rng.normal(level, self.magnitude_std)
            level = min(MAX_LEVEL, max(0.0, level))
            sign = -1.0 if rng.random() > 0.5 else 1.0
            level_fn = _OPS[name][1]
            chosen.append((name, level_fn(level, sign) if level_fn is not None else ()))
        return chosen

    def __call__(self, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Augment a uint8 (T, H, W, 3) clip; every frame gets the same ops and arguments."""
        for name, args in self.draw(rng):
            frames = _OPS[name][0](frames, *args)
        return frames
