"""Constants shared by the motion tests (a uniquely named module: test folders have no __init__)."""

from __future__ import annotations

import numpy as np

SIZE = (224, 224)  # (H, W): the network-input size the online path runs at
FRAMES = 9  # two grids: seeded in frames 0 and 4, tracked 4 steps each
STARTS = (0, 4)
INDEX = np.array([[0, 1, 2, 3, 4], [4, 5, 6, 7, 8]])
