"""Run configs of the four jobs: ``PretrainConfig``, ``FinetuneConfig``, ``EvalConfig``, ``ProbeConfig``.

Each composes the packages' dataclasses with the trainer's sections; every value is stored once
and derived where shared (``target_config()``, ``model_settings()``); docs/training.md, "Configs".
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from omegaconf import MISSING

from mme.data.config import ClassificationDataConfig, MixupConfig, PretrainDataConfig
from mme.errors import ConfigError
from mme.models.config import ClassifierConfig, MMEPretrainConfig, ViTConfig
from mme.motion.config import TrajectoryConfig
from mme.objectives.config import TargetConfig, TargetSettings
from mme.train.config_loader import load_config

# Model fields a run takes from its data section (the clip the model is built for).
_CLIP_FIELDS = {"num_frames": "data.num_frames", "img_size": "data.input_size",
                "patch_size": "data.patch_size", "tubelet_size": "data.tubelet_size"}  # fmt: skip


def _model_overrides(name: str, configs: tuple[type, ...], derived: Sequence[str]) -> type:
    """A dataclass of ``configs``' settable fields (all but ``derived``), each None (the model's value)."""
    fields: list[tuple[str, Any, Any]] = []
    for config in configs:
        hints = typing.get_type_hints(config)
        for item in dataclasses.fields(config):
            kind = hints[item.name]
            if item.name in derived or kind not in (int, float, bool, str):  # nested: encoder, heads
                continue
            fields.append((item.name, kind | None, field(default=None)))

    def given(self: Any) -> dict[str, Any]:
        """The settings that are set, as keyword arguments of ``mme.models.create_model``."""
        return {key: value for key, value in dataclasses.asdict(self).items() if value is not None}

    return dataclasses.make_dataclass(name, fields, namespace={"given": given})


ClassifierOverrides = _model_overrides(
    "ClassifierOverrides", (ClassifierConfig,), (*_CLIP_FIELDS, "num_classes")
)
PretrainModelOverrides = _model_overrides(
    "PretrainModelOverrides", (MMEPretrainConfig, ViTConfig), (*_CLIP_FIELDS, "encoder", "heads")
)


@dataclass
class ModelSection:
    """Which registered model to build, typed ``overrides`` of its config, and ``init_from``."""

    name: str = "vit_base_patch16_224"
    overrides: ClassifierOverrides = field(default_factory=ClassifierOverrides)  # type: ignore[valid-type]
    init_from: str | None = None


@dataclass
class PretrainModelSection(ModelSection):
    """The pre-training model: encoder fields given flat (``depth``) next to the decoder's."""

    name: str = "mme_vit_base_patch16_224"
    overrides: PretrainModelOverrides = field(default_factory=PretrainModelOverrides)  # type: ignore[valid-type]


def _clip_settings(data: Any) -> dict[str, Any]:
    return {name: getattr(data, place.removeprefix("data.")) for name, place in _CLIP_FIELDS.items()}


# Keys that no longer exist: each value is stored once, at the place named (ConfigError says so).
_MOVED_MODEL_KEYS = {
    **{f"model.overrides.{key}": place for key, place in _CLIP_FIELDS.items()},
    "model.overrides.num_classes": "data.num_classes",
}


@dataclass
class OptimConfig:
    """AdamW and the lr rule; the lrs are per ``reference_batch`` samples (linear scaling)."""

    base_lr: float = 1.5e-4
    min_lr: float = 1e-5
    warmup_lr: float = 1e-6
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-8
    weight_decay: float = 0.05
    # Cosine schedule of the weight decay from weight_decay to this (None: constant).
    weight_decay_end: float | None = None
    # Layer-wise lr decay (fine-tuning): lr x decay^(num_layers + 1 - layer_id); 1.0 = off.
    layer_decay: float = 1.0
    # Max gradient norm (None: no clipping, as the released pre-training recipe).
    clip_grad: float | None = None
    reference_batch: int = 256


@dataclass
class ScheduleConfig:
    epochs: int = 800
    warmup_epochs: float = 40.0


