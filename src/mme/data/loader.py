"""Samplers, per-sample seeds and loaders: a clip depends only on the run seed and its epoch position."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from mme.data.worker_errors import PassWorkerErrors, UnwrappingLoader, capture
from mme.errors import ConfigError, MMEError


class Placement(Protocol):
    """Where a process sits in the job (``mme.train.distributed.DistEnv`` is one)."""

    rank: int
    world_size: int
    device: torch.device


def sample_seed(seed: int, epoch: int, position: int) -> int:
    """A 63-bit seed for the sample at ``position`` of ``epoch``'s global order."""
    generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 1_000_003 + position)
    return int(torch.randint(0, 2**63 - 1, (1,), generator=generator).item())


class TrainSampler(torch.utils.data.Sampler):
    """Shuffled, rank-sharded order with repeated augmentation and mid-epoch resume (docs/training.md)."""

    def __init__(
        self,
        dataset_size: int,
        batch_size: int,
        world_size: int = 1,
        rank: int = 0,
        num_repeats: int = 1,
        shuffle: bool = True,
        drop_last: bool = True,
        seed: int = 0,
    ) -> None:
        if dataset_size < 1:
            raise ValueError("cannot sample from an empty dataset")
        if num_repeats < 1:
            raise ValueError(f"num_repeats must be >= 1, got {num_repeats}")
        self.dataset_size = dataset_size
        self.batch_size = batch_size
        self.world_size = world_size
        self.rank = rank
        self.num_repeats = num_repeats
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = seed
        self.epoch = 0
        self.skip = 0
        chunk = world_size * batch_size
        stream = dataset_size * num_repeats
        self.total = (stream // chunk) * chunk if drop_last else math.ceil(stream / chunk) * chunk
        if self.total == 0:
            raise ConfigError(
                f"{dataset_size} samples x {num_repeats} repeats cannot fill one global batch of "
                f"{chunk} ({world_size} ranks x {batch_size}); lower the batch size"
            )
        self.per_rank = self.total // world_size

    @property
    def batches_per_epoch(self) -> int:
        return self.per_rank // self.batch_size

    def start(self, epoch: int, skip: int = 0) -> None:
        if not 0 <= skip <= self.per_rank:
            raise ValueError(f"cannot skip {skip} of {self.per_rank} samples")
        self.epoch, self.skip = epoch, skip

    def global_order(self, epoch: int) -> list[int]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(self.dataset_size, generator=generator)
        else:
            order = torch.arange(self.dataset_size)
        stream = order.repeat_interleave(self.num_repeats).tolist()
        while len(stream) < self.total:
            stream += stream[: self.total - len(stream)]
        return stream[: self.total]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        stream = self.global_order(self.epoch)
        for local in range(self.skip, self.per_rank):
            position = local * self.world_size + self.rank
            yield stream[position], sample_seed(self.seed, self.epoch, position)

    def __len__(self) -> int:
        return self.per_rank - self.skip


class ShardSampler(torch.utils.data.Sampler):
    """Evaluation order: rank ``r`` takes ``r, r + W, ...``, no padding; shards gather to each item once."""

    def __init__(self, dataset_size: int, world_size: int = 1, rank: int = 0, seed: int = 0) -> None:
        self.indices = range(rank, dataset_size, world_size)
        self.seed = seed

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for index in self.indices:
            yield index, sample_seed(self.seed, 0, index)

    def __len__(self) -> int:
        return len(self.indices)


class SeededDataset(torch.utils.data.Dataset):
    """Seeds the global RNGs per sample (restored after in the main process); worker errors become items."""

    def __init__(self, dataset: torch.utils.data.Dataset, tag_items: bool = False) -> None:
        self.dataset = dataset
        self.tag_items = tag_items

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        if torch.utils.data.get_worker_info() is not None:
            _seed_all(seed)
            try:
                return self._get(index)
            except MMEError as error:
                # torch would bury the message in its traceback text (see mme.data.worker_errors).
                return capture(error)
        saved = (random.getstate(), np.random.get_state(), torch.get_rng_state())
        try:
            _seed_all(seed)
            return self._get(index)
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.set_rng_state(saved[2])

    def _get(self, index: int) -> Any:
        sample = self.dataset[index]
        if self.tag_items:
            sample = {**sample, "item": index}
        return sample


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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
    env: Placement,
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


def train_sampler(config: Any, env: Placement, size: int) -> TrainSampler:
    batch = config.batch
    return TrainSampler(
        size, batch.per_gpu, env.world_size, env.rank, num_repeats=batch.num_repeats, seed=config.runtime.seed
    )


def bad_video_dir(runtime: Any) -> Path:
    return Path(runtime.output_dir) / "bad_videos"


def pretrain_loader(config: Any, env: Placement) -> tuple[Any, torch.utils.data.DataLoader, TrainSampler]:
    from mme.data.datasets import PretrainDataset

    dataset = PretrainDataset(
        config.data, traj_config=config.traj, bad_video_dir=bad_video_dir(config.runtime)
    )
    sampler = train_sampler(config, env, len(dataset))
    return dataset, make_loader(dataset, sampler, config.batch.per_gpu, config.runtime, env), sampler


def classification_dataset(config: Any, mode: str, list_from: str | None = None) -> Any:
    """``mode`` train / val / test of ``data``; ``list_from`` reads another mode's list (the probe)."""
    from mme.data.datasets import VideoClassificationDataset

    return VideoClassificationDataset(
        config.data, mode, bad_video_dir=bad_video_dir(config.runtime), list_from=list_from
    )


def finetune_loader(
    config: Any, env: Placement, dataset: Any
) -> tuple[torch.utils.data.DataLoader, TrainSampler]:
    """Training loader; ``collate_repeated`` flattens ``num_sample`` clips per video into the batch."""
    from mme.data.datasets import collate_repeated

    sampler = train_sampler(config, env, len(dataset))
    loader = make_loader(dataset, sampler, config.batch.per_gpu, config.runtime, env, collate_repeated)
    return loader, sampler


def eval_loader(dataset: Any, batch_size: int, runtime: Any, env: Placement) -> torch.utils.data.DataLoader:
    """Rank ``r`` evaluates items ``r, r + W, ...`` (no padding, no duplicates)."""
    sampler = ShardSampler(len(dataset), env.world_size, env.rank, seed=runtime.seed)
    return make_loader(dataset, sampler, batch_size, runtime, env, tag_items=True)
