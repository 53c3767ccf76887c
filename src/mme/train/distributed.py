"""Process-group setup, device selection and the samplers of distributed training.

Launch with ``torchrun`` (one process per GPU; multi-node through its rendezvous arguments, see
docs/training.md). Without the torchrun environment a run is a single process. NCCL is used on
GPUs, gloo on CPU. Rank 0 alone writes logs, TensorBoard and checkpoints.

The samplers are written here rather than taken from ``torch.utils.data`` because training
needs repeated augmentation and an exact mid-epoch resume, and evaluation needs shards without
padding duplicates (so N ranks reproduce the single-process metrics exactly).
"""

from __future__ import annotations

import datetime
import math
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from mme.errors import ConfigError, MMEError
from mme.train.worker_errors import capture


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def select_device(requested: str, local_rank: int = 0) -> torch.device:
    """``auto`` = ``cuda:LOCAL_RANK`` when CUDA is available, else CPU; ``cuda`` insists on it."""
    if requested not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"runtime.device must be auto, cpu or cuda, got {requested!r}")
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("runtime.device is 'cuda' but no CUDA device is available")
    if local_rank >= torch.cuda.device_count():
        raise ConfigError(
            f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA devices are visible"
        )
    return torch.device("cuda", local_rank)


def cpu_threads(workers: int, local_world_size: int = 1) -> int | None:
    """Intra-op threads of a process training on CPU, or None when ``OMP_NUM_THREADS`` decides.

    The cores left after the loader workers (one core each) are shared by the local ranks. More
    threads than free cores do not just stop helping: OpenMP's waiting threads then compete with
    the workers and a step gets many times slower (measured: 0.11 s with 1 thread, 4 s with 2 on
    2 busy cores).
    """
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(local_world_size, 1) - workers)


def setup_device(requested: str, local_rank: int = 0) -> torch.device:
    """:func:`select_device`, made current, with TF32 matmuls/convolutions on Ampere+ GPUs (free
    speed; bf16/fp16 autocast is coarser anyway) and cuDNN autotuning."""
    device = select_device(requested, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    return device


def init_distributed(requested_device: str = "auto", timeout_min: int = 30) -> DistEnv:
    """Join the torchrun process group when launched by torchrun, else run as one process; the
    device is set up by :func:`setup_device`."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = setup_device(requested_device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(
            backend=backend,
            timeout=datetime.timedelta(minutes=timeout_min),
            device_id=device if device.type == "cuda" else None,
        )
    return DistEnv(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def shutdown_distributed(wait_for_peers: bool = True) -> None:
    if dist.is_available() and dist.is_initialized():
        # After a finished job every rank waits for the others before tearing its group down: a
        # gloo rank whose peer destroyed the group first can abort at exit ("terminate called
        # without an active exception", seen in the two-process test). Not after an error, where
        # a peer may never arrive.
        if wait_for_peers:
            dist.barrier()
        dist.destroy_process_group()


def all_reduce_mean(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Average scalar metrics over ranks (identity in a single process)."""
    if not (dist.is_available() and dist.is_initialized()) or not values:
        return values
    keys = sorted(values)
    packed = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(packed)
    packed /= dist.get_world_size()
    return dict(zip(keys, packed.tolist(), strict=True))


def gather_to_main(obj: Any) -> list[Any] | None:
    """Collect one picklable object from every rank on rank 0 (``None`` elsewhere)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out: list[Any] | None = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(obj, out, dst=0)
    return out


def broadcast_from_main(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def sample_seed(seed: int, epoch: int, position: int) -> int:
    """A 63-bit seed for the sample at ``position`` of ``epoch``'s global order.

    Augmentation randomness keyed on the position (not on a worker's RNG stream) makes a run
    independent of the number of loader workers and of where it was resumed.
    """
    generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 1_000_003 + position)
    return int(torch.randint(0, 2**63 - 1, (1,), generator=generator).item())


class TrainSampler(torch.utils.data.Sampler):
    """Shuffled, rank-sharded training order with repeated augmentation and mid-epoch resume.

    Each epoch draws one permutation of the dataset from ``(seed, epoch)``, repeats every index
    ``num_repeats`` times consecutively, pads (by wrapping) to a multiple of
    ``world_size x batch_size`` when ``drop_last`` is false (or truncates to it when true), and
    deals the stream round-robin: rank ``r`` takes positions ``r, r + W, ...``, so the repeats of
    one video land on different ranks, each with its own augmentation (RASampler of DeiT).
    The sampler yields ``(index, sample_seed)`` pairs; wrap the dataset in :class:`SeededDataset`.

    ``start(epoch, skip)`` positions it after the first ``skip`` samples of this rank in
    ``epoch`` (what a checkpoint recorded as consumed), which is how a resumed run continues
    with exactly the samples an uninterrupted run would have seen.
    """

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
    """Evaluation order: rank ``r`` takes indices ``r, r + W, ...`` in dataset order, no padding.

    Ranks may get one sample less than others; nothing is duplicated, so gathering the shards
    gives every sample exactly once. Yields ``(index, sample_seed)`` like :class:`TrainSampler`.
    """

    def __init__(self, dataset_size: int, world_size: int = 1, rank: int = 0, seed: int = 0) -> None:
        self.indices = range(rank, dataset_size, world_size)
        self.seed = seed

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for index in self.indices:
            yield index, sample_seed(self.seed, 0, index)

    def __len__(self) -> int:
        return len(self.indices)


class SeededDataset(torch.utils.data.Dataset):
    """Seeds Python's, NumPy's and torch's global RNGs from the sampler's per-sample seed.

    The datasets draw their augmentation from these global generators; re-seeding them per
    sample ties every clip's randomness to its place in the epoch (see :func:`sample_seed`).
    In the main process (``workers=0``) the generators are restored afterwards, so the training
    step's own randomness (drop-path, mixup) keeps its stream. ``tag_items=True`` adds the item's
    index as ``"item"`` to each (dict) sample, for evaluation to know which view it scored.
    In a worker, a user error is returned as a :class:`~mme.train.worker_errors.WorkerError`
    item, which the loader of :func:`mme.train.data.make_loader` raises in the main process.
    """

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
                # torch would bury the message in its traceback text (see mme.train.worker_errors).
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