@dataclass
class BatchConfig:
    """Global batch = ``per_gpu`` x processes x ``update_freq``; ``num_gpus`` is what the recipe assumes."""

    per_gpu: int = 64
    num_gpus: int = 1
    update_freq: int = 1
    # Repeated augmentation across ranks (DeiT's RASampler): every video num_repeats times per
    # epoch, each copy on another rank with its own augmentation. 1 = off.
    num_repeats: int = 1


@dataclass
class EvalRuntimeConfig:
    """Where and how a job runs (every command); training adds :class:`RuntimeConfig`'s fields."""

    output_dir: str = MISSING
    seed: int = 0
    # auto = cuda:LOCAL_RANK when CUDA is available, else cpu.
    device: str = "auto"
    # fp32, bf16 (autocast) or fp16 (autocast + GradScaler; the released recipe).
    precision: str = "fp32"
    workers: int = 8
    pin_memory: bool = True
    prefetch_factor: int = 2
    tensorboard: bool = True


@dataclass
class RuntimeConfig(EvalRuntimeConfig):
    """A training job's runtime. ``resume`` is set by ``--resume auto|PATH``."""

    compile: bool = False
    log_every: int = 20
    checkpoint_every_epochs: int = 1
    # Also checkpoint every this many optimiser steps (0: only at epoch ends).
    checkpoint_every_steps: int = 0
    keep_last: int = 2
    # Stop (after writing a checkpoint) once this job has made this many optimiser steps, e.g. to
    # fit a cluster job's time limit; the next job continues with --resume auto.
    stop_after_steps: int | None = None
    resume: str | None = None


def derive_target_config(
    targets: TargetSettings, traj: TrajectoryConfig, patch_size: int, tubelet_size: int
) -> TargetConfig:
    """The target builders' config: the ``targets`` settings at a token and trajectory geometry."""
    return TargetConfig(
        **dataclasses.asdict(targets),
        patch_size=patch_size,
        tubelet_size=tubelet_size,
        traj_steps=traj.steps,
        traj_stride=traj.grid_stride,
        max_displacement=traj.max_displacement,
    )


@dataclass
class PretrainConfig:
    """``mme pretrain``: MME pre-training (docs/method.md §1–6)."""

    model: PretrainModelSection = field(default_factory=PretrainModelSection)
    # The targets the decoder predicts, one head each (mme.objectives registry names).
    predict: list[str] = field(default_factory=lambda: ["hog", "traj"])
    # How targets are computed; their geometry comes from data and traj (target_config()).
    targets: TargetSettings = field(default_factory=TargetSettings)
    traj: TrajectoryConfig = field(default_factory=TrajectoryConfig)
    data: PretrainDataConfig = field(default_factory=PretrainDataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    # Head activation per target where it differs from the registry's (identity): the released
    # code used {hog: sigmoid, traj: tanh} (docs/motion.md, "Heads that reach their targets").
    head_activations: dict[str, str] = field(default_factory=dict)
    # Also keep the model of these epochs (0-based: 399 = after 400 epochs) as OUT/model-epoch<N>,
    # e.g. the released SSV2 400/800-epoch results fine-tune epochs 399/699 of the 1600-epoch run.
    save_model_epochs: list[int] = field(default_factory=list)

    MOVED_KEYS: ClassVar[dict[str, str]] = {
        "targets.patch_size": "data.patch_size",
        "targets.tubelet_size": "data.tubelet_size",
        "targets.traj_steps": "traj.steps",
        "targets.traj_stride": "traj.grid_stride",
        "targets.max_displacement": "traj.max_displacement",
        **_MOVED_MODEL_KEYS,
        "model.overrides.heads": "predict and head_activations",
    }

    def target_config(self) -> TargetConfig:
        """What the target builders read: ``targets`` at the token geometry of data and traj."""
        return derive_target_config(self.targets, self.traj, self.data.patch_size, self.data.tubelet_size)

    def model_settings(self) -> dict[str, Any]:
        """``create_model`` settings: overrides, one head per predicted target, the data's clip size."""
        from mme.objectives import head_specs

        heads = head_specs(self.predict, self.target_config(), self.head_activations)
        return {**self.model.overrides.given(), "heads": heads, **_clip_settings(self.data)}


@dataclass
class ValidationConfig:
    """Evaluation during and after fine-tuning."""

    # Single-view validation on data.val_list every this many epochs (0: never); picks best.pt.
    every_epochs: int = 1
    # Multi-view test on data.test_list with the final weights (and best.pt's when it exists).
    test_at_end: bool = True


@dataclass
class FinetuneConfig:
    """``mme finetune``: supervised fine-tuning (VideoMAE protocol, docs/method.md §6)."""

    model: ModelSection = field(
        default_factory=lambda: ModelSection(overrides=ClassifierOverrides(drop_path_rate=0.1))
    )
    data: ClassificationDataConfig = field(default_factory=ClassificationDataConfig)
    mixup: MixupConfig = field(default_factory=MixupConfig)
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            base_lr=1e-3, min_lr=1e-6, warmup_lr=1e-6, betas=[0.9, 0.999], layer_decay=0.75
        )
    )
    schedule: ScheduleConfig = field(default_factory=lambda: ScheduleConfig(epochs=30, warmup_epochs=5.0))
    batch: BatchConfig = field(default_factory=lambda: BatchConfig(per_gpu=8))
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    MOVED_KEYS: ClassVar[dict[str, str]] = _MOVED_MODEL_KEYS

    def model_settings(self) -> dict[str, Any]:
        """``create_model`` / ``load_classifier`` settings: the overrides and the data's clip size."""
        return {**self.model.overrides.given(), **_clip_settings(self.data)}


