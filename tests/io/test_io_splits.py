"""mme.io.splits / `mme lists`: tiny fake official annotation files of the four datasets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mme.cli import main as cli_main
from mme.errors import DataError
from mme.io.lists import read_list
from mme.io.splits import build_lists, read_official_splits


def touch(root: Path, relative: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


@pytest.fixture
def ucf(tmp_path) -> tuple[Path, Path]:
    notes = tmp_path / "ucfTrainTestlist"
    notes.mkdir()
    (notes / "classInd.txt").write_text("1 ApplyEyeMakeup\r\n2 HandstandPushups\r\n3 YoYo\r\n")
    (notes / "trainlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\nHandstandPushups/v_HandStandPushups_g08_c01.avi 2\n"
        "YoYo/v_YoYo_g08_c01.avi 3\n"
    )
    (notes / "testlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\nHandStandPushups/v_HandStandPushups_g01_c01.avi\n"
    )
    videos = tmp_path / "UCF-101"
    for line in [
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi",
        "HandstandPushups/v_HandStandPushups_g08_c01.avi",
    ]:
        touch(videos, line)  # YoYo's training video is missing
    touch(videos, "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi")
    touch(videos, "HandStandPushups/v_HandStandPushups_g01_c01.avi")
    return notes, videos


def test_ucf101(ucf, tmp_path):
    notes, videos = ucf
    lists = read_official_splits("ucf101", notes, split=1)
    assert lists.classes == ["ApplyEyeMakeup", "HandstandPushups", "YoYo"]
    assert lists.splits["train"][2] == ("YoYo/v_YoYo_g08_c01.avi", 2)
    assert lists.splits["test"] == [
        ("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", 0),
        ("HandStandPushups/v_HandStandPushups_g01_c01.avi", 1),  # folder matched ignoring case
    ]
    summary = build_lists("ucf101", notes, videos, tmp_path / "out")
    assert summary["splits"] == {"train": 2, "val": 2, "test": 2} and summary["missing"] == 1
    assert (tmp_path / "out" / "missing.txt").read_text() == "YoYo/v_YoYo_g08_c01.avi\n"
    train = read_list(tmp_path / "out" / "train.csv")
    assert [(e.path, e.label) for e in train] == [
        (videos.absolute() / "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", 0),
        (videos.absolute() / "HandstandPushups/v_HandStandPushups_g08_c01.avi", 1),
    ]
    assert json.loads((tmp_path / "out" / "classes.json").read_text())[2] == "YoYo"
    assert (tmp_path / "out" / "lists.jsonl").is_file()


def test_ucf101_relative_and_missing_error(ucf, tmp_path):
    notes, videos = ucf
    build_lists("ucf101", notes, videos, tmp_path / "rel", relative=True, missing="keep")
    entries = read_list(tmp_path / "rel" / "train.csv", root=videos)
    assert len(entries) == 3 and entries[0].path == videos / "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi"
    with pytest.raises(DataError, match="1 videos are missing"):
        build_lists("ucf101", notes, videos, tmp_path / "err", missing="error")


def test_ucf101_malformed_line_names_file_and_line(ucf):
    notes, _ = ucf
    (notes / "trainlist01.txt").write_text("ApplyEyeMakeup/a.avi 1\nApplyEyeMakeup/b.avi 7\n")
    with pytest.raises(DataError, match=r"trainlist01\.txt:2:"):
        read_official_splits("ucf101", notes)
    with pytest.raises(DataError, match=r"not found: .*trainlist02\.txt"):
        read_official_splits("ucf101", notes, split=2)


def test_hmdb51(tmp_path):
    notes = tmp_path / "metafile"
    notes.mkdir()
    (notes / "brush_hair_test_split1.txt").write_text("a.avi 1 \nb.avi 2 \nc.avi 0 \n")
    (notes / "cartwheel_test_split1.txt").write_text("d.avi 2 \ne.avi 1 \n")
    (notes / "cartwheel_test_split2.txt").write_text("d.avi 1 \n")
    lists = read_official_splits("hmdb51", notes, split=1)
    assert lists.classes == ["brush_hair", "cartwheel"]
    assert lists.splits["train"] == [("brush_hair/a.avi", 0), ("cartwheel/e.avi", 1)]
    assert lists.splits["test"] == [("brush_hair/b.avi", 0), ("cartwheel/d.avi", 1)]
    assert lists.splits["val"] == lists.splits["test"]
    (notes / "cartwheel_test_split1.txt").write_text("d.avi 3\n")
    with pytest.raises(DataError, match=r"cartwheel_test_split1\.txt:1:"):
        read_official_splits("hmdb51", notes, split=1)


def test_kinetics400(tmp_path):
    notes = tmp_path / "annotations"
    notes.mkdir()
    header = "label,youtube_id,time_start,time_end,split,is_cc\n"
    (notes / "train.csv").write_text(
        header + "abseiling,ztuc7tVNUDo,3,13,train,0\n" + '"air drumming",--6bJUbfpnQ,17,27,train,0\n'
    )
    (notes / "validate.csv").write_text(header + '"air drumming",AbC,0,10,val,0\n')
    lists = read_official_splits("k400", notes)
    assert lists.classes == ["abseiling", "air drumming"]
    assert lists.splits["train"] == [
        ("train/abseiling/ztuc7tVNUDo_000003_000013.mp4", 0),
        ("train/air drumming/--6bJUbfpnQ_000017_000027.mp4", 1),
    ]
    assert lists.splits["test"] == [("val/air drumming/AbC_000000_000010.mp4", 1)]
    custom = read_official_splits("k400", notes, layout="{split}_256/{label_}/{youtube_id}.mkv")
    assert custom.splits["val"] == [("val_256/air_drumming/AbC.mkv", 1)]
    videos = tmp_path / "k400"
    for path, _ in lists.splits["train"] + lists.splits["val"]:
        touch(videos, path)
    arguments = [
        "--annotations",
        str(notes / "train.csv"),
        "--videos",
        str(videos),
        "--out",
        str(tmp_path / "out"),
    ]
    code = cli_main.main(["lists", "--dataset", "k400", *arguments])
    assert code == 0
    assert [e.label for e in read_list(tmp_path / "out" / "val.csv")] == [1]
    (notes / "validate.csv").write_text(header + "yodelling,x,0,10,val,0\n")
    with pytest.raises(DataError, match=r"validate\.csv:2: label 'yodelling'"):
        read_official_splits("k400", notes)


def test_ssv2(tmp_path):
    notes = tmp_path / "labels"
    notes.mkdir()
    (notes / "something-something-v2-labels.json").write_text(
        json.dumps(
            {"Approaching something with your camera": "0", "Holding something next to something": "1"}
        )
    )
    train = [
        {
            "id": "78687",
            "label": "holding a cup next to a pen",
            "template": "Holding [something] next to [something]",
        },
        {
            "id": "42326",
            "label": "approaching a door",
            "template": "Approaching [something] with your camera",
        },
    ]
    (notes / "something-something-v2-train.json").write_text(json.dumps(train))
    (notes / "something-something-v2-validation.json").write_text(json.dumps(train[:1]))
    lists = read_official_splits("ssv2", notes, ext="mp4")
    assert lists.classes == ["Approaching something with your camera", "Holding something next to something"]
    assert lists.splits["train"] == [("78687.mp4", 1), ("42326.mp4", 0)]
    assert lists.splits["test"] == [("78687.mp4", 1)]
    (notes / "something-something-v2-validation.json").write_text(
        json.dumps([{"id": "1", "template": "Juggling"}])
    )
    with pytest.raises(DataError, match="entry 0"):
        read_official_splits("ssv2", notes)


def test_missing_annotations(tmp_path):
    with pytest.raises(DataError, match="annotations not found"):
        read_official_splits("ssv2", tmp_path / "nothing")
    with pytest.raises(DataError, match=r"classInd\.txt"):
        read_official_splits("ucf101", tmp_path)
