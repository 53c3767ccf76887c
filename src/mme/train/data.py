"""Datasets and loaders of the jobs, built from the run configs.

Every loader wraps its dataset in :class:`~mme.train.distributed.SeededDataset` and feeds it
``(index, seed)`` pairs from our samplers, so each clip's augmentation depends only on the run
seed and its place in the epoch: the same with 0 or 8 workers, 1 or N processes, and after a
resume. Loaders own a private ``torch.Generator`` so creating them never consumes the training
process's RNG. Bad videos are recorded under ``<output_dir>/bad_videos/`` (shared by workers and
ranks, see :mod:`mme.data.bad_videos`). A user error raised in a worker reaches the main process
as raised, not as torch's wrapped traceback (:mod:`mme.train.worker_errors`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from mme.train.distributed import DistEnv, SeededDataset, ShardSampler, TrainSampler
from mme.train.worker_errors import PassWorkerErrors, UnwrappingLoader


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """Tensors to ``device`` (asynchronously from pinned memory); clips stay uint8 until normalised."""
    return {
        key: value.to(device, non_blocking=True) if isinstance(value, torch.Tensor) else value
        for key, value in batch.items()
    }


def make_loader(
    dataset: torch.utils.data.Dataset,
    sampler: torch.utils.data.Sampler,
    batch_size: int,
    runtime: Any,
    env: DistEnv,
    collate_fn: Callable[[list[Any]], Any] | None = None,
    tag_items: bool = False,
) -> torch.utils.data.DataLoader:
    from mme.data.datasets import worker_init_fn

    workers = runtime.workers
    return UnwrappingLoader(
        SeededDataset(dataset, tag_items),
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=runtime.pin_memory and env.device.type == "cuda",
        collate_fn=PassWorkerErrors(collate_fn or torch.utils.data.default_collate),
        worker_init_fn=worker_init_fn if workers > 0 else None,
        persistent_workers=workers > 0,
        prefetch_factor=runtime.prefetch_factor if workers > 0 else None,
        generator=torch.Generator().manual_seed(runtime.seed),
    )


def train_sampler(config: Any, env: DistEnv, size: int) -> TrainSampler:
    batch = config.batch
    return TrainSampler(
        size, batch.per_gpu, env.world_size, env.rank, num_repeats=batch.num_repeats, seed=config.runtime.seed
    )


def bad_video_dir(runtime: Any) -> Path:
    return Path(runtime.output_dir) / "bad_videos"


def pretrain_loader(config: Any, env: DistEnv) -> tuple[Any, torch.utils.data.DataLoader, TrainSampler]:
    from mme.data.datasets import PretrainDataset

    dataset = PretrainDataset(
        config.data, traj_config=config.traj, bad_video_dir=bad_video_dir(config.runtime)
    )
    sampler = train_sampler(config, env, len(dataset))
    return dataset, make_loader(dataset, sampler, config.batch.per_gpu, config.runtime, env), sampler


def classification_dataset(config: Any, mode: str, list_from: str | None = None) -> Any:
    """``mode`` train / val / test of ``data``; ``list_from`` (train / val / test) reads another
    list than the mode's (the probe encodes the train videos with the validation transform)."""
    from mme.data.datasets import VideoClassificationDataset

    return VideoClassificationDataset(
        config.data, mode, bad_video_dir=bad_video_dir(config.runtime), list_from=list_from
    )


def dataset_class_names(
    data: Any, list_file: str | None, num_classes: int, counted: str
) -> tuple[list[str], Path] | None:
    """The label names of ``data.classes_file``, else of ``classes.json`` beside ``list_file``
    (None without either), checked against ``num_classes``; ``counted`` says where that number
    comes from, for the error."""
    from mme.errors import ConfigError, DataError
    from mme.io.classes import find_class_names_file, read_class_names
    from mme.models.config import check_class_names

    path = find_class_names_file(data.classes_file, list_file)
    if path is None:
        return None
    source = f"{path} (data.classes_file)" if data.classes_file is not None else str(path)
    names = read_class_names(path)
    if len(names) != num_classes:
        raise DataError(f"{source} names {len(names)} classes, but {counted} {num_classes}")
    try:
        check_class_names(names, num_classes)  # unique, non-empty
    except ConfigError as error:
        raise DataError(f"{source}: {error}") from error
    return names, path


def finetune_loader(
    config: Any, env: DistEnv, dataset: Any
) -> tuple[torch.utils.data.DataLoader, TrainSampler]:
    """Training loader: each item holds ``data.num_sample`` augmented clips of one video, flattened
    into the batch by ``collate_repeated`` (so a batch has per_gpu x num_sample clips)."""
    from mme.data.datasets import collate_repeated

    sampler = train_sampler(config, env, len(dataset))
    loader = make_loader(dataset, sampler, config.batch.per_gpu, config.runtime, env, collate_repeated)
    return loader, sampler


def eval_loader(dataset: Any, batch_size: int, runtime: Any, env: DistEnv) -> torch.utils.data.DataLoader:
    """Rank ``r`` evaluates items ``r, r + W, ...`` (no padding, no duplicates)."""
    sampler = ShardSampler(len(dataset), env.world_size, env.rank, seed=runtime.seed)
    return make_loader(dataset, sampler, batch_size, runtime, env, tag_items=True)
