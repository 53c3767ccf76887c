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
    """Every knob of one demo run (stored in ``demo.json``; a rerun must match it).

    The values of :func:`full_settings` were chosen by measurement (docs/demo.md, "Choosing the
    settings").
    """

    preset: str
    seed: int = 0
    # The synthetic dataset (mme synth): classes defined by motion only.
    synth: dict[str, Any] = field(default_factory=dict)
    # Clip geometry shared by every job: 8 frames at stride 1, so tubelet k's frames are raw 2k,
    # 2k + 1 and its L = 4 trajectory steps run over raw 2k .. 2k + 4 (the synthetic motions are
    # fast: 1-3 network px per frame).
    num_frames: int = 8
    stride: int = 1
    input_size: int = 64
    # Encoder blocks of every job's ViT-tiny (width 192): the pre-trained encoder must fit the
    # fine-tuned and probed one.
    encoder_depth: int = 2
    # Pre-training (identical for mme and pixel, apart from the targets).
    pretrain_model: str = "mme_vit_tiny_patch16_224"
    pretrain_epochs: int = 74
    pretrain_warmup_epochs: float = 5.0
    # Training jobs checkpoint every this many epochs (resumable; an epoch is ~16 steps here).
    checkpoint_every_epochs: int = 10
    pretrain_batch: int = 16
    pretrain_base_lr: float = 8e-3  # per 256 clips: 5e-4 at batch 16
    mask_ratio: float = 0.7
    # Trajectories: computed once per dataset by `mme extract` (offline, flow extract_flow at the
    # videos' resolution) or per clip in the loader (online, flow `flow`, also the flow of the
    # trajectory picture).
    trajectories: str = "offline"
    extract_flow: str = "dis_medium"
    flow: str = "dis_fine"
    traj_norm: str = "patch_std"
    # Decoded videos kept in memory by every job's loader (MB per process; 0: decode each clip).
    cache_mb: float = 256.0
    # Autocast precision of every job (bf16: measured faster on CPUs with AVX-512 BF16).
    precision: str = "bf16"
    # Fine-tuning (identical for the three methods).
    finetune_model: str = "vit_tiny_patch16_224"
    finetune_epochs: int = 15
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
    test_crops: int = 1
    # Linear probe (on cached features, cheap).
    probe_epochs: int = 100
    probe_lr: float = 1e-3
    # Loader processes of every job, and encoding processes of the dataset (0: one per core).
    workers: int = 1
    synth_workers: int = 0
    # Training jobs log their losses every this many optimiser steps (the loss curves' points).
    log_every: int = 10
    # Training samples drawn to measure each target's context-free floor (mme.demo.floors).
    floor_samples: int = 320

    def synth_config(self) -> SynthConfig:
        return SynthConfig(seed=self.seed, **self.synth)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def full_settings(seed: int = 0) -> DemoSettings:
    """The default demo: about ten minutes on 2 CPU cores."""
    return DemoSettings(
        preset="full",
        seed=seed,
        synth={
            "classes": 12,
            "videos_per_class": 64,
            "frames": 16,
            "width": 96,
            "height": 72,
            "val_fraction": 0.1,
            "test_fraction": 0.35,
        },
    )


def quick_settings(seed: int = 0) -> DemoSettings:
    """A smoke run of every stage (under two minutes): the numbers mean nothing at this size."""
    return DemoSettings(
        preset="quick",
        seed=seed,
        synth={
            "classes": 4,
            "videos_per_class": 5,
            "frames": 16,
            "width": 64,
            "height": 48,
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
        cache_mb=64.0,
        checkpoint_every_epochs=1,
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
        f"data.cache_mb={settings.cache_mb}",
        f"runtime.output_dir={output_dir}",
        f"runtime.seed={settings.seed}",
        f"runtime.workers={settings.workers}",
        f"runtime.precision={settings.precision}",
    ]


def traj_dir(data_dir: Path) -> Path:
    """Where the demo's `mme extract` puts the trajectories of ``data_dir``'s training videos."""
    return data_dir.parent / "traj"


def extract_arguments(settings: DemoSettings, data_dir: Path) -> list[str]:
    """``mme extract`` of the training list (offline trajectories), as command-line arguments.

    At least 2 workers: then the flows run in spawned processes. With one, ``mme extract`` runs
    them in its own process with OpenCV's thread pool, and the demo's later data-loader workers,
    forked from that process, hang in their first OpenCV call (measured).
    """
    workers = max(2, settings.workers)
    return [
        "--list",
        str(data_dir / "train.csv"),
        "--out",
        str(traj_dir(data_dir)),
        "--flow",
        settings.extract_flow,
        "--workers",
        str(workers),
    ]


def pretrain_overrides(settings: DemoSettings, chosen: Method, data_dir: Path, output_dir: Path) -> list[str]:
    """``mme pretrain --set ...`` of one pre-training method."""
    if not chosen.pretrains:
        raise ValueError(f"method {chosen.key!r} has no pre-training")
    targets = ", ".join(chosen.predict)
    trajectories = settings.trajectories if chosen.needs_trajectories else "none"
    overrides = [
        *_common(settings, output_dir),
        f"model.name={settings.pretrain_model}",
        f"model.overrides.depth={settings.encoder_depth}",
        f"predict=[{targets}]",
        f"data.train_list={data_dir / 'train.csv'}",
        "data.mask_type=tube",
        f"data.mask_ratio={settings.mask_ratio}",
        f"data.trajectories={trajectories}",
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
        f"runtime.checkpoint_every_epochs={settings.checkpoint_every_epochs}",
        "runtime.keep_last=1",
        "runtime.tensorboard=false",
    ]
    if trajectories == "offline":
        overrides.append(f"data.traj_root={traj_dir(data_dir)}")
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
        f"model.overrides.depth={settings.encoder_depth}",
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
        f"model.overrides.depth={settings.encoder_depth}",
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