@dataclass
class EvalBatchConfig:
    per_gpu: int = 8


@dataclass
class EvalConfig:
    """``mme eval``: multi-view testing of a classifier checkpoint."""

    # Any checkpoint mme.models.load_classifier accepts.
    checkpoint: str = MISSING
    data: ClassificationDataConfig = field(default_factory=ClassificationDataConfig)
    batch: EvalBatchConfig = field(default_factory=EvalBatchConfig)
    runtime: EvalRuntimeConfig = field(default_factory=EvalRuntimeConfig)


PROBE_HEADS = ("linear", "attentive", "knn")


@dataclass
class ProbeHeadConfig:
    """The probe's head and its training, on cached frozen features (docs/training.md)."""

    # linear: BatchNorm + Linear on the pooled features (MAE's linear probe); attentive: one
    # learned query cross-attending over the token grid + Linear; knn: a vote of the k nearest
    # train videos by cosine similarity of the pooled features (nothing trained).
    head: str = "linear"
    epochs: int = 100
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 256
    # attentive: heads of the cross-attention (must divide the encoder width).
    num_heads: int = 4
    # knn: neighbours that vote, each with weight exp(cosine / temperature) (DINO's 20 and 0.07).
    k: int = 20
    temperature: float = 0.07


@dataclass
class ProbeConfig:
    """``mme probe``: a linear, attentive or kNN probe of a frozen encoder (docs/method.md §6)."""

    model: ModelSection = field(default_factory=ModelSection)
    data: ClassificationDataConfig = field(default_factory=ClassificationDataConfig)
    probe: ProbeHeadConfig = field(default_factory=ProbeHeadConfig)
    batch: EvalBatchConfig = field(default_factory=EvalBatchConfig)
    runtime: EvalRuntimeConfig = field(default_factory=EvalRuntimeConfig)

    MOVED_KEYS: ClassVar[dict[str, str]] = _MOVED_MODEL_KEYS

    def model_settings(self) -> dict[str, Any]:
        """``load_classifier`` settings: the overrides and the data's clip size."""
        return {**self.model.overrides.given(), **_clip_settings(self.data)}


RunConfig = PretrainConfig | FinetuneConfig | EvalConfig | ProbeConfig


