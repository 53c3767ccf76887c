"""The bad-video record: counted across processes, and a private folder does not outlive its run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mme.data.bad_videos import BadVideoLog
from mme.errors import DataError


def test_records_count_distinct_videos_and_stop_past_the_limit(tmp_path: Path) -> None:
    log = BadVideoLog(tmp_path, dataset_size=10, max_fraction=0.2)
    log.record("a.mp4", "cannot decode")
    log.record("a.mp4", "cannot decode")  # the same video again: still one
    log.record("b.mp4", "too short")
    assert log.bad_videos() == {"a.mp4": "cannot decode", "b.mp4": "too short"}
    with pytest.raises(DataError, match="3 of 10 videos are bad"):
        log.record("c.mp4", "cannot decode")


def test_a_private_folder_is_removed_when_its_process_exits() -> None:
    code = "from mme.data.bad_videos import BadVideoLog; print(BadVideoLog(None, 10).folder)"
    folder = Path(
        subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout.strip()
    )
    assert folder.name.startswith("mme-bad-videos-") and not folder.exists()
