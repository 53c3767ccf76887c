"""A synthetic video dataset whose classes are defined by motion alone.

Every video shows textured objects over a random textured background. One or two *primary*
objects perform the class's motion (translation in one of four directions, rotation clockwise or
counter-clockwise, expansion or contraction, horizontal or vertical oscillation); one to three
*distractors* wander with small irregular motion. Colours, shapes, textures, sizes, positions,
speeds and the number of objects are random, and their distribution does not depend on the
class: a scene's appearance is drawn from a random stream seeded by (seed, video index) only,
and every motion is parametrised around the clip's middle frame, where all classes show the same
pose. So for one scene, the middle frame is identical whatever the class (tested), and no single
frame tells the class: a model must look at motion.

Videos are real H.264 files (yuv420p, through PyAV), written atomically, in parallel processes;
each video's random streams derive from (seed, video index), so the dataset is identical for a
seed whatever the number of processes. ``generate_dataset`` writes::

    OUT/videos/<class>/<class>_<n>.mp4
    OUT/train.csv, val.csv, test.csv   our list format (path,label), paths relative to OUT
    OUT/classes.json                   class names, by label
    OUT/dataset.json                   parameters, classes and split sizes
    OUT/synth.log, synth.jsonl         the run log

Rerunning with the same parameters keeps the videos already written (it is resumable).
"""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from mme.errors import ConfigError, DataError
from mme.utils.atomic import atomic_write_json
from mme.utils.logging import Progress, RunLog

# 2: encoded without x264's MB-tree rate control (see _write_one)
FORMAT = "mme-synthetic-2"

# name -> (kind, parameter): the class catalogue; ``--classes N`` takes the first N.
MOTIONS: dict[str, tuple[str, tuple[float, float]]] = {
    "move_right": ("translate", (1.0, 0.0)),
    "move_left": ("translate", (-1.0, 0.0)),
    "move_up": ("translate", (0.0, -1.0)),
    "move_down": ("translate", (0.0, 1.0)),
    "rotate_clockwise": ("rotate", (1.0, 0.0)),
    "rotate_counterclockwise": ("rotate", (-1.0, 0.0)),
    "expand": ("scale", (1.0, 0.0)),
    "contract": ("scale", (-1.0, 0.0)),
    "oscillate_horizontal": ("oscillate", (1.0, 0.0)),
    "oscillate_vertical": ("oscillate", (0.0, 1.0)),
}
SHAPES = ("rectangle", "ellipse", "triangle", "cross", "star")
REFERENCE_WIDTH = 160.0  # speeds and amplitudes below are in pixels of a 160-px-wide video


@dataclass
class SynthConfig:
    """Parameters of a synthetic dataset (all recorded in dataset.json)."""

    classes: int = 8
    videos_per_class: int = 32
    seed: int = 0
    frames: int = 64
    width: int = 160
    height: int = 120
    fps: float = 25.0
    crf: int = 20
    gop: int = 16
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 2 <= self.classes <= len(MOTIONS):
            raise ConfigError(f"classes must be in [2, {len(MOTIONS)}], got {self.classes}")
        if self.videos_per_class < 3:
            raise ConfigError(f"videos_per_class must be >= 3 (train/val/test), got {self.videos_per_class}")
        if self.frames < 8:
            raise ConfigError(f"frames must be >= 8, got {self.frames}")
        if self.width % 2 or self.height % 2 or min(self.width, self.height) < 32:
            raise ConfigError(f"size must be even and at least 32x32, got {self.width}x{self.height}")
        if not (
            0 < self.val_fraction < 1
            and 0 < self.test_fraction < 1
            and self.val_fraction + self.test_fraction < 1
        ):
            raise ConfigError(
                "val/test fractions must be in (0, 1) with a sum < 1, "
                f"got {self.val_fraction}, {self.test_fraction}"
            )
        self.class_names = list(MOTIONS)[: self.classes]


