"""Shared fixtures of the motion tests: known-motion scenes rendered once per session."""

from __future__ import annotations

import numpy as np
import pytest
from motion_helpers import FRAMES, SIZE

from mme.motion.known_motion import STANDARD_MOTIONS, Motion, render_frames


@pytest.fixture(scope="session")
def known_scenes() -> dict[str, tuple[Motion, np.ndarray]]:
    """{motion name: (motion, uint8 frames (9, 224, 224, 3))} for every standard motion."""
    height, width = SIZE
    return {
        motion.name: (motion, render_frames(motion, FRAMES, height, width, seed=7))
        for motion in STANDARD_MOTIONS
    }
