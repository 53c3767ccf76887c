"""Checkpoint files: atomic, keep-last-k, RNG round trip, latest intact one, clear errors."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from mme.errors import CheckpointError
from mme.train.checkpoint import CheckpointDir, capture_rng, load_checkpoint, restore_rng, save_checkpoint


def _state(step: int) -> dict:
    return {
        "model": {"w": torch.full((2,), float(step))},
        "model_config": {"name": "tiny"},
        "optimizer": {"state": {}, "param_groups": []},
        "scaler": None,
        "step": step,
        "epoch": 0,
        "sampler": {"epoch": 0, "skip": step},
        "rng": {"per_rank": [capture_rng()]},
        "config": {"runtime": {"seed": 0}},
        "metrics": {},
    }


def test_rng_round_trip_through_a_weights_only_file(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.randn()  # leaves a cached gaussian in NumPy's state
    path = save_checkpoint(_state(1), tmp_path / "c.pt")
    expected = (random.random(), np.random.randn(), torch.rand(2))
    restore_rng(load_checkpoint(path, for_resume=True)["rng"]["per_rank"][0])
    got = (random.random(), np.random.randn(), torch.rand(2))
    assert got[:2] == expected[:2] and torch.equal(got[2], expected[2])


def test_keep_last_k_and_best(tmp_path):
    folder = CheckpointDir(tmp_path / "checkpoints", keep_last=2)
    for step in (10, 20, 30):
        folder.save(_state(step))
    folder.save_best(_state(20))
    assert [s for s, _ in folder.steps()] == [20, 30]
    assert load_checkpoint(folder.best_path)["step"] == 20
    path, state = folder.latest()
    assert path.name == "step-00000030.pt" and state["step"] == 30


class _Log:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, message: str, *args) -> None:
        self.warnings.append(message % args)


def test_latest_skips_a_corrupt_newest_checkpoint_with_a_warning(tmp_path):
    folder = CheckpointDir(tmp_path, keep_last=3)
    folder.save(_state(1))
    good = folder.save(_state(2)).read_bytes()
    folder.step_path(3).write_bytes(good[: len(good) // 2])  # a truncated write
    (tmp_path / "step-00000004.pt.tmp-abc").write_bytes(b"partial")  # a killed atomic write
    log = _Log()
    path, state = folder.latest(log)
    assert state["step"] == 2 and path.name == "step-00000002.pt"
    assert len(log.warnings) == 1 and "step-00000003.pt is unreadable" in log.warnings[0]
    assert folder.step_path(3).exists()  # never deleted: the user may want to inspect it


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"junk\.pt is unreadable"):
        load_checkpoint(junk)
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": {}}, foreign)
    with pytest.raises(CheckpointError, match="not an mme training checkpoint"):
        load_checkpoint(foreign)
    partial = _state(1)
    del partial["optimizer"]
    save_checkpoint(partial, tmp_path / "partial.pt")
    assert load_checkpoint(tmp_path / "partial.pt")["step"] == 1
    with pytest.raises(CheckpointError, match="lacks optimizer"):
        load_checkpoint(tmp_path / "partial.pt", for_resume=True)


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = save_checkpoint(_state(1), tmp_path / "c.pt")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        save_checkpoint(_state(2), path)
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]
