"""A run stopped mid-epoch and resumed ends with exactly the weights of an uninterrupted run."""

from __future__ import annotations

import json

import pytest
import torch
from train_helpers import final_weights, run_mme, tiny_finetune, tiny_pretrain

JOBS = {"pretrain": tiny_pretrain, "finetune": tiny_finetune}


@pytest.mark.parametrize(
    ("job", "extra", "stop_every", "stops"),
    [
        # 4 steps per epoch, 8 in all: jobs end at steps 3 (mid-epoch 0), 6 (mid-epoch 1), 8
        ("pretrain", ["schedule.epochs=2"], 3, [3, 6]),
        # drop-path, mixup/cutmix, RandAugment, accumulation over 2 batches, every video twice per
        # epoch (repeated augmentation): 18 samples = 9 batches = 4 steps; jobs end at 3, 4
        (
            "finetune",
            [
                "schedule.epochs=1",
                "batch.update_freq=2",
                "batch.num_repeats=2",
                "validation.test_at_end=false",
            ],
            3,
            [3],
        ),
    ],
)
def test_jobs_stopped_and_resumed_equal_one_uninterrupted_run(
    synthetic_data, tmp_path, monkeypatch, job, extra, stop_every, stops
):
    # Bitwise equality on CPU needs the same intra-op thread count in every job; by default the
    # trainer gives the cores the loader workers leave (mme.train.distributed.cpu_threads).
    monkeypatch.setenv("OMP_NUM_THREADS", str(torch.get_num_threads()))
    build = JOBS[job]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert run_mme(build(synthetic_data, whole, *extra)) == 0

    # The same command, submitted again and again as on a cluster with a time limit. These jobs
    # use two loader workers: randomness is per sample, not per worker.
    limited = (*extra, "runtime.workers=2", f"runtime.stop_after_steps={stop_every}")
    command = [*build(synthetic_data, parts, *limited), "--resume", "auto"]
    for stop in stops:
        assert run_mme(command) == 0
        summary = json.loads((parts / "summary.json").read_text())
        assert summary["finished"] is False and summary["steps"] == stop
        assert (parts / "checkpoints" / f"step-{stop:08d}.pt").is_file()
        assert not (parts / "model").exists()
    assert run_mme(command) == 0
    assert json.loads((parts / "summary.json").read_text())["finished"] is True

    expected, got = final_weights(whole), final_weights(parts)
    assert expected.keys() == got.keys()
    for name, value in expected.items():
        assert torch.equal(value, got[name]), name
    log = (parts / f"{job}.log").read_text()
    for stop in stops:
        assert f"step-{stop:08d}.pt (step {stop}" in log


def test_new_run_refuses_a_folder_with_checkpoints(synthetic_data, pretrain_run, capsys):
    before = {p.name: p.read_bytes() for p in (pretrain_run / "checkpoints").iterdir()}
    config_before = (pretrain_run / "config.yaml").read_text()
    capsys.readouterr()
    assert run_mme(tiny_pretrain(synthetic_data, pretrain_run, "optim.base_lr=1.0")) == 1
    assert "already holds checkpoints" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (pretrain_run / "checkpoints").iterdir()} == before
    assert (pretrain_run / "config.yaml").read_text() == config_before
