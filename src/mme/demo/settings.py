"""What the demo compares (three starts of one tiny ViT), its dataset and its two presets: the full
preset is the recipes of configs/demo/ as they are; a preset adds only the ``--set`` lines that differ."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from mme.data.synthetic import SynthConfig

# Classes whose motion differs inside a 16x16 patch: the trajectory figure prefers them, a zoom
# first (docs/demo.md gives the model's loss on one clip of each kind, rotations included).
FIGURE_CLASSES = ("expand", "contract", "rotate_clockwise", "rotate_counterclockwise")


@dataclass(frozen=True)
class Method:
    """One way to initialise the encoder before fine-tuning."""

    key: str
    label: str
    predict: tuple[str, ...]  # pre-training targets; empty = no pre-training

    @property
    def pretrains(self) -> bool:
        return bool(self.predict)

    @property
    def needs_trajectories(self) -> bool:
        return any(name.startswith("traj") for name in self.predict)


METHODS: tuple[Method, ...] = (
    Method("mme", "MME (trajectories + HOG)", ("hog", "traj")),
    Method("pixel", "VideoMAE (pixels)", ("pixel",)),
    Method("none", "no pre-training", ()),
)


@dataclass
class DemoSettings:
    """The demo's own settings, stored in ``demo.json`` (a rerun must match them); the values of
    :func:`full_settings` were chosen by measurement (docs/demo.md)."""

    preset: str
    seed: int = 0
    synth: dict[str, Any] = field(default_factory=dict)  # mme synth's sizes and splits
    # ``--set`` lines on top of each command's recipe: {"pretrain": [...], "finetune": [...], ...}.
    overrides: dict[str, list[str]] = field(default_factory=dict)
    synth_workers: int = 0  # encoding processes of the dataset (0: one per core)
    floor_samples: int = 320  # training samples that measure each target's context-free floor

    def synth_config(self) -> SynthConfig:
        return SynthConfig(seed=self.seed, **self.synth)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def full_settings(seed: int = 0) -> DemoSettings:
    """The default demo: the recipes as they are, about ten minutes on 2 CPU cores."""
    synth = {"classes": 12, "videos_per_class": 64, "frames": 16, "width": 96, "height": 72}
    return DemoSettings("full", seed, {**synth, "val_fraction": 0.1, "test_fraction": 0.35})


def quick_settings(seed: int = 0) -> DemoSettings:
    """A smoke run of every stage (under two minutes): the numbers mean nothing at this size."""
    synth = {"classes": 4, "videos_per_class": 5, "frames": 16, "width": 64, "height": 48}
    every = ["data.cache_mb=64.0", "runtime.workers=0"]
    training = ["schedule.epochs=1", "schedule.warmup_epochs=0.0", "batch.per_gpu=4", "runtime.log_every=1"]
    views = ["data.test_clips=1", "data.test_crops=2"]
    overrides = {
        "pretrain": [*every, *training, "runtime.checkpoint_every_epochs=1"],
        "finetune": [*every, *training, *views],
        "probe": [*every, "probe.epochs=5", "batch.per_gpu=4"],
        "eval": [*every, *views, "batch.per_gpu=4"],
    }
    splits = {"val_fraction": 0.2, "test_fraction": 0.2}
    return DemoSettings("quick", seed, {**synth, **splits}, overrides, synth_workers=1, floor_samples=8)
