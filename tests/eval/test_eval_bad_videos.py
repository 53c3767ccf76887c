"""Evaluation never scores a video it cannot decode, and every list's labels are checked up front.

A broken test video used to be replaced by another sample (the training policy) and scored under
its own path and label; a val/test label the model has no output for used to crash the metrics
after training. Everything runs through the ``mme`` entry point on the synthetic data.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from train_helpers import read_jsonl, run_mme, tiny_eval, tiny_finetune, tiny_probe, torchrun


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> Path:
    """A 3-class two-block ViT-tiny with a confident, varied head (the initial head is ~uniform)."""
    from mme.models import create_model, save_model

    torch.manual_seed(0)
    model = create_model("vit_tiny_patch16_224", num_classes=3, depth=2, num_frames=4, img_size=32)
    with torch.no_grad():
        model.head.weight.normal_(0, 1.0)
    out = tmp_path_factory.mktemp("classifier") / "model"
    save_model(model, out)
    return out


def broken_videos(synthetic_data: Path, folder: Path) -> list[Path]:
    """A text file named .mp4 and the first half of a real video (its index is at the end)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = folder / "notes.mp4"
    text.write_text("not a video, just text\n")
    real = next((synthetic_data / "videos").rglob("*.mp4")).read_bytes()
    half = folder / "half_written.mp4"
    half.write_bytes(real[: len(real) // 2])
    return [text, half]


def with_broken(synthetic_data: Path, split: str, broken: list[Path], out: Path) -> Path:
    """``split``.csv of the synthetic data with absolute paths, then the broken videos (label 1)."""
    header, *lines = (synthetic_data / f"{split}.csv").read_text().splitlines()
    rows = [f"{synthetic_data / line}" for line in lines] + [f"{path},1" for path in broken]
    out.write_text("\n".join([header, *rows]) + "\n")
    (out.parent / "classes.json").write_bytes((synthetic_data / "classes.json").read_bytes())  # same names
    return out


def test_eval_excludes_videos_it_cannot_decode(synthetic_data, classifier, tmp_path, capsys):
    broken = broken_videos(synthetic_data, tmp_path / "broken")
    listing = with_broken(synthetic_data, "test", broken, tmp_path / "test.csv")
    clean, tolerant = tmp_path / "clean", tmp_path / "tolerant"
    assert run_mme(tiny_eval(synthetic_data, classifier, clean)) == 0
    workers = ("runtime.workers=2", "batch.per_gpu=4")  # failures must travel back from workers
    args = tiny_eval(synthetic_data, classifier, tolerant, f"data.test_list={listing}", *workers)
    assert run_mme([*args, "--set", "data.max_bad_fraction=0.5"]) == 0

    expected = json.loads((clean / "eval.json").read_text())
    result = json.loads((tolerant / "eval.json").read_text())
    assert result["videos"] == 3 and result["views"] == 18 and result["failed_videos"] == 2
    assert [(f["video"], f["path"]) for f in result["failed"]] == [(3, str(broken[0])), (4, str(broken[1]))]
    assert all("cannot open video" in f["reason"] for f in result["failed"])
    # the numbers are exactly those of the 3 good videos alone
    for key in ("top1", "top5", "view_top1", "view_top5", "per_class_accuracy"):
        assert result[key] == expected[key], key
    assert (tolerant / "confusion.csv").read_text() == (clean / "confusion.csv").read_text()
    predictions = read_jsonl(tolerant / "predictions.jsonl")
    assert predictions[:3] == read_jsonl(clean / "predictions.jsonl")
    for record, path in zip(predictions[3:], broken, strict=True):
        assert record["path"] == str(path) and record["label"] == 1 and record["failed"] is True
        assert "cannot open video" in record["reason"] and "prediction" not in record
    log = (tolerant / "eval.log").read_text()
    assert all(f"excluded from the scores, cannot be decoded: {path}" in log for path in broken)
    assert "2 video(s) excluded" in log

    # at the default data.max_bad_fraction (1 %) the job stops, naming them
    capsys.readouterr()
    assert (
        run_mme(tiny_eval(synthetic_data, classifier, tmp_path / "strict", f"data.test_list={listing}")) == 1
    )
    err = capsys.readouterr().err
    assert "2 of 5 videos are bad, more than data.max_bad_fraction=0.01 allows (0)" in err
    assert str(broken[0]) in err and str(broken[1]) in err and "Traceback" not in err


def test_distributed_eval_excludes_the_same_videos(synthetic_data, classifier, tmp_path):
    """2 ranks with a loader worker each (1 clip x 3 crops: 15 views, split unevenly)."""
    broken = broken_videos(synthetic_data, tmp_path / "broken")
    listing = with_broken(synthetic_data, "test", broken, tmp_path / "test.csv")
    sets = (
        f"data.test_list={listing}",
        "data.max_bad_fraction=0.5",
        "data.test_clips=1",
        "runtime.workers=1",
    )
    single, double = tmp_path / "single", tmp_path / "double"
    assert run_mme(tiny_eval(synthetic_data, classifier, single, *sets)) == 0
    torchrun(tiny_eval(synthetic_data, classifier, double, *sets), tmp_path)
    one = json.loads((single / "eval.json").read_text())
    assert one["videos"] == 3 and one["views"] == 9 and one["failed_videos"] == 2
    assert json.loads((double / "eval.json").read_text()) == one
    failed = [r["path"] for r in read_jsonl(double / "predictions.jsonl") if r.get("failed")]
    assert failed == [str(path) for path in broken]


def test_finetune_validates_and_tests_without_its_broken_videos(synthetic_data, tmp_path):
    broken = broken_videos(synthetic_data, tmp_path / "broken")
    val = with_broken(synthetic_data, "val", broken[:1], tmp_path / "val.csv")
    test = with_broken(synthetic_data, "test", broken[1:], tmp_path / "test.csv")
    out = tmp_path / "ft"
    sets = (
        f"data.val_list={val}",
        f"data.test_list={test}",
        "data.max_bad_fraction=0.5",
        "schedule.epochs=1",
    )
    assert run_mme(tiny_finetune(synthetic_data, out, *sets)) == 0
    result = json.loads((out / "eval" / "eval.json").read_text())
    assert result["videos"] == 3 and result["failed_videos"] == 1
    assert [f["path"] for f in result["failed"]] == [str(broken[1])]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test"]["failed_videos"] == 1
    assert summary["bad_videos"] == 0  # evaluation failures are not training replacements
    log = (out / "finetune.log").read_text()
    assert f"val: excluded from the scores, cannot be decoded: {broken[0]}" in log


def test_probe_leaves_out_a_train_video_it_cannot_decode(synthetic_data, classifier, tmp_path):
    broken = broken_videos(synthetic_data, tmp_path / "broken")
    train = with_broken(synthetic_data, "train", broken[:1], tmp_path / "train.csv")
    out = tmp_path / "probe"
    args = tiny_probe(synthetic_data, classifier, out, f"data.train_list={train}", "probe.epochs=2")
    assert run_mme([*args, "--set", "data.max_bad_fraction=0.2"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train_videos"] == 9 and summary["val_videos"] == 3
    assert summary["failed_videos"] == {"train": 1, "val": 0}


@pytest.mark.parametrize("split", ["val", "test"])
def test_finetune_checks_every_list_label_before_the_first_step(synthetic_data, tmp_path, capsys, split):
    header, *lines = (synthetic_data / f"{split}.csv").read_text().splitlines()
    listing = tmp_path / f"{split}.csv"
    listing.write_text(
        "\n".join([header, f"{synthetic_data / lines[0]}", f"{synthetic_data / lines[1]}"[:-1] + "7"])
    )
    out = tmp_path / "ft"
    capsys.readouterr()
    assert run_mme(tiny_finetune(synthetic_data, out, f"data.{split}_list={listing}")) == 1
    err = capsys.readouterr().err
    video = synthetic_data / lines[1].rsplit(",", 1)[0]
    assert f"{listing}:3: label 7 of {video} is not below 3, the number of classes" in err, err
    assert "Traceback" not in err
    assert not (out / "checkpoints").exists() and not (out / "config.yaml").exists()


def test_probe_and_eval_check_their_labels_up_front(synthetic_data, classifier, tmp_path, capsys):
    header, *lines = (synthetic_data / "val.csv").read_text().splitlines()
    listing = tmp_path / "labels.csv"
    listing.write_text("\n".join([header, f"{synthetic_data / lines[0]}"[:-1] + "3"]))
    video = synthetic_data / lines[0].rsplit(",", 1)[0]
    capsys.readouterr()
    assert (
        run_mme(tiny_probe(synthetic_data, classifier, tmp_path / "probe", f"data.val_list={listing}")) == 1
    )
    assert f"{listing}:2: label 3 of {video} is not below 3" in capsys.readouterr().err
    assert run_mme(tiny_eval(synthetic_data, classifier, tmp_path / "ev", f"data.test_list={listing}")) == 1
    err = capsys.readouterr().err
    assert f"{listing}:2: label 3 of {video} is not below 3, the number of classes (predicted by" in err
