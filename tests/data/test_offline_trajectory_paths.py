"""`mme extract` writes each video's trajectory file where offline pre-training looks for it,
however the list, its paths and the root are spelt (mme.io.lists.video_key names both)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mme.cli.main import main
from mme.data.config import PretrainDataConfig
from mme.data.datasets import PretrainDataset
from mme.data.synthetic import SynthConfig, generate_dataset
from mme.io.lists import read_list
from mme.motion import TrajectoryConfig

# Two of the train videos, relative to data/videos.
VIDEOS = ("move_right/move_right_0000.mp4", "move_left/move_left_0000.mp4")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A working folder holding ``data/videos/<class>/<name>.mp4`` and ``data/train.csv``."""
    folder = tmp_path_factory.mktemp("work")
    config = SynthConfig(classes=2, videos_per_class=3, frames=16, width=64, height=48)
    generate_dataset(config, folder / "data", workers=1)
    train = {
        entry.path.relative_to(folder / "data" / "videos")
        for entry in read_list(folder / "data" / "train.csv")
    }
    assert train >= {Path(video) for video in VIDEOS}
    return folder


def _write(path: Path, lines: list[str]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line} {label}\n" for label, line in enumerate(lines)))
    return str(path)


# (how a layout is written: list file and its video paths; extract's --list/--root;
#  pre-training's data.train_list/data.root; where the files must be, under OUT, or None: keyed
#  by the absolute path). {w} is the working folder; relative paths start there.
LAYOUTS = {
    # The docs' walkthrough: the list beside the videos, no root, relative spellings everywhere.
    "relative list, no root": ("data/train.csv", ["videos/{v}"], "data/train.csv", None,
                               "data/train.csv", None, "videos/{v}"),
    "absolute list for extract, relative for pretrain": (
        "data/train.csv", ["videos/{v}"], "{w}/data/train.csv", None, "data/train.csv", None, "videos/{v}"),
    "list in another folder, root spelt two ways": (
        "lists/train.csv", ["videos/{v}"], "lists/train.csv", "data", "{w}/lists/train.csv", "{w}/data",
        "videos/{v}"),
    "absolute paths inside the root": (
        "lists/abs.csv", ["{w}/data/videos/{v}"], "lists/abs.csv", "{w}/data", "lists/abs.csv", "data",
        "videos/{v}"),
    "relative paths climbing out of the list folder": (
        "lists/up.csv", ["../data/videos/{v}"], "lists/up.csv", None, "lists/up.csv", None, None),
    "absolute paths outside the list folder": (
        "lists/abs.csv", ["{w}/data/videos/{v}"], "lists/abs.csv", None, "{w}/lists/abs.csv", None, None),
}  # fmt: skip


@pytest.mark.parametrize("layout", LAYOUTS)
def test_extract_then_offline_pretraining_data_find_every_file(dataset, tmp_path, monkeypatch, layout):
    listing, paths, extract_list, extract_root, train_list, data_root, expected = LAYOUTS[layout]
    monkeypatch.chdir(dataset)
    w = str(dataset)
    for name in ("lists", "out"):  # each layout starts clean
        shutil.rmtree(dataset / name, ignore_errors=True)
    _write(dataset / listing.format(w=w), [path.format(w=w, v=v) for path in paths for v in VIDEOS])
    args = ["extract", "--list", extract_list.format(w=w), "--out", "out", "--flow", "dis_ultrafast"]
    if extract_root is not None:
        args += ["--root", extract_root.format(w=w)]
    assert main(args) == 0
    written = sorted(str(p.relative_to(dataset / "out")) for p in (dataset / "out").rglob("*.traj"))
    if expected is not None:
        assert written == sorted(expected.format(v=v) + ".traj" for v in VIDEOS)
    else:  # outside the root: the whole absolute path, under OUT all the same
        assert written == sorted(
            str((dataset / "data" / "videos" / v).relative_to("/")) + ".traj" for v in VIDEOS
        )

    config = PretrainDataConfig(
        train_list=train_list.format(w=w),
        root=None if data_root is None else data_root.format(w=w),
        trajectories="offline",
        traj_root="out",
        num_frames=4,
        stride=2,
        input_size=32,
        mask_ratio=0.5,
    )
    data = PretrainDataset(config, TrajectoryConfig(flow="dis_ultrafast"), bad_video_dir=tmp_path / "bad")
    np.random.seed(0)
    for index in range(len(data)):
        sample = data[index]
        assert sample["traj_disp"].shape == (2, 4, 4, 4, 2) and bool(sample["traj_valid"][:, 0].any())
    assert data.bad_video_count == 0
