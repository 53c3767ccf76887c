"""Training and evaluation samplers: sharding, repeated augmentation, mid-epoch skipping, seeding."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest
import torch

from mme.data.loader import SeededDataset, ShardSampler, TrainSampler
from mme.errors import ConfigError


def _indices(sampler):
    return [index for index, _ in sampler]


def test_ranks_partition_the_epoch_and_repeats_go_to_different_ranks():
    samplers = [TrainSampler(10, batch_size=2, world_size=2, rank=r, num_repeats=2, seed=3) for r in range(2)]
    per_rank = [_indices(s) for s in samplers]
    assert [len(s) for s in samplers] == [10, 10]
    counts = Counter(per_rank[0] + per_rank[1])
    assert counts == dict.fromkeys(range(10), 2)  # every video exactly num_repeats times
    assert sorted(per_rank[0]) == list(range(10)) == sorted(per_rank[1])  # each rank sees each once
    seeds = [seed for s in samplers for _, seed in s]
    assert len(set(seeds)) == len(seeds)  # the two copies of a video get different augmentation


def test_drop_last_truncates_to_whole_global_batches():
    sampler = TrainSampler(11, batch_size=2, world_size=2, rank=0)
    assert len(sampler) == 4 and sampler.batches_per_epoch == 2
    padded = TrainSampler(11, batch_size=2, world_size=2, rank=1, drop_last=False)
    assert len(padded) == 6


def test_order_depends_on_epoch_and_seed_only():
    a = TrainSampler(20, batch_size=4, seed=1)
    b = TrainSampler(20, batch_size=4, seed=1)
    a.start(3)
    b.start(3)
    assert list(a) == list(b)
    b.start(4)
    assert _indices(a) != _indices(b)
    assert sorted(_indices(b)) == list(range(20))


def test_skip_continues_exactly_where_a_run_stopped():
    sampler = TrainSampler(20, batch_size=4, world_size=2, rank=1, seed=7)
    sampler.start(2)
    full = list(sampler)
    sampler.start(2, skip=6)
    assert list(sampler) == full[6:]
    assert len(sampler) == len(full) - 6
    with pytest.raises(ValueError):
        sampler.start(2, skip=len(full) + 1)


def test_too_small_dataset_for_one_global_batch():
    with pytest.raises(ConfigError, match="global batch"):
        TrainSampler(3, batch_size=2, world_size=2)


def test_shard_sampler_has_no_duplicates_and_covers_everything():
    shards = [_indices(ShardSampler(7, world_size=2, rank=r)) for r in range(2)]
    assert shards == [[0, 2, 4, 6], [1, 3, 5]]


class _RandomDataset(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int):
        return index, random.random(), float(np.random.rand()), float(torch.rand(()))


def test_seeded_dataset_ties_randomness_to_the_seed_and_restores_main_rng():
    dataset = SeededDataset(_RandomDataset())
    torch.manual_seed(0)
    before = torch.rand(3)
    torch.manual_seed(0)
    first = dataset[(1, 123)]
    again = dataset[(2, 123)]
    other = dataset[(1, 124)]
    assert first[1:] == again[1:]
    assert first[1:] != other[1:]
    assert torch.equal(torch.rand(3), before)  # main-process stream untouched


def test_loader_with_workers_matches_loader_without():
    dataset = SeededDataset(_RandomDataset())
    sampler = TrainSampler(4, batch_size=2, seed=5)
    plain = [b for b in torch.utils.data.DataLoader(dataset, batch_size=2, sampler=sampler, num_workers=0)]
    workers = [b for b in torch.utils.data.DataLoader(dataset, batch_size=2, sampler=sampler, num_workers=2)]
    for a, b in zip(plain, workers, strict=True):
        for x, y in zip(a, b, strict=True):
            assert torch.equal(x, y)


def test_cpu_threads_leave_a_core_to_each_loader_worker(monkeypatch):
    from mme.train.distributed import cpu_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(8)))
    assert cpu_threads(workers=0) == 8
    assert cpu_threads(workers=2) == 6
    assert cpu_threads(workers=2, local_world_size=2) == 2
    assert cpu_threads(workers=10) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_threads(workers=2) is None  # the user's setting wins
