"""Shared fixtures of the motion tests: known-motion scenes rendered once per session."""

from __future__ import annotations

import numpy as np
import pytest

from mme.motion.known_motion import STANDARD_MOTIONS, Motion, render_frames

SIZE = (224, 224)  # (H, W): the network-input size the online path runs at
FRAMES = 9  # two grids: seeded in frames 0 and 4, tracked 4 steps each
STARTS = (0, 4)
INDEX = np.array([[0, 1, 2, 3, 4], [4, 5, 6, 7, 8]])


@pytest.fixture(scope="session")
def known_scenes() -> dict[str, tuple[Motion, np.ndarray]]:
    """{motion name: (motion, uint8 frames (9, 224, 224, 3))} for every standard motion."""
    height, width = SIZE
    return {
        motion.name: (motion, render_frames(motion, FRAMES, height, width, seed=7))
        for motion in STANDARD_MOTIONS
    }
