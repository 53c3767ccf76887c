"""What the demo runs: the dataset, the three pre-training methods and the job settings.

The demo compares three ways to start the same tiny ViT, with the same seed and budget:

- ``mme``: MME pre-training, heads ``hog`` + ``traj`` (the method);
- ``pixel``: VideoMAE's target, normalised pixels, everything else identical (mask, data, budget);
- ``none``: no pre-training, the random initialisation the other two start from.

Each is then fine-tuned on the labelled split and tested with several views, and its frozen
encoder is linearly probed. Every job is one of the public ones (``mme pretrain | finetune |
probe | eval``); this module only says which ``--set key=value`` overrides each receives, so the
demo's runs can be repeated by hand from the ``config.yaml`` each run folder holds.

Two presets: :func:`full_settings` (about ten minutes on 2 CPU cores) and
:func:`quick_settings` (under two minutes; the test suite runs it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mme.data.synthetic import SynthConfig

# The classes whose motion differs *inside* a 16x16 patch (rotation, zoom) as well as between
# patches; the trajectory figure prefers a test video of the first one present.
FIGURE_CLASSES = ("rotate_clockwise", "rotate_counterclockwise", "expand", "contract")


@dataclass(frozen=True)
class Method:
    """One way to initialise the encoder before fine-tuning."""

    key: str
    label: str
    # Pre-training targets (mme.objectives names); empty = no pre-training (random init).
    predict: tuple[str, ...]

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


def method(key: str) -> Method:
    for candidate in METHODS:
        if candidate.key == key:
            return candidate
    raise KeyError(key)


@dataclass
class DemoSettings:
    """Every knob of one demo run (stored in ``demo.json``; a rerun must match it)."""

    preset: str
    seed: int = 0
    # The synthetic dataset (mme synth): classes defined by motion only.
    synth: dict[str, Any] = field(default_factory=dict)
    # Clip geometry shared by every job.
    # Stride 4 with L = 4 trajectory steps, as the released recipe: tubelet k's trajectories run
    # from its first frame (raw 8k) to its second (raw 8k + 4).
    num_frames: int = 8
    stride: int = 4
    input_size: int = 64
    # Pre-training (identical for mme and pixel, apart from the targets).
    pretrain_model: str = "mme_vit_tiny_patch16_224"
    pretrain_epochs: int = 30
    pretrain_warmup_epochs: float = 3.0
    pretrain_batch: int = 16
    pretrain_base_lr: float = 2.4e-2  # per 256 clips: 1.5e-3 at batch 16
    mask_ratio: float = 0.7
    flow: str = "dis_ultrafast"
    traj_norm: str = "patch_std"
    # Fine-tuning (identical for the three methods).
    finetune_model: str = "vit_tiny_patch16_224"
    finetune_epochs: int = 10
    finetune_warmup_epochs: float = 1.0
    finetune_batch: int = 16
    finetune_base_lr: float = 3.2e-2  # per 256 clips: 2e-3 at batch 16
    num_sample: int = 1
    # Light augmentation: with ~100 fine-tuning steps, the VideoMAE protocol's RandAugment,
    # random erasing and mixup/cutmix keep the loss at chance level (docs/demo.md).
    rand_augment: str = ""
    reprob: float = 0.0
    min_area: float = 0.5
    mixup: bool = False
    test_clips: int = 2
    test_crops: int = 3
    # Linear probe (on cached features, cheap).
    probe_epochs: int = 100
    probe_lr: float = 1e-3
    # Loader processes of every job, and encoding processes of the dataset (0: one per core).
    workers: int = 2
    synth_workers: int = 0
    # Training jobs log their losses every this many optimiser steps (the loss curves' points).
    log_every: int = 5
    # Training samples drawn to measure each target's context-free floor (mme.demo.floors).
    floor_samples: int = 160

    def synth_config(self) -> SynthConfig:
        return SynthConfig(seed=self.seed, **self.synth)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def full_settings(seed: int = 0) -> DemoSettings:
    """The default demo: 8 motion classes x 32 videos, about ten minutes on 2 CPU cores."""
    return DemoSettings(
        preset="full",
        seed=seed,
        synth={"classes": 8, "videos_per_class": 32, "frames": 64, "width": 160, "height": 120},
    )


def quick_settings(seed: int = 0) -> DemoSettings:
    """A smoke run of every stage (under two minutes): the numbers mean nothing at this size."""
    return DemoSettings(
        preset="quick",
        seed=seed,
        synth={
            "classes": 4,
            "videos_per_class": 5,
            "frames": 32,
            "width": 96,
            "height": 64,
            "val_fraction": 0.2,
            "test_fraction": 0.2,
        },
        pretrain_epochs=1,
        pretrain_warmup_epochs=0.0,
        pretrain_batch=4,
        finetune_epochs=1,
        finetune_warmup_epochs=0.0,
        finetune_batch=4,
        test_clips=1,
        test_crops=2,
        probe_epochs=5,
        workers=0,
        synth_workers=1,
        log_every=1,
        floor_samples=8,
    )


# ------------------------------------------------------------------------------ job overrides
def _common(settings: DemoSettings, output_dir: Path) -> list[str]:
    return [
        f"data.num_frames={settings.num_frames}",
        f"data.stride={settings.stride}",
        f"data.input_size={settings.input_size}",
        f"runtime.output_dir={output_dir}",
        f"runtime.seed={settings.seed}",
        f"runtime.workers={settings.workers}",
    ]


def pretrain_overrides(settings: DemoSettings, chosen: Method, data_dir: Path, output_dir: Path) -> list[str]:
    """``mme pretrain --set ...`` of one pre-training method."""
    if not chosen.pretrains:
        raise ValueError(f"method {chosen.key!r} has no pre-training")
    targets = ", ".join(chosen.predict)
    overrides = [
        *_common(settings, output_dir),
        f"model.name={settings.pretrain_model}",
        f"predict=[{targets}]",
        f"data.train_list={data_dir / 'train.csv'}",
        "data.mask_type=tube",
        f"data.mask_ratio={settings.mask_ratio}",
        f"data.trajectories={'online' if chosen.needs_trajectories else 'none'}",
        f"traj.flow={settings.flow}",
        f"targets.traj_norm={settings.traj_norm}",
        f"optim.base_lr={settings.pretrain_base_lr}",
        f"optim.min_lr={settings.pretrain_base_lr / 100}",
        "optim.warmup_lr=0.0",
        f"schedule.epochs={settings.pretrain_epochs}",
        f"schedule.warmup_epochs={settings.pretrain_warmup_epochs}",
        f"batch.per_gpu={settings.pretrain_batch}",
        "batch.num_gpus=1",
        f"runtime.log_every={settings.log_every}",
        "runtime.keep_last=1",
        "runtime.tensorboard=false",
        "runtime.precision=fp32",
    ]
    return overrides


def init_overrides(settings: DemoSettings, data_dir: Path, output_dir: Path) -> list[str]:
    """The MME pre-training config whose *initial* weights are the ``none`` method's encoder."""
    return pretrain_overrides(settings, METHODS[0], data_dir, output_dir)


