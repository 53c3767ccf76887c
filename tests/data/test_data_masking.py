"""mme.data.masking: exact counts, tube structure in the contract's token order."""

from __future__ import annotations

import numpy as np
import pytest

from mme.data.masking import MaskGenerator
from mme.errors import ConfigError


def test_tube_mask_repeats_one_spatial_mask():
    generator = MaskGenerator((8, 14, 14), 0.7, "tube")
    assert generator.num_masked == 8 * 137  # round(0.7 * 196) = 137 per frame
    mask = generator(np.random.default_rng(0))
    assert mask.dtype.is_floating_point is False and mask.shape == (1568,)
    per_time = mask.view(8, 196)  # token n = (k * Hp + i) * Wp + j: rows are temporal positions
    assert bool((per_time == per_time[0]).all())
    assert int(per_time[0].sum()) == 137


def test_random_mask_exact_count_and_varies():
    generator = MaskGenerator((8, 14, 14), 0.9, "random")
    first, second = generator(np.random.default_rng(0)), generator(np.random.default_rng(1))
    assert int(first.sum()) == int(second.sum()) == round(0.9 * 1568) == generator.num_masked
    assert not bool((first == second).all())
    assert not bool((first.view(8, 196) == first.view(8, 196)[0]).all())  # not a tube


def test_same_rng_same_mask():
    generator = MaskGenerator((2, 4, 4), 0.5, "tube")
    assert bool((generator(np.random.default_rng(3)) == generator(np.random.default_rng(3))).all())


def test_bad_settings():
    with pytest.raises(ConfigError, match="mask type"):
        MaskGenerator((2, 2, 2), 0.5, "block")
    with pytest.raises(ConfigError, match="ratio"):
        MaskGenerator((2, 2, 2), 1.0)
    with pytest.raises(ConfigError, match="masks 0"):
        MaskGenerator((2, 2, 2), 0.1)
