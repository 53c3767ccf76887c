"""Fixtures shared by the training, task and evaluation tests (helpers: tests/train/train_helpers.py).

The tiny synthetic dataset and pre-training run are made once per session for every folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mme.cli.main import main

for _helpers in ("train", "visualize"):  # train_helpers.py, picture_helpers.py
    _folder = str(Path(__file__).resolve().parent / _helpers)
    if _folder not in sys.path:
        sys.path.insert(0, _folder)


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory) -> Path:
    """3 motion classes x 5 videos of 16 frames at 40x32: 9 train, 3 val, 3 test videos."""
    out = tmp_path_factory.mktemp("synthetic")
    code = main(["synth", "--out", str(out), "--classes", "3", "--videos-per-class", "5",
                 "--frames", "16", "--size", "40x32", "--workers", "1"])  # fmt: skip
    assert code == 0
    return out


@pytest.fixture(scope="session")
def pretrain_run(synthetic_data, tmp_path_factory) -> Path:
    """A finished tiny pre-training run: 5 epochs of 4 steps, checkpoints at steps 12, 16, 20, the
    models of epochs 1 and 3 kept (model-epoch1, model-epoch3).

    Shared read-only by the end-to-end, probe and error tests (copy it before changing it).
    """
    from train_helpers import tiny_pretrain

    out = tmp_path_factory.mktemp("pretrain") / "run"
    args = tiny_pretrain(
        synthetic_data,
        out,
        "schedule.epochs=5",
        "runtime.keep_last=3",
        "runtime.tensorboard=true",
        "save_model_epochs=[1,3]",
    )
    assert main(args) == 0
    return out