# -- scenes -------------------------------------------------------------------------------------
@dataclass
class SceneObject:
    """One object: its sprite (RGB + alpha), its pose at the middle frame, and its motion law."""

    sprite: np.ndarray  # uint8 (S, S, 3)
    alpha: np.ndarray  # float32 (S, S) in [0, 1]
    centre: tuple[float, float]  # (x, y) at the middle frame
    size: float  # displayed side length in pixels at the middle frame
    angle: float  # degrees at the middle frame
    motion: str  # "translate" | "rotate" | "scale" | "oscillate" | "wander"
    params: dict[str, float]


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Low-frequency colour field plus mid-frequency grey texture (so flow has something to see)."""
    base = rng.uniform(60, 200, 3).astype(np.float32)
    coarse = rng.uniform(-40, 40, (max(height // 24, 2), max(width // 24, 2), 3)).astype(np.float32)
    colour = base + cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    detail = rng.normal(0, 1, (max(height // 4, 2), max(width // 4, 2))).astype(np.float32)
    texture = cv2.resize(detail, (width, height), interpolation=cv2.INTER_CUBIC)
    amplitude = rng.uniform(10, 30)
    return np.clip(colour + amplitude * texture[..., None], 0, 255).astype(np.float32)


def _sprite(rng: np.random.Generator, side: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A shape with a striped two-colour texture (stripes make rotation visible)."""
    shape = SHAPES[rng.integers(len(SHAPES))]
    mask = np.zeros((side, side), np.uint8)
    c, r = side / 2.0, side * 0.46
    if shape == "rectangle":
        aspect = rng.uniform(0.5, 1.0)
        cv2.rectangle(mask, (int(c - r), int(c - r * aspect)), (int(c + r), int(c + r * aspect)), 255, -1)
    elif shape == "ellipse":
        cv2.ellipse(mask, (int(c), int(c)), (int(r), int(r * rng.uniform(0.45, 0.8))), 0, 0, 360, 255, -1)
    elif shape == "triangle":
        angles = np.deg2rad([-90, 30, 150])
        points = np.stack([c + r * np.cos(angles), c + r * np.sin(angles)], axis=1)
        cv2.fillPoly(mask, [points.astype(np.int32)], 255)
    elif shape == "cross":
        w = int(r * 0.4)
        cv2.rectangle(mask, (int(c - r), int(c - w)), (int(c + r), int(c + w)), 255, -1)
        cv2.rectangle(mask, (int(c - w), int(c - r)), (int(c + w), int(c + r)), 255, -1)
    else:  # star
        angles = np.deg2rad(np.arange(10) * 36 - 90)
        radii = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        points = np.stack([c + radii * np.cos(angles), c + radii * np.sin(angles)], axis=1)
        cv2.fillPoly(mask, [points.astype(np.int32)], 255)
    first, second = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    theta = rng.uniform(0, math.pi)
    period = rng.uniform(side / 8, side / 3)
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float32)
    stripes = (np.sin(2 * math.pi * (xs * math.cos(theta) + ys * math.sin(theta)) / period) > 0)[..., None]
    sprite = np.where(stripes, first, second).astype(np.uint8)
    alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (3, 3), 0)
    return sprite, alpha


def sample_scene(config: SynthConfig, video_index: int) -> list[SceneObject]:
    """The class-independent part of a video: objects, their looks and middle-frame poses.

    Primary objects get motion "primary" (filled in by :func:`render_video` from the class);
    distractors get a random wandering motion. Drawn from streams seeded by (seed, index) only.
    """
    rng = np.random.default_rng([config.seed, video_index, 0])
    unit = config.width / REFERENCE_WIDTH
    short = min(config.width, config.height)
    primaries, distractors = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    objects = []
    for number in range(primaries + distractors):
        sprite, alpha = _sprite(rng)
        primary = number < primaries
        size = rng.uniform(0.2, 0.34) * short if primary else rng.uniform(0.12, 0.26) * short
        centre = (
            rng.uniform(0.3, 0.7) * config.width if primary else rng.uniform(0.1, 0.9) * config.width,
            rng.uniform(0.3, 0.7) * config.height if primary else rng.uniform(0.1, 0.9) * config.height,
        )
        params = {
            # Used by every class kind, so the scene does not depend on which one applies.
            "speed": rng.uniform(0.6, 1.4) * unit,  # px / frame (translation)
            "spin": rng.uniform(2.5, 5.0),  # degrees / frame (rotation)
            "growth": rng.uniform(0.012, 0.022),  # log-size / frame (expansion)
            "amplitude": rng.uniform(10.0, 18.0) * unit,  # px (oscillation)
            "period": rng.uniform(16.0, 32.0),  # frames (oscillation)
            "phase": rng.uniform(0, 2 * math.pi),
        }
        if not primary:
            for axis in ("x", "y"):
                for harmonic in (1, 2):
                    params[f"{axis}{harmonic}_amp"] = rng.uniform(0.5, 2.5) * unit
                    params[f"{axis}{harmonic}_freq"] = rng.uniform(0.05, 0.25) * harmonic
                    params[f"{axis}{harmonic}_phase"] = rng.uniform(0, 2 * math.pi)
            params["spin_jitter"] = rng.uniform(-0.5, 0.5)
        objects.append(
            SceneObject(
                sprite,
                alpha,
                centre,
                float(size),
                float(rng.uniform(0, 360)),
                "primary" if primary else "wander",
                params,
            )
        )
    order = rng.permutation(len(objects))  # depth order, also class independent
    return [objects[i] for i in order]


