"""A synthetic video dataset whose classes are defined by motion alone.

Every video shows a textured plane filling the frame, moved by its class's motion: translation
in one of four directions, rotation clockwise or counter-clockwise, expansion or contraction, an
area-preserving stretch (wider or taller) or a shear (top to the right or to the left). The last
eight differ by how points move *inside* a 16-pixel patch, which is what MME's patch-normalised
trajectory target keeps. Appearance is built so that a hidden patch is predictable from the
visible ones: one dominant grating orientation per clip (every patch has the same HOG), a
colour gradient across the plane (red and blue, standardised per patch, are mostly that ramp)
and the texture mostly in green, the channel the flow sees. Colours, texture, the motion's fixed
point and rates are random and their distribution does not depend on the class: a scene is drawn
from a random stream seeded by (seed, video index) only, and every motion is parametrised around
the clip's middle frame, where all classes show the plane unmoved. So for one scene the middle
frame is identical whatever the class (tested), and no single frame tells the class: a model
must look at motion. Design and measurements: docs/data.md.

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
from mme.utils.jsonfile import read_json
from mme.utils.logging import Progress, RunLog

# 2: encoded without x264's MB-tree rate control (see _write_one)
# 3: one textured object over a smooth background; stretch and shear classes
# 4: a full-frame textured plane under one global motion (docs/data.md)
FORMAT = "mme-synthetic-4"

# name -> (kind, sign): the class catalogue; ``--classes N`` takes the first N. The first eight keep
# the names of the earlier formats; the last four differ only by how points move *inside* a patch.
MOTIONS: dict[str, tuple[str, float]] = {
    "move_right": ("translate_x", 1.0),
    "move_left": ("translate_x", -1.0),
    "move_up": ("translate_y", -1.0),
    "move_down": ("translate_y", 1.0),
    "rotate_clockwise": ("rotate", 1.0),
    "rotate_counterclockwise": ("rotate", -1.0),
    "expand": ("scale", 1.0),
    "contract": ("scale", -1.0),
    "stretch_horizontal": ("stretch", 1.0),
    "stretch_vertical": ("stretch", -1.0),
    "shear_right": ("shear", 1.0),
    "shear_left": ("shear", -1.0),
}


@dataclass(frozen=True)
class Ranges:
    """The scene's random draws (uniform in each range). Lengths are fractions of the video's short
    side, so a scene looks the same at any size; rates are per frame. At the demo's geometry (short
    side 72 px seen at 64 px) one short side is 57-86 network-input pixels (docs/data.md)."""

    texture_period: tuple[float, float] = (0.14, 0.20)  # both gratings' period
    texture_contrast: tuple[float, float] = (35.0, 50.0)  # grey levels, the dominant grating (green)
    second_contrast: tuple[float, float] = (15.0, 25.0)  # grey levels, the weaker grating (green)
    texture_share: float = 0.05  # the gratings' amplitude in red and blue, relative to green
    swing: tuple[float, float] = (100.0, 140.0)  # grey levels per channel across the plane's width
    speed: tuple[float, float] = (0.03, 0.045)  # translation, short sides / frame
    spin: tuple[float, float] = (0.06, 0.09)  # rotation, rad / frame
    growth: tuple[float, float] = (0.05, 0.07)  # log-size / frame (scale, stretch)
    shear: tuple[float, float] = (0.07, 0.1)  # shear / frame


RANGES = Ranges()
NOISE = 2  # sensor noise: integers uniform in [-2, 2] grey levels


@dataclass
class SynthConfig:
    """Parameters of a synthetic dataset (all recorded in dataset.json)."""

    classes: int = 8
    videos_per_class: int = 32
    seed: int = 0
    frames: int = 24
    width: int = 96
    height: int = 72
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
Wave = tuple[float, float, np.ndarray, float]  # a sinusoid: angle, period (px), RGB amplitude, phase


@dataclass
class Scene:
    """The class-independent part of a video: a textured plane, its motion's centre and rates.
    Colours are RGB vectors in grey levels."""

    colour: np.ndarray  # the plane's colour at its centre
    swing: np.ndarray  # colour change across the plane's width (per channel), along gradient_angle
    gradient_angle: float
    gratings: list[Wave]  # the texture: a dominant grating and a weaker one
    centre: tuple[float, float]  # the fixed point of rotation and scaling (px)
    rates: dict[str, float]  # speed (px / frame), spin, growth, shear (per frame)


def _signed(rng: np.random.Generator, low: float, high: float) -> np.ndarray:
    """Three per-channel amplitudes of random sign and size in [low, high] (no channel is flat)."""
    return rng.uniform(low, high, 3) * rng.choice([-1.0, 1.0], 3)


def sample_scene(config: SynthConfig, video_index: int) -> Scene:
    """The scene of video ``video_index``, drawn from a stream seeded by (seed, index) only."""
    rng = np.random.default_rng([config.seed, video_index, 0])
    short = min(config.width, config.height)
    r = RANGES

    def texture(amplitude: tuple[float, float], angle: float) -> Wave:
        # Mostly in green (the luminance's main channel, what the flow sees); red and blue keep
        # texture_share of it, so their per-patch standardised pixels are mostly the smooth ramp.
        period = rng.uniform(*r.texture_period) * short
        rgb = _signed(rng, *amplitude) * np.array([r.texture_share, 1.0, r.texture_share])
        return angle, period, rgb, rng.uniform(0, 2 * math.pi)

    # The texture's dominant orientation is the scene's: every patch of a clip has the same
    # gradient-orientation histogram (HOG), which its neighbours therefore predict.
    first = rng.uniform(0, math.pi)
    second = first + rng.uniform(math.pi / 3, 2 * math.pi / 3)  # a 2-D texture: flow defined everywhere
    return Scene(
        colour=rng.uniform(100, 155, 3),
        swing=_signed(rng, *r.swing),
        gradient_angle=rng.uniform(0, 2 * math.pi),
        gratings=[
            texture(r.texture_contrast, first),
            texture(r.second_contrast, second),
        ],
        centre=(rng.uniform(0.4, 0.6) * config.width, rng.uniform(0.4, 0.6) * config.height),
        rates={
            # Drawn for every scene, so the scene does not depend on which one its class uses.
            "speed": rng.uniform(*r.speed) * short,
            "spin": rng.uniform(*r.spin),
            "growth": rng.uniform(*r.growth),
            "shear": rng.uniform(*r.shear),
        },
    )


def pose(scene: Scene, kind: str, sign: float, t: float) -> tuple[np.ndarray, np.ndarray]:
    """(shift (2,), matrix (2, 2)) mapping plane to image coordinates at ``t`` frames from the
    middle frame, where every class shows the plane unmoved: image = centre + matrix @ (plane -
    centre) + shift. Image y points down, so a growing angle turns clockwise on screen."""
    rate = scene.rates
    shift = np.zeros(2)
    linear = np.eye(2)
    if kind == "translate_x":
        shift[0] = sign * rate["speed"] * t
    elif kind == "translate_y":
        shift[1] = sign * rate["speed"] * t
    elif kind == "rotate":
        w = sign * rate["spin"] * t
        linear = np.array([[math.cos(w), -math.sin(w)], [math.sin(w), math.cos(w)]])
    elif kind == "scale":
        linear = np.eye(2) * math.exp(sign * rate["growth"] * t)
    elif kind == "stretch":  # area-preserving: wider and flatter (sign +1) or taller and thinner
        e = math.exp(sign * rate["growth"] * t)
        linear = np.diag([e, 1.0 / e])
    elif kind == "shear":  # the top moves right and the bottom left (sign +1), or the reverse
        linear = np.array([[1.0, -sign * rate["shear"] * t], [0.0, 1.0]])
    else:
        raise ValueError(f"unknown motion kind {kind!r}")
    return shift, linear


def _wave(u: np.ndarray, v: np.ndarray, wave: Wave) -> np.ndarray:
    angle, period, amplitude, phase = wave
    along = u * math.cos(angle) + v * math.sin(angle)
    return np.sin(2 * math.pi * along / period + phase)[..., None] * amplitude


def render_frame(scene: Scene, width: int, height: int, shift: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The plane seen through (shift, matrix), float RGB (H, W, 3): evaluated at each pixel's
    plane coordinates, so any motion is exact (no resampling of an image)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    cx, cy = scene.centre
    inverse = np.linalg.inv(matrix)
    dx, dy = xs - cx - shift[0], ys - cy - shift[1]
    u = inverse[0, 0] * dx + inverse[0, 1] * dy + cx
    v = inverse[1, 0] * dx + inverse[1, 1] * dy + cy
    a = scene.gradient_angle
    ramp = ((u - cx) * math.cos(a) + (v - cy) * math.sin(a)) / width
    image = scene.colour + ramp[..., None] * scene.swing + sum(_wave(u, v, w) for w in scene.gratings)
    return image.astype(np.float32)


def render_video(config: SynthConfig, video_index: int, label: int) -> np.ndarray:
    """Frames uint8 (F, H, W, 3) of video ``video_index`` showing class ``label``'s motion."""
    kind, sign = MOTIONS[config.class_names[label]]
    scene = sample_scene(config, video_index)
    noise_rng = np.random.default_rng([config.seed, video_index, 2])
    middle = config.frames // 2  # a whole frame: there every class shows the same pose
    frames = np.empty((config.frames, config.height, config.width, 3), np.uint8)
    for f in range(config.frames):
        canvas = render_frame(scene, config.width, config.height, *pose(scene, kind, sign, f - middle))
        # Sensor noise, integers uniform in [-2, 2]; drawn from raw bytes, several times faster.
        noise = np.frombuffer(noise_rng.bytes(canvas.size), np.uint8).reshape(canvas.shape) % (2 * NOISE + 1)
        canvas += noise.astype(np.float32) - NOISE
        frames[f] = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
    return frames


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


def dataset_complete(config: SynthConfig, out_dir: Path) -> bool:
    """dataset.json says complete, with these parameters, and every listed video exists."""
    from mme.io.lists import read_list

    description = read_json(out_dir / "dataset.json")
    if not isinstance(description, dict) or description.get("complete") is not True:
        return False
    if description.get("format") != FORMAT or description.get("parameters") != _parameters(config):
        return False
    try:
        entries = [
            entry for split in ("train", "val", "test") for entry in read_list(out_dir / f"{split}.csv")
        ]
    except DataError:  # a missing or damaged list: regenerate (the generator resumes)
        return False
    return all(Path(entry.path).is_file() for entry in entries)
