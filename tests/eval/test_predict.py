"""`mme predict`: eval's per-video scores on any videos, top-k records, windows, bad inputs.

Everything runs a two-block ViT-tiny on the synthetic videos (4 frames at 32x32) through the
`mme` entry point, like a user would.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import read_jsonl, run_mme, tiny_eval

import mme
from mme.data.sampling import view_stride_clip
from mme.errors import CheckpointError, DataError
from mme.eval.infer import WindowEntry, _within, frame_windows

NAMES = ["move_right", "move_left", "move_up"]
# The views of tiny_eval: 2 clips x 3 crops, stride 2, short side 32 (clip size from the model).
VIEWS = ["--clips", "2", "--crops", "3", "--stride", "2", "--short-side", "32", "--workers", "0"]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> Path:
    """A 3-class two-block ViT-tiny with a confident, varied head and class names."""
    from mme.models import create_model, save_model

    torch.manual_seed(0)
    model = create_model("vit_tiny_patch16_224", num_classes=3, depth=2, num_frames=4, img_size=32)
    with torch.no_grad():
        model.head.weight.normal_(0, 1.0)
    model.class_names = NAMES
    out = tmp_path_factory.mktemp("classifier") / "model"
    save_model(model, out)
    return out


def predict_args(checkpoint: Path, *inputs: object, extra: tuple[str, ...] = ()) -> list[str]:
    return ["predict", "--checkpoint", str(checkpoint), *map(str, inputs), *VIEWS, *extra]


def test_predict_gives_eval_scores_on_the_test_list(synthetic_data, classifier, tmp_path, capsys):
    assert run_mme(tiny_eval(synthetic_data, classifier, tmp_path / "eval")) == 0
    expected = read_jsonl(tmp_path / "eval" / "predictions.jsonl")
    out = tmp_path / "predict.jsonl"
    capsys.readouterr()
    assert run_mme(predict_args(classifier, synthetic_data / "test.csv", extra=("--out", str(out)))) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == len(expected) == 3
    for got, want in zip(records, expected, strict=True):
        assert (got["video"], got["path"], got["label"]) == (want["video"], want["path"], want["label"])
        assert got["prediction"] == want["prediction"] and got["topk"] == want["top5"]
        assert got["topk_scores"] == want["top5_scores"]  # the same numbers, not just close
        assert got["topk_names"] == [NAMES[index] for index in got["topk"]]
    table = capsys.readouterr().out  # the terminal table names each video and its top class
    assert all(record["path"] in table for record in records)
    assert f"{records[0]['prediction_name']} {100 * records[0]['topk_scores'][0]:.1f}%" in table

    # the Python API returns the records the command writes
    api = mme.predict(
        classifier, synthetic_data / "test.csv", clips=2, crops=3, stride=2, short_side=32, workers=0
    )
    assert api == records


def test_predict_on_the_hugging_face_export_gives_the_same_top_k(synthetic_data, classifier, tmp_path):
    assert run_mme(["convert", str(classifier), str(tmp_path / "hf"), "--to", "hf"]) == 0
    ours = mme.predict(classifier, synthetic_data / "test.csv", topk=2, stride=2, workers=0)
    theirs = mme.predict(tmp_path / "hf", synthetic_data / "test.csv", topk=2, stride=2, workers=0)
    assert [r["topk"] for r in theirs] == [r["topk"] for r in ours]
    assert [r["topk_names"] for r in theirs] == [r["topk_names"] for r in ours]  # id2label
    for a, b in zip(theirs, ours, strict=True):
        assert a["topk_scores"] == pytest.approx(b["topk_scores"], abs=1e-5)


def broken_inputs(synthetic_data: Path, folder: Path) -> list[Path]:
    """Missing, empty, truncated and not-a-video files."""
    folder.mkdir(parents=True, exist_ok=True)
    real = next((synthetic_data / "videos").rglob("*.mp4")).read_bytes()
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "half.mp4").write_bytes(real[: len(real) // 2])
    (folder / "notes.mp4").write_text("not a video\n")
    return [folder / "missing.mp4", folder / "empty.mp4", folder / "half.mp4", folder / "notes.mp4"]


def test_broken_inputs_are_named_failed_and_the_others_still_predicted(
    synthetic_data, classifier, tmp_path, capsys
):
    good = sorted((synthetic_data / "videos").rglob("*.mp4"))[:2]
    broken = broken_inputs(synthetic_data, tmp_path / "broken")
    inputs = [good[0], *broken, good[1]]
    out = tmp_path / "out.csv"
    capsys.readouterr()
    assert run_mme(predict_args(classifier, *inputs, extra=("--out", str(out), "--topk", "2"))) == 1
    rows = list(csv.DictReader(out.open()))
    assert [row["path"] for row in rows] == [str(path) for path in inputs]
    assert [row["failed"] for row in rows] == ["False", "True", "True", "True", "True", "False"]
    assert "video not found" in rows[1]["reason"] and all(row["reason"] for row in rows[1:5])
    assert rows[1]["class_1"] == "" and rows[0]["name_1"] in NAMES and float(rows[0]["score_1"]) > 0
    # the good videos get exactly the scores they get alone
    alone = mme.predict(classifier, [good[0], good[1]], topk=2, **api_views())
    assert [rows[0]["class_1"], rows[5]["class_1"]] == [str(r["prediction"]) for r in alone]
    assert [float(rows[0]["score_1"]), float(rows[5]["score_1"])] == [r["topk_scores"][0] for r in alone]
    printed = capsys.readouterr()
    assert printed.out.count("FAILED") == 4
    assert "missing.mp4" in printed.err and "(4 failed)" in printed.err


def api_views() -> dict[str, object]:
    return {"clips": 2, "crops": 3, "stride": 2, "short_side": 32, "workers": 0}


def test_inputs_mix_files_folders_and_lists(synthetic_data, classifier, tmp_path):
    folder = synthetic_data / "videos" / "move_up"
    single = next((synthetic_data / "videos" / "move_left").glob("*.mp4"))
    records = mme.predict(classifier, [single, folder, synthetic_data / "val.csv"], topk=1, **api_views())
    in_folder = sorted(folder.rglob("*.mp4"))
    val = [line.split(",") for line in (synthetic_data / "val.csv").read_text().splitlines()[1:]]
    assert [r["path"] for r in records] == [
        str(single),
        *map(str, in_folder),
        *(str(synthetic_data / p) for p, _ in val),
    ]
    assert [r["video"] for r in records] == list(range(len(records)))
    assert [r.get("label") for r in records] == [None] * (1 + len(in_folder)) + [
        int(label) for _, label in val
    ]


def test_windows_cover_the_video_and_a_whole_video_window_is_the_video(synthetic_data, classifier):
    video = next((synthetic_data / "videos").rglob("*.mp4"))  # 16 frames at 25 fps: 0.64 s
    plain = mme.predict(classifier, video, **api_views())
    whole = mme.predict(classifier, video, window_seconds=10.0, **api_views())
    assert len(whole) == 1 and (whole[0]["window"], whole[0]["start"], whole[0]["end"]) == (0, 0.0, 0.64)
    assert whole[0]["topk_scores"] == plain[0]["topk_scores"] and whole[0]["topk"] == plain[0]["topk"]
    windows = mme.predict(classifier, video, window_seconds=0.32, stride_seconds=0.16, **api_views())
    assert [(r["start"], r["end"]) for r in windows] == [(0.0, 0.32), (0.16, 0.48), (0.32, 0.64)]
    assert {r["video"] for r in windows} == {0} and [r["window"] for r in windows] == [0, 1, 2]


def test_window_frames_and_the_clips_sampled_inside_them():
    assert frame_windows(16, 25.0, 0.32, 0.16) == [(0, 8), (4, 12), (8, 16)]
    assert frame_windows(10, 10.0, 0.4, 0.4) == [(0, 4), (4, 8), (8, 10)]  # the last is shorter
    assert frame_windows(5, 10.0, 2.0, 1.0) == [(0, 5)]
    entry = WindowEntry(Path("v.mp4"), 0, start_frame=20, end_frame=36)
    for clip in range(2):
        plan = lambda n, c=clip: view_stride_clip(n, 4, 2, c, 2)  # noqa: E731
        got = _within(entry, plan)(100)
        assert np.array_equal(got.frames, 20 + view_stride_clip(16, 4, 2, clip, 2).frames)
    # a file shorter than its header said: the window ends where the frames do, or is gone
    short = _within(entry, lambda n: view_stride_clip(n, 4, 2, 0, 1))(30)
    assert np.array_equal(short.frames, 20 + view_stride_clip(10, 4, 2, 0, 1).frames)
    from mme.data.datasets import BadVideo

    with pytest.raises(BadVideo, match="window from frame 20"):
        _within(entry, lambda n: view_stride_clip(n, 4, 2, 0, 1))(20)


def test_user_errors_are_clear(synthetic_data, classifier, tmp_path, capsys, monkeypatch):
    from mme.models import create_model, save_model

    monkeypatch.delenv("MME_DEBUG", raising=False)
    video = next((synthetic_data / "videos").rglob("*.mp4"))
    save_model(create_model("mme_vit_tiny_patch16_224", depth=2, num_frames=4, img_size=32), tmp_path / "pt")
    with pytest.raises(CheckpointError, match=r"no classification head.*mme embed"):
        mme.predict(tmp_path / "pt", video, workers=0)
    (tmp_path / "four.txt").write_text("a\nb\nc\nd\n")
    with pytest.raises(
        DataError, match=r"four.txt \(--classes\) names 4 classes, but the checkpoint .* predicts 3"
    ):
        mme.predict(classifier, video, classes=tmp_path / "four.txt", workers=0)
    (tmp_path / "three.json").write_text(json.dumps(["x", "y", "z"]))
    named = mme.predict(classifier, video, classes=tmp_path / "three.json", workers=0, clips=1, crops=1)
    assert named[0]["topk_names"] == [["x", "y", "z"][i] for i in named[0]["topk"]]

    out = tmp_path / "taken.jsonl"
    out.write_text("keep me\n")
    capsys.readouterr()
    assert run_mme(predict_args(classifier, video, extra=("--out", str(out)))) == 1
    assert "already exists; refusing to overwrite it (use --overwrite)" in capsys.readouterr().err
    assert out.read_text() == "keep me\n"
    assert run_mme(predict_args(classifier, video, extra=("--out", str(out), "--overwrite"))) == 0
    assert json.loads(out.read_text())["path"] == str(video)
    assert run_mme(["predict", "--checkpoint", str(classifier), str(video), "--clips", "0"]) == 1
    assert "clips (--clips) must be an integer >= 1, got 0" in capsys.readouterr().err
