"""User mistakes end with one clear message and exit code 1, and never damage an existing run."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from train_helpers import run_mme, tiny_eval, tiny_finetune, tiny_pretrain

import mme.tasks.pretrain
from mme.train.checkpoint import load_checkpoint


@pytest.fixture
def finished_run(pretrain_run):
    """The shared pre-training run (checkpoints at steps 12, 16, 20); these tests must not change it."""
    return pretrain_run


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
            and p.suffix in (".pt", ".yaml", ".json", ".safetensors", ".log", ".jsonl")}  # fmt: skip


def _fails(args, capsys, *expected):
    capsys.readouterr()
    assert run_mme(args) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, err
    return err


def test_bad_keys_types_and_ranges_name_the_key(synthetic_data, finished_run, tmp_path, capsys):
    before = _snapshot(finished_run)
    cases = [
        (["optim.lrr=1"], "unknown config key 'optim.lrr'"),
        (["batch.per_gpu=two"], "invalid value for key 'batch.per_gpu'"),
        (["data.mask_ratio=1.5"], "data.mask_ratio must be in (0.0, 1.0]"),
        (["optim.base_lr=-1"], "optim.base_lr must be > 0"),
        (["runtime.precision=fp8"], "runtime.precision must be fp32, bf16 or fp16"),
        (["targets.traj_steps=2"], "'targets.traj_steps' is no longer a setting; the value lives in traj"),
        (["model.name=vit_tiny_patch16_224"], "model.name 'vit_tiny_patch16_224' is not a pretrain model"),
        (["model.overrides.depthh=2"], "unknown config key 'model.overrides.depthh'; known keys there: dec"),
    ]
    for extra, message in cases:
        _fails([*tiny_pretrain(synthetic_data, finished_run, *extra), "--resume", "auto"], capsys, message)
    assert _snapshot(finished_run) == before


def test_bad_key_in_a_yaml_file_names_the_file(synthetic_data, tmp_path, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("_base_: base.yaml\nschedule:\n  epochs: 1\n")
    (tmp_path / "base.yaml").write_text("optim:\n  weight_decai: 0.1\n")
    args = tiny_pretrain(synthetic_data, tmp_path / "out")
    args[args.index("--config") + 1] = str(recipe)
    _fails(args, capsys, f"{tmp_path / 'base.yaml'}: unknown config key 'optim.weight_decai'")
    assert not (tmp_path / "out").exists()


def test_missing_list_file_leaves_the_run_untouched(synthetic_data, finished_run, capsys):
    before = _snapshot(finished_run)
    missing = synthetic_data / "nope.csv"
    args = [*tiny_pretrain(synthetic_data, finished_run, f"data.train_list={missing}"), "--resume", "auto"]
    _fails(args, capsys, str(missing))
    assert _snapshot(finished_run) == before


def test_missing_list_file_in_a_new_run_leaves_no_files(synthetic_data, tmp_path, capsys):
    missing, out = synthetic_data / "nope.csv", tmp_path / "new"
    _fails(tiny_pretrain(synthetic_data, out, f"data.train_list={missing}"), capsys, str(missing))
    assert not out.exists()  # no empty pretrain.log / pretrain.jsonl


def test_unreadable_checkpoints(synthetic_data, finished_run, tmp_path, capsys):
    before = _snapshot(finished_run)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 100)
    _fails(
        [*tiny_pretrain(synthetic_data, finished_run), "--resume", str(junk)], capsys, "junk.pt", "unreadable"
    )
    _fails([*tiny_pretrain(synthetic_data, finished_run), "--resume", str(tmp_path / "gone.pt")], capsys,
           "gone.pt: no such checkpoint file")  # fmt: skip
    _fails(tiny_finetune(synthetic_data, tmp_path / "ft", f"model.init_from={junk}"), capsys, "junk.pt")
    _fails(tiny_eval(synthetic_data, junk, tmp_path / "ev"), capsys, "junk.pt")
    assert _snapshot(finished_run) == before
    assert not list((tmp_path / "ft").rglob("*.pt"))


def test_resume_auto_skips_a_corrupt_latest_checkpoint(synthetic_data, finished_run, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(finished_run / "checkpoints", copy / "checkpoints")
    latest = copy / "checkpoints" / "step-00000020.pt"
    latest.write_bytes(latest.read_bytes()[:1000])  # a torn write from a crashed node
    args = [*tiny_pretrain(synthetic_data, copy, "schedule.epochs=5"), "--resume", "auto"]
    capsys.readouterr()
    assert run_mme(args) == 0
    log = (copy / "pretrain.log").read_text()
    assert "step-00000020.pt is unreadable" in log
    assert "resuming from" in log and "step-00000016.pt (step 16, epoch 4)" in log
    assert "the config differs from the checkpoint's in: runtime.keep_last, runtime.tensorboard" in log
    assert load_checkpoint(copy / "checkpoints" / "step-00000020.pt")["step"] == 20  # rewritten intact


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(
    synthetic_data, tmp_path, capsys, monkeypatch
):
    real_loss = mme.tasks.pretrain.masked_loss
    calls = {"n": 0}

    def loss_that_explodes(predictions, targets, mask):
        calls["n"] += 1
        total, terms = real_loss(predictions, targets, mask)
        if calls["n"] >= 3:
            terms["traj"] = terms["traj"] * float("nan")
            total = torch.stack(list(terms.values())).mean()
        return total, terms

    monkeypatch.setattr(mme.tasks.pretrain, "masked_loss", loss_that_explodes)
    out = tmp_path / "run"
    args = tiny_pretrain(synthetic_data, out, "runtime.checkpoint_every_steps=1")
    _fails(args, capsys, "loss is nan in step 3 (epoch 0)", "traj=nan", "hog=")
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names == ["step-00000001.pt", "step-00000002.pt"]
    state = load_checkpoint(out / "checkpoints" / "step-00000002.pt", for_resume=True)
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert not (out / "model").exists()


def test_bad_videos_are_counted_and_past_the_limit_stop_the_run(synthetic_data, tmp_path, capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 definitely not a video")
    lines = (synthetic_data / "train.csv").read_text().splitlines()
    listing = tmp_path / "train.csv"
    listing.write_text(
        "\n".join([lines[0], f"{broken},0", *(f"{synthetic_data / p}" for p in lines[1:])]) + "\n"
    )
    one_epoch = (f"data.train_list={listing}", "schedule.epochs=1")
    tolerant = tiny_pretrain(synthetic_data, tmp_path / "ok", *one_epoch, "data.max_bad_fraction=0.2")
    assert run_mme(tolerant) == 0
    summary = json.loads((tmp_path / "ok" / "summary.json").read_text())
    assert summary["bad_videos"] == 1 and summary["finished"]
    assert "broken.mp4" in "".join(p.read_text() for p in (tmp_path / "ok" / "bad_videos").iterdir())
    strict = tiny_pretrain(synthetic_data, tmp_path / "strict", *one_epoch)
    _fails(strict, capsys, "broken.mp4", "data.max_bad_fraction")


def test_a_data_error_in_a_loader_worker_prints_one_clear_message(synthetic_data, tmp_path, capsys):
    missing = tmp_path / "gone.mp4"
    lines = (synthetic_data / "train.csv").read_text().splitlines()
    listing = tmp_path / "train.csv"
    listing.write_text("\n".join([lines[0], f"{missing},0", *(f"{synthetic_data / p}" for p in lines[1:])]))
    out = tmp_path / "run"
    sets = (f"data.train_list={listing}", "data.max_bad_fraction=0", "runtime.workers=1", "schedule.epochs=1")
    err = _fails(tiny_pretrain(synthetic_data, out, *sets), capsys)
    # The message as raised in the worker, as it reads with workers=0: no torch wrapping around it.
    assert err.endswith(
        "mme pretrain: error: 1 of 10 videos are bad, more than data.max_bad_fraction=0.0 allows (0); "
        f"records in {out / 'bad_videos'}:\n  {missing}: video not found: {missing}\n"
    ), err
    assert [line for line in err.splitlines() if line.startswith("mme ")] == [err.splitlines()[-2]]
    assert "worker process" not in err
