"""The atomic writers never leave a partial file under the final name."""

from __future__ import annotations

import json

import pytest

from mme.utils.atomic import atomic_path, atomic_write, atomic_write_json, is_temp_name


def test_success_replaces_the_final_file(tmp_path):
    target = tmp_path / "sub" / "out.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]


def test_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("good")
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write("half written")
        raise RuntimeError("killed")
    assert target.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_path_gives_a_recognisable_temp_name(tmp_path):
    target = tmp_path / "weights.bin"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target and is_temp_name(tmp)
        assert not target.exists()
        tmp.write_bytes(b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01" and not tmp.exists()


def test_written_files_get_the_umask_mode_not_0600(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "summary.json", {"ok": True})
    finally:
        os.umask(old)
    assert (tmp_path / "summary.json").stat().st_mode & 0o777 == 0o644


def test_a_writer_that_replaces_the_temp_file_still_gives_the_umask_mode(tmp_path):
    import os

    import torch
    from safetensors.torch import save_file  # writes its own 0600 temporary and renames it

    old = os.umask(0o027)
    try:
        with atomic_path(tmp_path / "w.safetensors") as tmp:
            save_file({"w": torch.zeros(2)}, str(tmp))
    finally:
        os.umask(old)
    assert (tmp_path / "w.safetensors").stat().st_mode & 0o777 == 0o640
