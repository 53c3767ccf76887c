"""Shared by the picture tests (tests/visualize, tests/demo): is a file a real, non-trivial PNG?"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_real_png(path: Path, min_colours: int = 16) -> np.ndarray:
    """A PNG that matplotlib decodes into a picture with some content; returns the pixels."""
    import matplotlib.image

    assert path.is_file(), f"{path} was not written"
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    assert len(data) > 1000, f"{path} is suspiciously small ({len(data)} bytes)"
    pixels = matplotlib.image.imread(str(path))
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100, pixels.shape
    rgb = np.round(pixels[..., :3] * 255).astype(np.uint32).reshape(-1, 3)
    colours = np.unique((rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2])
    assert len(colours) >= min_colours, f"{path} has only {len(colours)} colours"
    assert float(pixels[..., :3].std()) > 0.02, f"{path} is nearly a single colour"
    return pixels