def load_run_config(
    schema: type[RunConfig],
    path: str | os.PathLike[str] | None,
    overrides: Sequence[str] = (),
    resume: str | None = None,
) -> RunConfig:
    """Defaults ← YAML ← ``--set`` (← ``--resume``), then :func:`validate`."""
    config = load_config(schema, path, overrides)
    if resume is not None:
        config.runtime.resume = resume
    validate(config)
    return config


def _positive(key: str, value: float | int, strict: bool = True) -> None:
    if (value <= 0) if strict else (value < 0):
        raise ConfigError(f"{key} must be {'> 0' if strict else '>= 0'}, got {value}")


def _check_runtime(runtime: Any) -> None:
    if runtime.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"runtime.device must be auto, cpu or cuda, got {runtime.device!r}")
    if runtime.precision not in ("fp32", "bf16", "fp16"):
        raise ConfigError(f"runtime.precision must be fp32, bf16 or fp16, got {runtime.precision!r}")
    _positive("runtime.workers", runtime.workers, strict=False)
    _positive("runtime.prefetch_factor", runtime.prefetch_factor)
    for key in ("log_every", "checkpoint_every_epochs", "keep_last"):
        if hasattr(runtime, key):
            _positive(f"runtime.{key}", getattr(runtime, key))
    if getattr(runtime, "checkpoint_every_steps", 0) < 0:
        raise ConfigError(
            f"runtime.checkpoint_every_steps must be >= 0, got {runtime.checkpoint_every_steps}"
        )
    stop = getattr(runtime, "stop_after_steps", None)
    if stop is not None:
        _positive("runtime.stop_after_steps", stop)
    resume = getattr(runtime, "resume", None)
    if resume not in (None, "auto") and not Path(resume).is_file():
        raise ConfigError(f"--resume {resume}: no such checkpoint file (use a step-*.pt file or 'auto')")


def _check_training(config: PretrainConfig | FinetuneConfig) -> None:
    optim, schedule, batch = config.optim, config.schedule, config.batch
    _positive("optim.base_lr", optim.base_lr)
    _positive("optim.min_lr", optim.min_lr, strict=False)
    _positive("optim.warmup_lr", optim.warmup_lr, strict=False)
    if len(optim.betas) != 2 or not all(0 <= b < 1 for b in optim.betas):
        raise ConfigError(f"optim.betas must be two numbers in [0, 1), got {list(optim.betas)}")
    _positive("optim.eps", optim.eps)
    _positive("optim.weight_decay", optim.weight_decay, strict=False)
    if optim.weight_decay_end is not None:
        _positive("optim.weight_decay_end", optim.weight_decay_end, strict=False)
    if not 0 < optim.layer_decay <= 1:
        raise ConfigError(f"optim.layer_decay must be in (0, 1] (1 = off), got {optim.layer_decay}")
    if optim.clip_grad is not None:
        _positive("optim.clip_grad", optim.clip_grad)
    _positive("optim.reference_batch", optim.reference_batch)
    _positive("schedule.epochs", schedule.epochs)
    if not 0 <= schedule.warmup_epochs <= schedule.epochs:
        raise ConfigError(
            f"schedule.warmup_epochs must be in [0, schedule.epochs={schedule.epochs}], "
            f"got {schedule.warmup_epochs}"
        )
    _positive("batch.per_gpu", batch.per_gpu)
    _positive("batch.num_gpus", batch.num_gpus)
    _positive("batch.update_freq", batch.update_freq)
    _positive("batch.num_repeats", batch.num_repeats)
    _check_runtime(config.runtime)


def _check_model(section: ModelSection, kind: str) -> None:
    from mme.models import get_config, list_models

    if section.name not in list_models(kind):
        raise ConfigError(
            f"model.name {section.name!r} is not a {kind} model; choose one of {', '.join(list_models(kind))}"
        )
    try:
        get_config(section.name, **section.overrides.given())
    except ConfigError as error:
        raise ConfigError(f"model.overrides: {error}") from None
    if section.init_from is not None and not Path(section.init_from).exists():
        raise ConfigError(f"model.init_from: {section.init_from} does not exist")


