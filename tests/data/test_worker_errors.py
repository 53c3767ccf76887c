"""A user error raised in a DataLoader worker reaches the main process as raised; bugs keep torch's report."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from mme.data.loader import ShardSampler, make_loader
from mme.data.worker_errors import RemoteTraceback
from mme.errors import DataError


class _FailsAt(torch.utils.data.Dataset):
    def __init__(self, error: Exception) -> None:
        self.error = error

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> torch.Tensor:
        if index == 2:
            raise self.error
        return torch.tensor(index)


def _batches(dataset: torch.utils.data.Dataset) -> list[torch.Tensor]:
    runtime = SimpleNamespace(workers=1, pin_memory=False, prefetch_factor=2, seed=0)
    env = SimpleNamespace(device=torch.device("cpu"))
    return list(make_loader(dataset, ShardSampler(len(dataset), 1, 0), 2, runtime, env))


def test_user_error_in_a_worker_is_raised_as_is_with_the_worker_traceback_as_cause():
    with pytest.raises(DataError) as caught:
        _batches(_FailsAt(DataError("clip.mp4: no frames")))
    assert str(caught.value) == "clip.mp4: no frames"
    cause = caught.value.__cause__
    assert isinstance(cause, RemoteTraceback)  # shown under MME_DEBUG
    assert "in __getitem__" in str(cause) and "DataError: clip.mp4: no frames" in str(cause)


def test_a_bug_in_a_worker_keeps_torchs_report():
    with pytest.raises(ZeroDivisionError, match="Caught ZeroDivisionError in DataLoader worker process 0"):
        _batches(_FailsAt(ZeroDivisionError("a bug")))


def test_batches_without_errors_are_unchanged():
    class _Fine(_FailsAt):
        def __getitem__(self, index: int) -> torch.Tensor:
            return torch.tensor(index)

    assert [b.tolist() for b in _batches(_Fine(DataError("unused")))] == [[0, 1], [2, 3]]