def _pose(
    obj: SceneObject, kind: str, direction: tuple[float, float], t: float
) -> tuple[float, float, float, float]:
    """(x, y, size, angle) of ``obj`` at time ``t`` frames from the middle frame."""
    x, y = obj.centre
    size, angle = obj.size, obj.angle
    p = obj.params
    if obj.motion == "wander":
        for harmonic in (1, 2):
            for axis in ("x", "y"):
                amp, freq, phase = (p[f"{axis}{harmonic}_{key}"] for key in ("amp", "freq", "phase"))
                offset = amp * (math.sin(freq * t + phase) - math.sin(phase))
                x, y = (x + offset, y) if axis == "x" else (x, y + offset)
        return x, y, size, angle + p["spin_jitter"] * t
    dx, dy = direction
    if kind == "translate":
        return x + dx * p["speed"] * t, y + dy * p["speed"] * t, size, angle
    if kind == "rotate":
        # Image coordinates have y pointing down: a growing angle turns clockwise on screen.
        return x, y, size, angle + dx * p["spin"] * t
    if kind == "scale":
        return x, y, size * math.exp(dx * p["growth"] * t), angle
    if kind == "oscillate":
        offset = p["amplitude"] * math.sin(2 * math.pi * t / p["period"])
        return x + dx * offset, y + dy * offset, size, angle
    raise ValueError(f"unknown motion kind {kind!r}")


def render_video(config: SynthConfig, video_index: int, label: int) -> np.ndarray:
    """Frames uint8 (F, H, W, 3) of video ``video_index`` showing class ``label``'s motion."""
    kind, direction = MOTIONS[config.class_names[label]]
    objects = sample_scene(config, video_index)
    background = _background(
        np.random.default_rng([config.seed, video_index, 1]), config.width, config.height
    )
    noise_rng = np.random.default_rng([config.seed, video_index, 2])
    middle = config.frames // 2  # a whole frame: there every class shows the same pose
    frames = np.empty((config.frames, config.height, config.width, 3), np.uint8)
    for f in range(config.frames):
        canvas = background.copy()
        for obj in objects:
            x, y, side, angle = _pose(obj, kind, direction, f - middle)
            _paste(canvas, obj, x, y, side, angle)
        # Sensor noise, uniform in [-3, 3] (std 2); drawn from raw bytes, which is several times faster.
        noise = np.frombuffer(noise_rng.bytes(canvas.size), np.uint8).reshape(canvas.shape) % 7
        canvas += noise.astype(np.float32) - 3.0
        frames[f] = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
    return frames


def _paste(canvas: np.ndarray, obj: SceneObject, x: float, y: float, side: float, angle: float) -> None:
    """Alpha-blend ``obj``'s sprite, rotated by ``angle`` and scaled to ``side``, centred at (x, y).

    Only the sprite's bounding box is warped and blended (most of the canvas is untouched).
    """
    source = obj.sprite.shape[0]
    half = side * math.sqrt(0.5) + 2  # the rotated square's half extent, plus the filter margin
    height, width = canvas.shape[:2]
    left, top = max(math.floor(x - half), 0), max(math.floor(y - half), 0)
    right, bottom = min(math.ceil(x + half), width), min(math.ceil(y + half), height)
    if right <= left or bottom <= top:
        return
    # Rotate and scale about the sprite centre, then move that centre to (x, y) in box coordinates.
    matrix = cv2.getRotationMatrix2D((source / 2.0, source / 2.0), -angle, side / source)
    matrix[:, 2] += (x - source / 2.0 - left, y - source / 2.0 - top)
    box = (right - left, bottom - top)
    rgb = cv2.warpAffine(obj.sprite, matrix, box, flags=cv2.INTER_LINEAR).astype(np.float32)
    alpha = cv2.warpAffine(obj.alpha, matrix, box, flags=cv2.INTER_LINEAR)[..., None]
    region = canvas[top:bottom, left:right]
    region += alpha * (rgb - region)


# -- the dataset ----------------------------------------------------------------------------------
def video_label(config: SynthConfig, video_index: int) -> int:
    return video_index % config.classes


def video_relpath(config: SynthConfig, video_index: int) -> str:
    name = config.class_names[video_label(config, video_index)]
    return f"videos/{name}/{name}_{video_index // config.classes:04d}.mp4"


