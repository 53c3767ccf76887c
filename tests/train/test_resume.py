"""A run stopped mid-epoch and resumed ends with exactly the weights of an uninterrupted run."""

from __future__ import annotations

import json

import pytest
import torch
from train_helpers import final_weights, run_mme, tiny_finetune, tiny_pretrain

JOBS = {"pretrain": tiny_pretrain, "finetune": tiny_finetune}


@pytest.mark.parametrize(
    ("job", "extra", "stop_at"),
    [
        # 4 steps per epoch: step 6 is in the middle of epoch 1
        ("pretrain", ["schedule.epochs=2"], 6),
        # drop-path, mixup/cutmix, RandAugment, accumulation over 2 batches, every video twice per
        # epoch (repeated augmentation): 18 samples = 9 batches = 4 steps per epoch
        (
            "finetune",
            [
                "schedule.epochs=1",
                "batch.update_freq=2",
                "batch.num_repeats=2",
                "validation.test_at_end=false",
            ],
            3,
        ),
    ],
)
def test_stop_and_resume_equals_uninterrupted(synthetic_data, tmp_path, job, extra, stop_at):
    build = JOBS[job]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert run_mme(build(synthetic_data, whole, *extra)) == 0

    # The interrupted run also uses two loader workers: randomness is per sample, not per worker.
    stopped = build(synthetic_data, parts, *extra, "runtime.workers=2", f"runtime.stop_after_steps={stop_at}")
    assert run_mme(stopped) == 0
    summary = json.loads((parts / "summary.json").read_text())
    assert summary["finished"] is False and summary["steps"] == stop_at
    assert (parts / "checkpoints" / f"step-{stop_at:08d}.pt").is_file()
    assert not (parts / "model").exists()

    assert run_mme([*build(synthetic_data, parts, *extra), "--resume", "auto"]) == 0
    assert json.loads((parts / "summary.json").read_text())["finished"] is True
    expected, got = final_weights(whole), final_weights(parts)
    assert expected.keys() == got.keys()
    for name, value in expected.items():
        assert torch.equal(value, got[name]), name
    log = (parts / f"{job}.log").read_text()
    assert f"step-{stop_at:08d}.pt (step {stop_at}" in log


def test_new_run_refuses_a_folder_with_checkpoints(synthetic_data, pretrain_run, capsys):
    before = {p.name: p.read_bytes() for p in (pretrain_run / "checkpoints").iterdir()}
    config_before = (pretrain_run / "config.yaml").read_text()
    capsys.readouterr()
    assert run_mme(tiny_pretrain(synthetic_data, pretrain_run, "optim.base_lr=1.0")) == 1
    assert "already holds checkpoints" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (pretrain_run / "checkpoints").iterdir()} == before
    assert (pretrain_run / "config.yaml").read_text() == config_before
