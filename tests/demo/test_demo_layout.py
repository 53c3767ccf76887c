"""The demo's bookkeeping: what counts as a finished stage, job times from logs, the folder guard."""

from __future__ import annotations

import fcntl
import json

import torch

from mme.cli.main import main
from mme.eval.evaluate import eval_done
from mme.models import create_model, save_model
from mme.models.saving import model_intact
from mme.train.run import run_finished
from mme.utils.logging import job_seconds


def _tiny_model(path):
    torch.manual_seed(0)
    model = create_model("vit_tiny_patch16_224", depth=1, num_frames=2, img_size=16, num_classes=3)
    return save_model(model, path)


def test_model_intact_rejects_truncated_or_foreign_folders(tmp_path):
    folder = _tiny_model(tmp_path / "model")
    assert model_intact(folder)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) - 64])
    assert not model_intact(folder)
    weights.write_bytes(data)
    (folder / "config.json").write_text("{not json")
    assert not model_intact(folder)
    assert not model_intact(tmp_path / "missing")


def test_training_done_needs_a_finished_summary_and_the_model(tmp_path):
    run = tmp_path / "run"
    _tiny_model(run / "model")
    assert not run_finished(run)
    (run / "summary.json").write_text(json.dumps({"finished": False}))
    assert not run_finished(run)
    (run / "summary.json").write_text(json.dumps({"finished": True}))
    assert run_finished(run)


def test_eval_done_needs_a_top1(tmp_path):
    path = tmp_path / "eval.json"
    assert not eval_done(path)
    path.write_text(json.dumps({"top5": 50.0}))
    assert not eval_done(path)
    path.write_text(json.dumps({"top1": 37.5}))
    assert eval_done(path)


def test_job_seconds_sums_the_pieces_of_a_resumed_run(tmp_path):
    log = tmp_path / "pretrain.jsonl"
    events = [
        {"time": 100.0, "kind": "start"},
        {"time": 104.0, "kind": "train", "step": 5},
        {"time": 110.0, "kind": "checkpoint"},  # killed after this: 10 s
        {"time": 500.0, "kind": "start"},
        {"time": 503.0, "kind": "train", "step": 10},
        {"time": 507.5, "kind": "summary"},  # resumed: 7.5 s
    ]
    log.write_text("".join(json.dumps(event) + "\n" for event in events))
    assert job_seconds(log) == 17.5


def test_a_second_demo_in_the_same_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    with open(out / "demo.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(["demo", "--quick", "--out", str(out)]) == 1
    assert "another mme demo is running" in capsys.readouterr().err
    assert not (out / "demo.json").exists()
