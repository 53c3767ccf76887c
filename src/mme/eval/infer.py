"""``mme eval``'s views for ``mme predict`` / ``mme embed``, on videos named freely (windows if long)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mme.data.config import SAMPLINGS, ClassificationDataConfig
from mme.data.datasets import BadVideo, VideoClassificationDataset
from mme.data.sampling import ClipIndices
from mme.errors import CheckpointError, ConfigError
from mme.io.lists import VideoEntry
from mme.train.distributed import DistEnv, cpu_threads, setup_device
from mme.train.trainer import PRECISIONS
from mme.utils.logging import RunLog
from mme.utils.machine import usable_cores

DEVICES = ("auto", "cpu", "cuda")


def default_workers() -> int:
    """Loader workers when not given: half the cores (the model needs the rest), 1 to 8."""
    return max(1, min(8, usable_cores() // 2))


@dataclass
class ViewSettings:
    """Which views of each video (``mme eval``'s data settings) and how to run the model over them."""

    clips: int = ClassificationDataConfig.test_clips
    crops: int = ClassificationDataConfig.test_crops
    stride: int = ClassificationDataConfig.stride
    sampling: str = ClassificationDataConfig.sampling
    short_side: int | None = None
    batch_size: int = 8
    workers: int | None = None
    device: str = "auto"
    precision: str = "fp32"

    def __post_init__(self) -> None:
        for key in ("clips", "crops", "stride", "batch_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{key} (--{_flag(key)}) must be an integer >= 1, got {value!r}")
        if self.short_side is not None and self.short_side < 1:
            raise ConfigError(f"short_side (--short-side) must be >= 1, got {self.short_side!r}")
        if self.workers is None:
            self.workers = default_workers()
        elif self.workers < 0:
            raise ConfigError(f"workers (--workers) must be >= 0, got {self.workers!r}")
        choices = {"sampling": SAMPLINGS, "device": DEVICES, "precision": PRECISIONS}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(
                    f"{key} (--{key}) must be one of {', '.join(allowed)}, got {getattr(self, key)!r}"
                )

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> ViewSettings:
        """Settings from keyword arguments; an unknown one is a ConfigError naming the known."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**options)

    def describe(self) -> dict[str, Any]:
        """What decides the values computed (not where or how fast): for logs and resume checks."""
        keys = ("clips", "crops", "stride", "sampling", "short_side", "precision")
        return {key: getattr(self, key) for key in keys}


def _flag(key: str) -> str:
    return {"batch_size": "batch"}.get(key, key.replace("_", "-"))


def data_config(model: nn.Module, settings: ViewSettings) -> ClassificationDataConfig:
    """``mme eval``'s data settings for ``model``'s clips: the model decides the clip geometry."""
    config = model.config
    short_side = settings.short_side or config.img_size
    if short_side < config.img_size:
        raise ConfigError(
            f"--short-side {short_side} is below the model's input size {config.img_size}: "
            "the crops would not fit"
        )
    return ClassificationDataConfig(
        num_frames=config.num_frames,
        input_size=config.img_size,
        patch_size=config.patch_size,
        tubelet_size=config.tubelet_size,
        stride=settings.stride,
        sampling=settings.sampling,
        short_side_size=short_side,
        test_clips=settings.clips,
        test_crops=settings.crops,
        max_bad_fraction=1.0,  # every failed video is reported in the output, never fatal
    )


def load_model(checkpoint: str | os.PathLike[str] | nn.Module, log: RunLog) -> nn.Module:
    """A classifier from any checkpoint (its head as stored; pre-training: ``num_classes=0``) or as given."""
    from mme.interop import load_classifier_with_report
    from mme.models import VideoClassifier

    if isinstance(checkpoint, nn.Module):
        if not isinstance(checkpoint, VideoClassifier):
            raise CheckpointError(f"expected a VideoClassifier, got {type(checkpoint).__name__}")
        return checkpoint
    model, report = load_classifier_with_report(checkpoint)
    log.info("model from %s: %s", checkpoint, report.summary())
    return model


@dataclass(frozen=True)
class WindowEntry(VideoEntry):
    """A dataset entry standing for frames ``start_frame`` to ``end_frame`` (excluded) of a video."""

    start_frame: int = 0
    end_frame: int = 0


class InferenceDataset(VideoClassificationDataset):
    """``mme eval``'s test views; a :class:`WindowEntry`'s clips sampled as if it were the whole video."""

    def _decode(
        self, entry: VideoEntry, plan: Callable[[int], ClipIndices], minimum: int
    ) -> tuple[np.ndarray, ClipIndices, np.ndarray, np.ndarray | None]:
        if isinstance(entry, WindowEntry):
            plan = _within(entry, plan)
        return super()._decode(entry, plan, minimum)


def _within(window: WindowEntry, plan: Callable[[int], ClipIndices]) -> Callable[[int], ClipIndices]:
    def shifted(available: int) -> ClipIndices:
        start, end = window.start_frame, min(window.end_frame, available)
        if end <= start:
            raise BadVideo(f"window from frame {start}: only {available} frames decode")
        inner = plan(end - start)
        dense = None if inner.dense is None else inner.dense + start
        return ClipIndices(inner.frames + start, dense, inner.stride)

    return shifted


def frame_windows(num_frames: int, fps: float, window_s: float, stride_s: float) -> list[tuple[int, int]]:
    """``(start, end)`` frames of ``window_s`` windows every ``stride_s`` seconds until the end."""
    size, step = max(1, round(window_s * fps)), max(1, round(stride_s * fps))
    windows, start = [], 0
    while True:
        end = min(start + size, num_frames)
        windows.append((start, end))
        if end >= num_frames:
            return windows
        start += step


def make_dataset(
    entries: list[VideoEntry], data: ClassificationDataConfig, bad_dir: Path
) -> InferenceDataset:
    return InferenceDataset(data, "test", entries=entries, bad_video_dir=bad_dir)


def make_loader(dataset: InferenceDataset, settings: ViewSettings, env: DistEnv) -> Any:
    from mme.data.loader import eval_loader
    from mme.train.run_config import EvalRuntimeConfig

    runtime = EvalRuntimeConfig(output_dir="", workers=settings.workers, tensorboard=False)
    return eval_loader(dataset, settings.batch_size, runtime, env)


def local_env(device: str) -> DistEnv:
    """This process alone on its device (``cuda:LOCAL_RANK`` under torchrun)."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    return DistEnv(rank=0, world_size=1, local_rank=local_rank, device=setup_device(device, local_rank))


@contextlib.contextmanager
def inference_threads(env: DistEnv, workers: int) -> Iterator[None]:
    """On CPU, the cores the loader workers leave as intra-op threads (as the jobs' ``Run``)."""
    before = torch.get_num_threads()
    if env.device.type == "cpu":
        threads = cpu_threads(workers, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
        if threads is not None:
            torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def scratch_folder() -> Iterator[Path]:
    """A private folder for the datasets' bad-video records (evaluation writes none; removed after)."""
    with tempfile.TemporaryDirectory(prefix="mme-infer-") as folder:
        yield Path(folder)
