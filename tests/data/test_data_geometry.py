"""mme.data.geometry: the crop samplers' boxes, and frames and trajectories kept consistent."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mme.data.geometry import Geometry, multi_scale_crop, random_resized_crop, resize_frames, short_side_crop


def test_multi_scale_crop_boxes_are_the_reference_set():
    """240x320, scales (1, .875, .75, .66): sides 240, 210, 180, 158; neighbour pairs; 13 offsets."""
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(3000):
        geometry = multi_scale_crop(240, 320, 224, rng)
        assert geometry.out_size == (224, 224) and not geometry.flip
        seen.add(geometry.box)
    sides = [240, 210, 180, 158]
    expected = set()
    for i, h in enumerate(sides):
        for j, w in enumerate(sides):
            if abs(i - j) > 1:
                continue
            sx, sy = (320 - w) // 4, (240 - h) // 4
            grid = [(0, 0), (4, 0), (0, 4), (4, 4), (2, 2), (0, 2), (4, 2), (2, 4), (2, 0)]
            grid += [(1, 1), (3, 1), (1, 3), (3, 3)]
            expected |= {(gx * sx, gy * sy, w, h) for gx, gy in grid}
    assert seen == expected


def test_multi_scale_crop_snaps_to_the_input_size_and_flips():
    rng = np.random.default_rng(1)
    boxes = {multi_scale_crop(256, 340, 224, rng, scales=(0.875,), max_distort=0).box[2:] for _ in range(50)}
    assert boxes == {(224, 224)}  # int(256 * .875) = 224
    boxes = {multi_scale_crop(256, 340, 224, rng, scales=(0.88,), max_distort=0).box[2:] for _ in range(5)}
    assert boxes == {(224, 224)}  # 225 is within 3 px: snapped
    flips = [multi_scale_crop(240, 320, 224, rng, flip=True).flip for _ in range(200)]
    assert 60 < sum(flips) < 140


def test_random_resized_crop_ranges():
    rng = np.random.default_rng(0)
    for _ in range(300):
        x0, y0, w, h = random_resized_crop(240, 320, 224, rng).box
        assert x0 >= 0 and x0 + w <= 320 and y0 >= 0 and y0 + h <= 240
        area = w * h / (240 * 320)
        assert 0.25 - 0.01 <= area <= 1.0
        assert 3 / 4 - 0.02 <= w / h <= 4 / 3 + 0.02
    # No draw fits a very wide aspect in a tall frame: the centred fallback, aspect clamped.
    assert random_resized_crop(300, 20, 16, rng, area=(0.99, 1.0), aspect=(3.0, 4.0)).box == (0, 146, 20, 7)


def test_short_side_crops_along_the_long_side():
    assert [short_side_crop(240, 320, 224, crop=c, num_crops=3).box for c in range(3)] == [
        (0, 0, 240, 240),
        (40, 0, 240, 240),
        (80, 0, 240, 240),
    ]
    assert short_side_crop(320, 240, 224, crop=2, num_crops=3).box == (0, 80, 240, 240)  # portrait: bottom
    assert short_side_crop(240, 320, 224).box == (40, 0, 240, 240)  # one crop: centre
    # Short side to 256 then a 224 centre crop = a 210-px square of the source.
    assert short_side_crop(240, 320, 224, short_side_size=256).box == (55, 15, 210, 210)


def test_apply_to_frames_crop_resize_flip_by_hand():
    frames = np.arange(2 * 4 * 6 * 3, dtype=np.uint8).reshape(2, 4, 6, 3)
    same = Geometry((1, 1, 3, 2), (3, 2)).apply_to_frames(frames)
    np.testing.assert_array_equal(same, frames[:, 1:3, 1:4])
    flipped = Geometry((1, 1, 3, 2), (3, 2), flip=True).apply_to_frames(frames)
    np.testing.assert_array_equal(flipped, frames[:, 1:3, 1:4][:, :, ::-1])
    constant = np.full((1, 10, 10, 3), 77, np.uint8)
    assert (Geometry((2, 2, 5, 5), (20, 20)).apply_to_frames(constant) == 77).all()
    ramp = np.tile(np.arange(0, 200, 20, dtype=np.uint8)[None, None, :, None], (1, 2, 1, 3))  # 10 wide
    doubled = Geometry((0, 0, 10, 2), (20, 2)).apply_to_frames(ramp)[0, 0, :, 0]
    np.testing.assert_array_equal(doubled[1:-1:2], [5, 25, 45, 65, 85, 105, 125, 145, 165])  # centre-aligned


def test_strong_downscale_is_antialiased():
    stripes = np.zeros((1, 60, 60, 3), np.uint8)
    stripes[:, :, ::2] = 255  # 1-px stripes shrunk 3x: plain bilinear samples single pixels (aliasing)
    aliased = cv2.resize(stripes[0], (20, 20), interpolation=cv2.INTER_LINEAR)
    assert set(np.unique(aliased)) == {0, 255}
    small = resize_frames(stripes, (20, 20))
    assert np.abs(small.astype(float) - 127.5).max() < 16  # a low-passed grey, small ripple


def test_map_points_matches_the_resize_convention():
    geometry = Geometry((10, 20, 40, 30), (80, 60))
    # Source pixel 10's centre covers output pixels 0 and 1: their midpoint, 0.5.
    np.testing.assert_allclose(geometry.map_points(np.array([10.0, 20.0])), [0.5, 0.5])
    flipped = Geometry((10, 20, 40, 30), (80, 60), flip=True)
    corners = np.array([[9.5, 19.5], [49.5, 49.5]])  # the box's outer edges (pixel centres at integers)
    np.testing.assert_allclose(flipped.map_points(corners), [[79.5, -0.5], [-0.5, 59.5]])


def _translating_frames(
    count: int, step: tuple[float, float], height: int = 96, width: int = 128
) -> np.ndarray:
    """Frames translating by ``step`` (dx, dy) px per frame: a smooth texture in green and blue (for
    optical flow) and a Gaussian blob in red (whose centroid measures the motion), sub-pixel exact."""
    rng = np.random.default_rng(0)
    margin = 32
    big = (height + 2 * margin, width + 2 * margin)
    texture = cv2.resize(rng.uniform(40, 215, (big[0] // 6, big[1] // 6, 2)).astype(np.float32), big[::-1])
    texture = cv2.GaussianBlur(texture, (0, 0), 1.5)
    ys, xs = np.mgrid[0 : big[0], 0 : big[1]].astype(np.float32)
    frames = []
    for t in range(count):
        matrix = np.float32([[1, 0, step[0] * t - margin], [0, 1, step[1] * t - margin]])
        moved = cv2.warpAffine(texture, matrix, (width, height), flags=cv2.INTER_CUBIC)
        cx, cy = 60 + step[0] * t, 50 + step[1] * t
        blob = 255 * np.exp(
            -((xs[:height, :width] - cx) ** 2 + (ys[:height, :width] - cy) ** 2) / (2 * 4.0**2)
        )
        frames.append(np.dstack([blob, moved]))
    return np.clip(np.rint(np.stack(frames)), 0, 255).astype(np.uint8)


def _centroid(frame: np.ndarray) -> np.ndarray:
    weight = frame[..., 0].astype(np.float64)
    weight = np.where(weight > 8, weight, 0.0)  # ignore the blob's far tails (quantised to 0..8)
    ys, xs = np.mgrid[0 : frame.shape[0], 0 : frame.shape[1]]
    return np.array([(xs * weight).sum(), (ys * weight).sum()]) / weight.sum()


@pytest.mark.parametrize("flip", [False, True])
def test_trajectories_follow_the_frames_under_crop_resize_flip(flip):
    """A translating pattern: the displacement seen in the augmented frames equals the geometry-mapped
    stored trajectories (offline) and the trajectories tracked on the augmented frames (online)."""
    from mme.motion import TrajectoryConfig, dense_clip_trajectories

    step = (3.0, -2.0)
    frames = _translating_frames(5, step)
    geometry = Geometry((16, 12, 96, 72), (64, 48), flip=flip)  # scale 2/3 in x and y
    augmented = geometry.apply_to_frames(frames)
    expected = np.array([step[0] * 2 / 3 * (-1 if flip else 1), step[1] * 2 / 3])
    observed = np.mean([_centroid(augmented[t + 1]) - _centroid(augmented[t]) for t in range(4)], axis=0)
    np.testing.assert_allclose(observed, expected, atol=0.05)

    # Offline: what extraction would store at native resolution (stride 8, 12x16 grid), mapped.
    stored_disp = np.broadcast_to(np.asarray(step, np.float32), (1, 4, 12, 16, 2)).copy()
    stored_valid = np.ones((1, 4, 12, 16), bool)
    disp, valid = geometry.apply_to_trajectories(stored_disp, stored_valid, source_stride=8)
    assert disp.shape == (1, 4, 6, 8, 2) and valid.shape == (1, 4, 6, 8)
    inside = valid.numpy()
    assert inside[:, 0].all()  # every seed starts valid, some leave the 64x48 frame later
    np.testing.assert_allclose(
        disp.numpy()[inside], np.broadcast_to(observed, (int(inside.sum()), 2)), atol=0.12
    )

    # Online: tracked on the augmented frames themselves.
    online_disp, online_valid = dense_clip_trajectories(
        augmented, np.arange(5)[None], TrajectoryConfig(steps=4)
    )
    tracked = online_disp.numpy()[online_valid.numpy()]
    np.testing.assert_allclose(np.median(tracked, axis=0), observed, atol=0.25)


def test_trajectories_respect_the_stored_scale():
    """Trajectories extracted from frames shrunk by 1/2 map to the same output displacements."""
    geometry = Geometry((0, 0, 64, 64), (32, 32))
    full = np.broadcast_to(np.float32([2.0, 1.0]), (1, 1, 8, 8, 2)).copy()
    half = np.broadcast_to(np.float32([1.0, 0.5]), (1, 1, 4, 4, 2)).copy()
    a, _ = geometry.apply_to_trajectories(full, np.ones((1, 1, 8, 8), bool), 8)
    b, _ = geometry.apply_to_trajectories(half, np.ones((1, 1, 4, 4), bool), 8, source_scale=(0.5, 0.5))
    np.testing.assert_allclose(a.numpy(), 1.0 * np.float32([1.0, 0.5]) * np.ones_like(a.numpy()))
    np.testing.assert_allclose(b.numpy(), a.numpy())