def split_of(config: SynthConfig, video_index: int) -> str:
    """train / val / test by the video's number within its class (every split has every class)."""
    number = video_index // config.classes
    n_val = max(1, round(config.val_fraction * config.videos_per_class))
    n_test = max(1, round(config.test_fraction * config.videos_per_class))
    n_train = config.videos_per_class - n_val - n_test
    if n_train < 1:
        raise ConfigError(f"{config.videos_per_class} videos per class leave none for training")
    return "train" if number < n_train else ("val" if number < n_train + n_val else "test")


def _write_one(config_fields: dict[str, Any], out_dir: str, video_index: int) -> str:
    """Render and encode one video (runs in a worker process); returns its relative path."""
    from mme.io.video import write_video

    cv2.setNumThreads(1)
    config = SynthConfig(**{k: v for k, v in config_fields.items() if k != "class_names"})
    relative = video_relpath(config, video_index)
    frames = render_video(config, video_index, video_label(config, video_index))
    # One encoder thread: the process pool is the parallelism (more threads only contend).
    # MB-tree off: with it, x264 encoded ~2% of the default dataset's videos to different bytes
    # from one worker process to another (same frames, same settings; measured in pools of 1 and
    # 2 spawned workers, never within one process). Without it, 0 differences in 4 comparisons
    # of the 256 videos; the cost is a little compression efficiency, irrelevant here.
    write_video(
        Path(out_dir) / relative,
        frames,
        fps=config.fps,
        crf=config.crf,
        gop=config.gop,
        options={"threads": "1", "x264-params": "mbtree=0"},
    )
    return relative


def _parameters(config: SynthConfig) -> dict[str, Any]:
    fields = asdict(config)
    fields.pop("class_names")
    return fields


def generate_dataset(
    config: SynthConfig, out_dir: str | os.PathLike[str], workers: int = 0
) -> dict[str, Any]:
    """Write the dataset to ``out_dir`` (see module docstring); returns the dataset.json content.

    ``workers`` processes encode videos in parallel (0: one per CPU core). Videos that already
    exist from an earlier run with the same parameters are kept; a folder holding a dataset made
    with other parameters is an error (choose another folder or delete it).
    """
    from mme.io.lists import write_list

    out = Path(out_dir)
    description_path = out / "dataset.json"
    parameters = _parameters(config)
    if description_path.exists():
        try:
            previous = json.loads(description_path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise DataError(f"cannot read {description_path}: {error}") from error
        if previous.get("format") != FORMAT or previous.get("parameters") != parameters:
            raise DataError(
                f"{out} holds a synthetic dataset made with other parameters or by another version "
                f"(format {previous.get('format')!r}, parameters {previous.get('parameters')}; this "
                f"version writes format {FORMAT!r}); use another --out or delete it"
            )
    description: dict[str, Any] = {
        "format": FORMAT,
        "description": "classes are defined by the motion of the primary objects; "
        "appearance is class-independent",
        "classes": config.class_names,
        "parameters": parameters,
        "complete": False,
    }
    atomic_write_json(description_path, description)
    total = config.classes * config.videos_per_class
    todo = [i for i in range(total) if not (out / video_relpath(config, i)).is_file()]
    workers = workers or (os.cpu_count() or 1)
    with RunLog(out, name="synth") as log:
        log.event(
            "start",
            human=f"synth: {total} videos ({config.classes} classes x {config.videos_per_class}), "
            f"{config.frames} frames {config.width}x{config.height}, {len(todo)} to write, {workers} workers",
            total=total,
            todo=len(todo),
            **parameters,
        )
        with Progress(len(todo), "synth", unit="video", logger=log, every_s=10.0) as bar:
            if workers == 1 or len(todo) <= 1:
                for index in todo:
                    _write_one(parameters, str(out), index)
                    bar.update()
            else:
                with ProcessPoolExecutor(min(workers, len(todo)), mp_context=get_context("spawn")) as pool:
                    for _ in pool.map(
                        _write_one, [parameters] * len(todo), [str(out)] * len(todo), todo, chunksize=4
                    ):
                        bar.update()
        splits: dict[str, list[tuple[str, int]]] = {"train": [], "val": [], "test": []}
        for index in range(total):
            splits[split_of(config, index)].append((video_relpath(config, index), video_label(config, index)))
        for split, entries in splits.items():
            write_list(out / f"{split}.csv", entries)
        atomic_write_json(out / "classes.json", config.class_names)
        description.update(complete=True, videos=total, splits={k: len(v) for k, v in splits.items()})
        atomic_write_json(description_path, description)
        log.event("done", human=f"synth: wrote {out} ({description['splits']})", splits=description["splits"])
    return description
