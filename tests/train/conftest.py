"""Fixtures of the training tests (helpers live in train_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mme.cli.main import main


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory) -> Path:
    """3 motion classes x 5 videos of 16 frames at 40x32: 9 train, 3 val, 3 test videos."""
    out = tmp_path_factory.mktemp("synthetic")
    code = main(["synth", "--out", str(out), "--classes", "3", "--videos-per-class", "5",
                 "--frames", "16", "--size", "40x32", "--workers", "1"])  # fmt: skip
    assert code == 0
    return out
