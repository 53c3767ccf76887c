"""A run stopped mid-epoch and resumed ends with exactly the weights of an uninterrupted run."""

from __future__ import annotations

import json
import os
import re
import signal

import pytest
import torch
from train_helpers import final_weights, read_jsonl, run_mme, tiny_finetune, tiny_pretrain

import mme.tasks.pretrain
from mme.utils.logging import current_records

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


def test_an_interrupt_is_recorded_and_the_resume_record_supersedes_the_redone_steps(
    synthetic_data, tmp_path, monkeypatch, capsys
):
    """SIGTERM in step 4 (checkpoints every 2 steps): step 3 was logged, then is trained again."""
    real_loss = mme.tasks.pretrain.masked_loss
    calls = {"n": 0}

    def loss_then_sigterm(predictions, targets, mask):
        calls["n"] += 1
        if calls["n"] == 4:
            os.kill(os.getpid(), signal.SIGTERM)  # what a cluster's time limit sends
        return real_loss(predictions, targets, mask)

    def not_handled(signum, frame):
        raise AssertionError("SIGTERM reached the test: the job did not handle it")

    out = tmp_path / "run"
    command = [*tiny_pretrain(synthetic_data, out, "runtime.checkpoint_every_steps=2"), "--resume", "auto"]
    monkeypatch.setattr(mme.tasks.pretrain, "masked_loss", loss_then_sigterm)
    before = signal.signal(signal.SIGTERM, not_handled)  # instead of killing pytest on a regression
    try:
        code = run_mme(command)
        handler_after = signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, before)
    assert code == 130 and handler_after is not_handled  # the job's own handler is gone
    err = capsys.readouterr().err
    assert "[train] step=3 epoch=0 loss=" in err and "mme pretrain: interrupted" in err
    checkpoint = out / "checkpoints" / "step-00000002.pt"
    interrupted = read_jsonl(out / "pretrain.jsonl")[-1]
    assert {k: interrupted[k] for k in ("kind", "signal", "step", "epoch", "last_checkpoint")} == {
        "kind": "interrupted", "signal": "SIGTERM", "step": 3, "epoch": 0, "last_checkpoint": str(checkpoint),
    }  # fmt: skip

    monkeypatch.setattr(mme.tasks.pretrain, "masked_loss", real_loss)
    assert run_mme(command) == 0
    records = read_jsonl(out / "pretrain.jsonl")
    kinds = [r["kind"] for r in records]
    resume = records[kinds.index("resume")]
    assert kinds[kinds.index("resume") - 1] == "start"
    assert (resume["checkpoint"], resume["step"], resume["epoch"]) == (str(checkpoint), 2, 0)
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3, 3, 4, 5, 6, 7, 8]
    current = current_records(records)
    assert [r["step"] for r in current if r["kind"] == "train"] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert [r["epoch"] for r in current if r["kind"] == "epoch"] == [0, 1]
    assert [r["kind"] for r in current].count("interrupted") == 1
    log = (out / "pretrain.log").read_text()
    assert "interrupted (SIGTERM) at step 3, epoch 0; --resume auto continues from" in log
    assert f"resuming from {checkpoint} (step 2, epoch 0)" in log
    assert "[epoch] step=4 epoch=0 loss=" in log and "[epoch] step=8 epoch=1 loss=" in log
    done = next(line for line in log.splitlines() if "pre-training done" in line)
    assert re.search(r"8 steps, final loss=\d\.\d{1,4}(e-\d+)? loss_hog=", done), done
