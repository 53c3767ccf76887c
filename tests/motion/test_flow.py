from __future__ import annotations

import cv2
import numpy as np
import pytest

from mme.errors import ConfigError
from mme.motion.flow import create_flow, flow_backends, shared_flow, to_gray
from mme.motion.known_motion import Motion, render_frames

AVAILABLE = [name for name in flow_backends() if name != "tvl1" or hasattr(cv2, "optflow")]


@pytest.fixture(scope="module")
def shifted_pair() -> tuple[np.ndarray, np.ndarray]:
    frames = render_frames(Motion("shift", dx=1.5, dy=-0.75), 2, 96, 128, seed=3)
    gray = to_gray(frames)
    return gray[0], gray[1]


@pytest.mark.parametrize("name", AVAILABLE)
def test_backend_returns_dense_float_flow_of_the_motion(name, shifted_pair):
    prev, nxt = shifted_pair
    flow = create_flow(name)(prev, nxt)
    assert flow.shape == (96, 128, 2) and flow.dtype == np.float32
    centre = flow[24:-24, 24:-24].reshape(-1, 2)
    np.testing.assert_allclose(np.median(centre, axis=0), [1.5, -0.75], atol=0.15)


@pytest.mark.parametrize("name", AVAILABLE)
def test_backend_is_reusable_and_deterministic(name, shifted_pair):
    prev, nxt = shifted_pair
    backend = create_flow(name)
    first = backend(prev, nxt).copy()
    backend(nxt, prev)  # a different pair in between must not leak into the next result
    np.testing.assert_array_equal(backend(prev, nxt), first)
    np.testing.assert_array_equal(create_flow(name)(prev, nxt), first)


@pytest.mark.parametrize("name", AVAILABLE)
def test_results_do_not_depend_on_the_frame_sizes_seen_before(name, shifted_pair):
    """OpenCV's DIS objects carry state from a call on smaller frames into the next call."""
    prev, nxt = shifted_pair
    fresh = create_flow(name)(prev, nxt)
    backend = create_flow(name)
    small = render_frames(Motion("shift", dx=1.0, dy=0.5), 2, 40, 48, seed=5)
    backend(*to_gray(small))
    np.testing.assert_array_equal(backend(prev, nxt), fresh)


def test_unknown_backend_is_a_config_error_listing_the_choices():
    with pytest.raises(ConfigError, match=r"unknown flow backend 'raft'.*dis_fast"):
        create_flow("raft")


@pytest.mark.skipif(hasattr(cv2, "optflow"), reason="opencv-contrib is installed: tvl1 works")
def test_tvl1_without_contrib_names_the_extra():
    with pytest.raises(ConfigError, match=r"mme\[tvl1\]"):
        create_flow("tvl1")


def test_frames_must_be_grayscale_uint8_of_one_size(shifted_pair):
    prev, nxt = shifted_pair
    backend = create_flow("dis_ultrafast")
    with pytest.raises(ValueError, match="grayscale uint8"):
        backend(prev.astype(np.float32), nxt)
    with pytest.raises(ValueError, match="grayscale uint8"):
        backend(prev, nxt[:-1])


def test_shared_flow_is_one_object_per_name():
    assert shared_flow("dis_ultrafast") is shared_flow("dis_ultrafast")
    assert shared_flow("dis_ultrafast") is not shared_flow("dis_fast")


def test_to_gray_matches_opencv_for_single_frames_and_stacks():
    rgb = np.random.default_rng(0).integers(0, 256, (2, 3, 5, 7, 3), dtype=np.uint8)
    gray = to_gray(rgb)
    assert gray.shape == (2, 3, 5, 7)
    np.testing.assert_array_equal(gray[1, 2], cv2.cvtColor(rgb[1, 2], cv2.COLOR_RGB2GRAY))
    np.testing.assert_array_equal(to_gray(rgb[0, 0]), gray[0, 0])