def finetune_overrides(
    settings: DemoSettings, init_from: Path, data_dir: Path, output_dir: Path
) -> list[str]:
    """``mme finetune --set ...``, the same for every method but ``model.init_from``.

    No horizontal flip: it would swap move_left/move_right and the two rotations, i.e. change
    the label (as for Something-Something). Augmentation is light by default (see
    :class:`DemoSettings`): with a few hundred clips and a few epochs the full protocol keeps the
    model from fitting at all.
    """
    overrides = [
        *_common(settings, output_dir),
        f"model.name={settings.finetune_model}",
        f"model.init_from={init_from}",
        "model.overrides.drop_path_rate=0.1",
        f"data.train_list={data_dir / 'train.csv'}",
        f"data.val_list={data_dir / 'val.csv'}",
        f"data.test_list={data_dir / 'test.csv'}",
        f"data.short_side_size={settings.input_size}",
        "data.flip=false",
        f"data.rand_augment='{settings.rand_augment}'",
        f"data.reprob={settings.reprob}",
        f"data.min_area={settings.min_area}",
        f"data.num_sample={settings.num_sample}",
        f"data.test_clips={settings.test_clips}",
        f"data.test_crops={settings.test_crops}",
        f"optim.base_lr={settings.finetune_base_lr}",
        f"optim.min_lr={settings.finetune_base_lr / 100}",
        "optim.warmup_lr=0.0",
        "optim.layer_decay=0.75",
        f"schedule.epochs={settings.finetune_epochs}",
        f"schedule.warmup_epochs={settings.finetune_warmup_epochs}",
        f"batch.per_gpu={settings.finetune_batch}",
        "batch.num_gpus=1",
        "validation.every_epochs=1",
        "validation.test_at_end=true",
        f"runtime.log_every={settings.log_every}",
        "runtime.keep_last=1",
        "runtime.tensorboard=false",
    ]
    if not settings.mixup:
        overrides += ["mixup.mixup_alpha=0.0", "mixup.cutmix_alpha=0.0"]
    return overrides


def probe_overrides(settings: DemoSettings, init_from: Path, data_dir: Path, output_dir: Path) -> list[str]:
    """``mme probe --set ...``: a linear head on the frozen encoder's features."""
    return [
        *_common(settings, output_dir),
        f"model.name={settings.finetune_model}",
        f"model.init_from={init_from}",
        f"data.train_list={data_dir / 'train.csv'}",
        f"data.val_list={data_dir / 'val.csv'}",
        f"data.short_side_size={settings.input_size}",
        f"probe.epochs={settings.probe_epochs}",
        f"probe.lr={settings.probe_lr}",
        f"batch.per_gpu={settings.finetune_batch}",
        "runtime.tensorboard=false",
    ]


def eval_overrides(settings: DemoSettings, checkpoint: Path, data_dir: Path, output_dir: Path) -> list[str]:
    """``mme eval --set ...``: the multi-view test of a classifier (here: a linear probe)."""
    return [
        *_common(settings, output_dir),
        f"checkpoint={checkpoint}",
        f"data.test_list={data_dir / 'test.csv'}",
        f"data.short_side_size={settings.input_size}",
        f"data.test_clips={settings.test_clips}",
        f"data.test_crops={settings.test_crops}",
        f"batch.per_gpu={settings.finetune_batch}",
        "runtime.tensorboard=false",
    ]
