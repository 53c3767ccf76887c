"""mme.io.lists: both list formats, the root rule, and errors that name file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from mme.errors import DataError
from mme.io.lists import VideoEntry, list_root, read_list, video_key, write_list


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


@pytest.mark.parametrize(
    ("text", "line", "found"),
    [
        ("path,label\n", 1, "a CSV header and no entries"),  # header only
        ("# made by hand\n\npath,label\n\n", 3, "a CSV header and no entries"),
        ("path\nvideos/a.mp4\n", 1, "'path' is neither a CSV header"),  # no label column
        ("path,class\nvideos/a.mp4,0\n", 1, "'path,class' is neither a CSV header"),  # misnamed
        ("video,label\nvideos/a.mp4,0\n", 1, "'video,label' is neither a CSV header"),
        ("videos/a.mp4,0\n", 1, "'videos/a.mp4,0' is neither a CSV header"),  # CSV without a header
        ("path label\nvideos/a.mp4 0\n", 1, "'path label' is neither a CSV header"),  # spaced header
    ],
)
def test_header_only_and_misnamed_csv_headers_say_what_a_list_is(tmp_path, text, line, found):
    listing = tmp_path / "bad.csv"
    listing.write_text(text)
    with pytest.raises(DataError) as info:
        read_list(listing)
    message = str(info.value)
    assert message.startswith(f"{listing}:{line}: ") and found in message
    assert "expected 'path label'" not in message  # not the space format's complaint about one line
    if "neither" in message:  # every accepted format is named
        assert "header naming the columns path and label" in message and "'path N label'" in message


def test_list_root_is_the_root_else_the_list_folder(tmp_path):
    assert list_root(tmp_path / "lists" / "train.csv") == tmp_path / "lists"
    assert list_root("train.csv") == Path(".")
    assert list_root(tmp_path / "lists" / "train.csv", "data") == Path("data")
    with pytest.raises(ValueError, match="list file or a root"):
        list_root(None)


def test_video_key_is_the_path_under_the_root_however_it_is_spelt(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expected = Path("cls/v.mp4")
    for video, root in [
        ("data/cls/v.mp4", "data"),  # both relative to the working folder
        (tmp_path / "data" / "cls" / "v.mp4", "data"),  # absolute video, relative root
        ("data/cls/v.mp4", tmp_path / "data"),  # relative video, absolute root
        ("data/./other/../cls/v.mp4", "data/"),  # spelt with . and ..
        ("data/lists/../cls/v.mp4", "data"),
    ]:
        assert video_key(video, root) == expected, (video, root)


def test_video_key_outside_the_root_is_the_absolute_path_and_stays_inside_out(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # An absolute list path elsewhere, and a relative one climbing out of its list's folder.
    assert video_key("/mnt/k400/cls/v.mp4", "data") == Path("mnt/k400/cls/v.mp4")
    climbing = video_key("data/lists/../../videos/v.mp4", "data/lists")
    assert climbing == (tmp_path / "videos" / "v.mp4").relative_to("/")
    for key in (climbing, video_key("../../v.mp4", ".")):
        assert not key.is_absolute() and ".." not in key.parts


def test_extract_help_describes_exactly_the_formats_read(tmp_path):
    from mme.cli.main import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices  # argparse keeps sub-parsers here
    text = " ".join(commands["extract"].format_help().split())
    for named in ("'path,label'", "other columns are ignored", "'path label'", "'path N label'"):
        assert named in text, named
    listing = tmp_path / "list.csv"
    for content in ("path,label,other\nv.mp4,1,x\n", "v.mp4 1\n", "v.mp4 30 1\n"):
        listing.write_text(content)
        assert [(e.path.name, e.label) for e in read_list(listing)] == [("v.mp4", 1)]
    assert "a CSV without this header is not read" in text
    listing.write_text("v.mp4,1\n")
    with pytest.raises(DataError, match="neither a CSV header"):
        read_list(listing)
