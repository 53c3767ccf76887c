"""mme.io.classes: class-name files (classes.json or one name per line) and where jobs find them."""

from __future__ import annotations

import pytest

from mme.errors import DataError
from mme.io.classes import find_class_names_file, read_class_names


def test_json_list_and_text_lines(tmp_path):
    (tmp_path / "classes.json").write_text('["ride bike", "swim"]')
    (tmp_path / "names.txt").write_text("ride bike\n\n  swim \n")
    assert read_class_names(tmp_path / "classes.json") == ["ride bike", "swim"]
    assert read_class_names(tmp_path / "names.txt") == ["ride bike", "swim"]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.json", '["a", ', "not valid JSON"),
        ("map.json", '{"0": "a"}', "expected a JSON list of class names"),
        ("numbers.json", "[1, 2]", "expected a JSON list of class names"),
        ("empty.txt", "\n\n", "no class names"),
    ],
)
def test_malformed_files_name_the_file(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(DataError, match=f"{tmp_path / name}: {message}"):
        read_class_names(tmp_path / name)
    with pytest.raises(DataError, match="class names file not found"):
        read_class_names(tmp_path / "absent.json")


def test_classes_json_beside_the_list_unless_a_file_is_named(tmp_path):
    (tmp_path / "train.csv").write_text("path,label\na.mp4,0\n")
    assert find_class_names_file(None, tmp_path / "train.csv") is None
    (tmp_path / "classes.json").write_text('["a"]')
    assert find_class_names_file(None, tmp_path / "train.csv") == tmp_path / "classes.json"
    assert find_class_names_file(tmp_path / "mine.txt", tmp_path / "train.csv") == tmp_path / "mine.txt"
    assert find_class_names_file(None, None) is None
