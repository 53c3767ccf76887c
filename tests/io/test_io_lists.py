"""mme.io.lists: both list formats, the root rule, and errors that name file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from mme.errors import DataError
from mme.io.lists import VideoEntry, read_list, write_list


def test_space_format_two_and_three_columns(tmp_path):
    listing = tmp_path / "train.csv"
    listing.write_text("# a comment\nvideos/a.mp4 3\n\nvideos/b.mp4 300 7\n/abs/c.mp4 0\n")
    entries = read_list(listing, root="/data/k400")
    assert entries == [
        VideoEntry(Path("/data/k400/videos/a.mp4"), 3, 2),
        VideoEntry(Path("/data/k400/videos/b.mp4"), 7, 4, 300.0),
        VideoEntry(Path("/abs/c.mp4"), 0, 5),
    ]


def test_relative_paths_default_to_the_list_folder(tmp_path):
    (tmp_path / "lists").mkdir()
    listing = tmp_path / "lists" / "val.csv"
    listing.write_text("x/clip.mp4 1\n")
    assert read_list(listing)[0].path == tmp_path / "lists" / "x" / "clip.mp4"


def test_csv_with_header_extra_columns_and_spaces(tmp_path):
    listing = tmp_path / "list.csv"
    listing.write_text('label,path,duration\n2,"my videos/a, b.mp4",10\n5,c.mp4,3\n')
    entries = read_list(listing, root=tmp_path)
    assert [(e.path, e.label, e.line) for e in entries] == [
        (tmp_path / "my videos" / "a, b.mp4", 2, 2),
        (tmp_path / "c.mp4", 5, 3),
    ]


def test_write_list_round_trip(tmp_path):
    listing = tmp_path / "out" / "train.csv"
    assert write_list(listing, [("a b/c.mp4", 1), (tmp_path / "d.mp4", 0)]) == 2
    assert listing.read_text().splitlines()[0] == "path,label"
    entries = read_list(listing)
    expected = [(listing.parent / "a b" / "c.mp4", 1), (tmp_path / "d.mp4", 0)]
    assert [(e.path, e.label) for e in entries] == expected


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("a.mp4 1\nb.mp4 one\n", 2, "label 'one' is not an integer"),
        ("a.mp4 1\n\nb.mp4\n", 3, "expected 'path label'"),
        ("a.mp4 1\nmy clip.mp4 30 2 1\n", 2, "CSV format"),
        ("a.mp4 x 1\n", 1, "middle column 'x'"),
        ("a.mp4 -1\n", 1, "negative"),
        ("path,label\na.mp4,1\nb.mp4\n", 3, "expected columns"),
        ("path,label\na.mp4,1\n,2\n", 3, "empty path"),
        ("path,label,x\na.mp4,1.5,0\n", 2, "not an integer"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, text, line, message):
    listing = tmp_path / "bad.csv"
    listing.write_text(text)
    with pytest.raises(DataError, match=message) as info:
        read_list(listing)
    assert f"bad.csv:{line}:" in str(info.value)


def test_missing_and_empty_lists(tmp_path):
    with pytest.raises(DataError, match=r"not found: .*missing\.csv"):
        read_list(tmp_path / "missing.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("# nothing\n\n")
    with pytest.raises(DataError, match="no entries"):
        read_list(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("path,label\n")
    with pytest.raises(DataError, match="no entries"):
        read_list(header_only)