def _check_target_geometry(config: PretrainConfig) -> None:
    """The targets' geometry (data's tokens, traj's seeds) fits their settings."""
    data, traj, targets = config.data, config.traj, config.targets
    if data.tubelet_size < 2:
        raise ConfigError(
            f"data.tubelet_size must be >= 2 for pre-training (HOG is taken at each tubelet's second "
            f"frame), got {data.tubelet_size}"
        )
    for key, divisor in (("traj.grid_stride", traj.grid_stride), ("targets.hog_cell", targets.hog_cell)):
        if data.patch_size % divisor:
            raise ConfigError(f"{key}={divisor} must divide data.patch_size={data.patch_size}")


def validate(config: RunConfig) -> None:
    """Range and consistency checks, each naming the key at fault (ConfigError)."""
    if isinstance(config, PretrainConfig):
        _check_model(config.model, "pretrain")
        _check_training(config)
        from mme.objectives import get_target

        for epoch in config.save_model_epochs:
            if int(epoch) != epoch or not 0 <= epoch < config.schedule.epochs:
                last = config.schedule.epochs - 1
                raise ConfigError(f"save_model_epochs: {epoch!r} is not an epoch of this run (0 .. {last})")
        if not config.predict:
            raise ConfigError("predict must name at least one target (e.g. [hog, traj])")
        for name in config.predict:
            get_target(name)
        from mme.models.config import HEAD_ACTIVATIONS

        for name, activation in config.head_activations.items():
            if name not in config.predict:
                raise ConfigError(
                    f"head_activations.{name}: {name!r} is not a predicted target {list(config.predict)}"
                )
            if activation not in HEAD_ACTIVATIONS:
                raise ConfigError(
                    f"head_activations.{name}: {activation!r} is not one of {', '.join(HEAD_ACTIVATIONS)}"
                )
            get_target(name).check_activation(activation)
        if len(set(config.predict)) != len(config.predict):
            raise ConfigError(f"predict lists a target twice: {list(config.predict)}")
        _check_target_geometry(config)
        if any(name.startswith("traj") for name in config.predict):
            if config.data.trajectories == "none":
                raise ConfigError(
                    f"predict={list(config.predict)} needs trajectories, but data.trajectories is 'none'"
                )
            if "traj_hog" in config.predict and config.traj.camera_motion != "none":
                # traj_hog finds the points by summing displacements; camera-relative ones do not add
                # up to the points' positions in the frames.
                raise ConfigError(
                    f"predict=traj_hog needs the points' positions in the frames, which "
                    f"traj.camera_motion={config.traj.camera_motion} displacements do not give; "
                    "use traj.camera_motion=none"
                )
    elif isinstance(config, FinetuneConfig):
        _check_model(config.model, "classifier")
        _check_training(config)
        if config.validation.every_epochs < 0:
            raise ConfigError(f"validation.every_epochs must be >= 0, got {config.validation.every_epochs}")
    elif isinstance(config, ProbeConfig):
        _check_model(config.model, "classifier")
        if config.model.init_from is None:
            raise ConfigError("model.init_from must name the pre-trained checkpoint whose encoder is probed")
        _positive("probe.epochs", config.probe.epochs)
        _positive("probe.lr", config.probe.lr)
        _positive("probe.weight_decay", config.probe.weight_decay, strict=False)
        _positive("probe.batch_size", config.probe.batch_size)
        if config.probe.head not in PROBE_HEADS:
            choices = ", ".join(PROBE_HEADS)
            raise ConfigError(f"probe.head must be one of {choices}, got {config.probe.head!r}")
        _positive("probe.num_heads", config.probe.num_heads)
        _positive("probe.k", config.probe.k)
        _positive("probe.temperature", config.probe.temperature)
        _positive("batch.per_gpu", config.batch.per_gpu)
        _check_runtime(config.runtime)
    elif isinstance(config, EvalConfig):
        if not Path(config.checkpoint).exists():
            raise ConfigError(f"checkpoint: {config.checkpoint} does not exist")
        _positive("batch.per_gpu", config.batch.per_gpu)
        _check_runtime(config.runtime)
