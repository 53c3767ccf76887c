"""The videos a command names: files, folders (recursively, by suffix) and list files, in order."""

from __future__ import annotations

import pytest

from mme.errors import ConfigError, DataError
from mme.io.inputs import VideoInput, gather_videos


def test_files_folders_and_lists_in_the_order_given(tmp_path):
    folder = tmp_path / "clips"
    (folder / "b").mkdir(parents=True)
    for name in ("b/2.MP4", "1.webm", "notes.txt", "b/cover.jpg"):
        (folder / name).write_bytes(b"")
    (tmp_path / "list.csv").write_text("path,label\nx.mp4,3\nsub/y.avi,0\n")
    found = gather_videos([tmp_path / "gone.mp4", folder, tmp_path / "list.csv", tmp_path / "odd.bin"])
    assert found == [
        VideoInput(tmp_path / "gone.mp4", None, "argument"),  # missing: the job reports it failed
        VideoInput(folder / "1.webm", None, f"folder {folder}"),
        VideoInput(folder / "b" / "2.MP4", None, f"folder {folder}"),  # suffixes in any case
        VideoInput(tmp_path / "x.mp4", 3, f"{tmp_path / 'list.csv'}:2"),
        VideoInput(tmp_path / "sub" / "y.avi", 0, f"{tmp_path / 'list.csv'}:3"),
        VideoInput(tmp_path / "odd.bin", None, "argument"),  # not a list: a (broken) video
    ]


def test_bad_inputs_are_errors_naming_them(tmp_path):
    with pytest.raises(ConfigError, match="no input"):
        gather_videos([])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no video files under this folder"):
        gather_videos([tmp_path / "empty"])
    with pytest.raises(DataError, match="list file not found"):
        gather_videos([tmp_path / "missing.csv"])
