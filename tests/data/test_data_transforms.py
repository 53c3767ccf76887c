"""mme.data.transforms: every op on a tiny clip whose right answer is known by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mme.data import transforms as T
from mme.errors import ConfigError


def clip_of(values, frames: int = 1) -> np.ndarray:
    """A (frames, 1, n, 3) clip whose pixels are ``values`` (grey: same in R, G, B)."""
    row = np.asarray(values, np.uint8)[None, :, None].repeat(3, axis=2)
    return np.ascontiguousarray(np.broadcast_to(row, (frames, 1, len(values), 3)))


def test_normalize_clip():
    clip = torch.tensor([0, 255], dtype=torch.uint8).view(1, 1, 1, 1, 2).expand(2, 3, 1, 1, 2).contiguous()
    out = T.normalize_clip(clip)
    assert out.dtype == torch.float32 and out.shape == (2, 3, 1, 1, 2)
    mean, std = torch.tensor(T.IMAGENET_MEAN), torch.tensor(T.IMAGENET_STD)
    torch.testing.assert_close(out[0, :, 0, 0, 0], -mean / std)
    torch.testing.assert_close(out[1, :, 0, 0, 1], (1 - mean) / std)
    assert T.normalize_clip(clip, torch.float64).dtype == torch.float64
    with pytest.raises(TypeError, match="uint8"):
        T.normalize_clip(clip.float())


def test_to_clip_tensor_layout():
    frames = np.arange(2 * 3 * 4 * 3, dtype=np.uint8).reshape(2, 3, 4, 3)
    clip = T.to_clip_tensor(frames)
    assert clip.shape == (3, 2, 3, 4) and clip.is_contiguous()
    assert int(clip[2, 1, 0, 3]) == int(frames[1, 0, 3, 2])


def test_invert_posterize_solarize():
    np.testing.assert_array_equal(T.invert(clip_of([0, 10, 255])), clip_of([255, 245, 0]))
    np.testing.assert_array_equal(
        T.posterize(clip_of([0b11010110, 255]), 2), clip_of([0b11000000, 0b11000000])
    )
    np.testing.assert_array_equal(T.posterize(clip_of([213]), 8), clip_of([213]))
    np.testing.assert_array_equal(T.posterize(clip_of([213]), 0), clip_of([0]))
    np.testing.assert_array_equal(
        T.solarize(clip_of([100, 127, 128, 200]), 128), clip_of([100, 127, 127, 55])
    )
    np.testing.assert_array_equal(T.solarize(clip_of([0, 255]), 256), clip_of([0, 255]))
    np.testing.assert_array_equal(
        T.solarize_add(clip_of([100, 120, 127, 128, 200]), 50), clip_of([150, 170, 177, 128, 200])
    )
    np.testing.assert_array_equal(T.solarize_add(clip_of([120]), 200), clip_of([255]))


def test_auto_contrast_stretches_each_frame():
    clip = np.concatenate([clip_of([50, 100, 150]), clip_of([10, 20, 30])])
    out = T.auto_contrast(clip)
    np.testing.assert_array_equal(out[0], clip_of([0, 127, 255])[0])  # (100-50) * 255/100 = 127.5 -> 127
    np.testing.assert_array_equal(out[1], clip_of([0, 127, 255])[0])  # its own range, not the clip's
    np.testing.assert_array_equal(T.auto_contrast(clip_of([7, 7])), clip_of([7, 7]))  # flat: unchanged


def test_equalize_by_hand():
    # 255 pixels at 10, 255 at 200, one at 250: step = (511 - 1) // 255 = 2;
    # lut(v) = (step // 2 + pixels below v) // step -> 10: 0, 200: (1 + 255) // 2 = 128, 250: 511 // 2 = 255.
    values = [10] * 255 + [200] * 255 + [250]
    np.testing.assert_array_equal(T.equalize(clip_of(values)), clip_of([0] * 255 + [128] * 255 + [255]))
    np.testing.assert_array_equal(T.equalize(clip_of([3, 3, 9])), clip_of([3, 3, 9]))  # step 0: unchanged


def test_colour_blends():
    np.testing.assert_array_equal(T.brightness(clip_of([100, 200]), 1.5), clip_of([150, 255]))
    np.testing.assert_array_equal(T.brightness(clip_of([100, 200]), 0.0), clip_of([0, 0]))
    pixel = np.array(
        [[[[200, 100, 0]]]], np.uint8
    )  # luma 0.299*200 + 0.587*100 = 118.5, rounded up by the fixed-point luma of OpenCV and PIL
    np.testing.assert_array_equal(T.color(pixel, 0.0), [[[[119, 119, 119]]]])
    np.testing.assert_array_equal(T.color(pixel, 1.0), pixel)
    np.testing.assert_array_equal(T.color(pixel, 2.0), [[[[255, 81, 0]]]])  # 119 + 2 * (100 - 119) = 81
    clip = np.concatenate([clip_of([0, 100]), clip_of([200, 200])])
    np.testing.assert_array_equal(
        T.contrast(clip, 0.0), np.concatenate([clip_of([50, 50]), clip_of([200, 200])])
    )
    np.testing.assert_array_equal(T.contrast(clip, 1.0), clip)


def test_sharpness_by_hand():
    frame = np.zeros((1, 5, 5, 3), np.uint8)
    frame[0, 2, 2] = 130
    smooth = T.sharpness(frame, 0.0)[0, ..., 0]
    assert smooth[2, 2] == 50  # 130 * 5 / 13
    assert smooth[1, 1] == smooth[1, 2] == smooth[3, 3] == 10  # 130 / 13
    assert smooth[0].sum() == 0 and smooth[:, 0].sum() == 0  # borders keep the original pixels
    np.testing.assert_array_equal(T.sharpness(frame, 1.0), frame)
    assert T.sharpness(frame, 2.0)[0, 2, 2, 0] == 210  # 50 + 2 * (130 - 50)


def test_geometric_ops_by_hand():
    frame = np.zeros((1, 5, 5, 3), np.uint8)
    frame[0, 2, 4] = 200  # right of the centre
    rotated = T.rotate(frame, 90.0)[0, ..., 0]  # counter-clockwise on screen: right -> top
    assert rotated[0, 2] == 200 and rotated.sum() == 200
    ramp = clip_of([10, 20, 30, 40, 50, 60, 70, 80])
    np.testing.assert_array_equal(T.translate_x(ramp, 0.25), clip_of([30, 40, 50, 60, 70, 80, 128, 128]))
    np.testing.assert_array_equal(T.translate_x(ramp, -0.25), clip_of([128, 128, 10, 20, 30, 40, 50, 60]))
    column = np.ascontiguousarray(ramp.transpose(0, 2, 1, 3))  # (1, 8, 1, 3)
    np.testing.assert_array_equal(
        T.translate_y(column, 0.25),
        np.ascontiguousarray(clip_of([30, 40, 50, 60, 70, 80, 128, 128]).transpose(0, 2, 1, 3)),
    )
    # PIL's shear (pixel centres at integers): output (x, y) reads input x + factor * y + factor / 2,
    # so factor 2 shifts row 0 by 1 and row 1 by 3.
    two_rows = np.concatenate([ramp, ramp], axis=1)
    sheared = T.shear_x(two_rows, 2.0)[0, :, :, 0]
    np.testing.assert_array_equal(sheared[0], [20, 30, 40, 50, 60, 70, 80, 128])
    np.testing.assert_array_equal(sheared[1], [40, 50, 60, 70, 80, 128, 128, 128])
    np.testing.assert_array_equal(T.shear_y(column, 0.0), column)


def test_rand_augment_parsing_and_levels():
    augment = T.RandAugment.from_string("rand-m7-n4-mstd0.5-inc1")
    assert augment == T.RandAugment(num_ops=4, magnitude=7.0, magnitude_std=0.5, increasing=True)
    assert augment.ops == T.INCREASING_OPS and len(augment.ops) == 15
    for bad in ("rnd-m7", "rand-m7-w0", "rand-x1"):
        with pytest.raises(ConfigError, match="RandAugment"):
            T.RandAugment.from_string(bad)
    fixed = T.RandAugment(num_ops=200, magnitude=7.0, increasing=True, prob=1.0)
    drawn = dict(fixed.draw(np.random.default_rng(0)))
    assert len(fixed.draw(np.random.default_rng(0))) == 200  # prob 1: every op applies
    assert drawn["PosterizeIncreasing"] == (2,)  # 4 - int(0.7 * 4)
    assert drawn["SolarizeIncreasing"] == (77,)  # 256 - int(0.7 * 256)
    assert drawn["SolarizeAdd"] == (77,)  # int(0.7 * 110)
    assert abs(drawn["Rotate"][0]) == pytest.approx(21.0)
    assert abs(drawn["ShearX"][0]) == pytest.approx(0.21)
    assert abs(drawn["TranslateXRel"][0]) == pytest.approx(0.315)
    assert drawn["ColorIncreasing"][0] == pytest.approx(1.63) or drawn["ColorIncreasing"][0] == pytest.approx(
        0.37
    )
    assert drawn["AutoContrast"] == ()
    halves = [len(T.RandAugment(num_ops=4).draw(np.random.default_rng(s))) for s in range(400)]
    assert 1.8 < np.mean(halves) < 2.2  # each op applies with probability 0.5


def test_rand_augment_treats_all_frames_alike():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (1, 24, 32, 3), dtype=np.uint8)
    clip = np.repeat(frame, 4, axis=0)
    augment = T.RandAugment.from_string("rand-m9-n4-mstd0.5-inc1")
    changed = 0
    for seed in range(20):
        out = augment(clip.copy(), np.random.default_rng(seed))
        assert out.shape == clip.shape and out.dtype == np.uint8
        assert all(np.array_equal(out[0], out[t]) for t in range(1, 4))
        changed += int(not np.array_equal(out, clip))
    assert changed >= 15


def test_random_erase_one_box_on_every_frame():
    frames = np.full((3, 40, 50, 3), 7, np.uint8)
    assert T.random_erase(frames.copy(), np.random.default_rng(0), prob=0.0).tolist() == frames.tolist()
    erased = T.random_erase(frames.copy(), np.random.default_rng(0), prob=1.0)
    changed = (erased != 7).any(axis=-1)
    assert changed.any()
    rows, cols = np.nonzero(changed.any(axis=0))
    box = changed[:, rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    assert box.mean() > 0.95  # one rectangle
    assert all((changed[t] == changed[0]).mean() > 0.95 for t in range(3))  # the same on every frame
    big = T.random_erase(
        np.zeros((2, 200, 200, 3), np.uint8), np.random.default_rng(3), prob=1.0, area=(0.3, 0.3)
    )
    filled = big[(big != 0).any(axis=-1)].astype(np.float32) / 255
    normalised = (filled - np.asarray(T.IMAGENET_MEAN)) / np.asarray(T.IMAGENET_STD)
    assert abs(normalised.mean()) < 0.1 and 0.85 < normalised.std() < 1.1  # ~N(0, 1) once normalised


def test_smooth_one_hot():
    targets = T.smooth_one_hot(torch.tensor([2, 0]), 4, 0.1)
    torch.testing.assert_close(targets[0], torch.tensor([0.025, 0.025, 0.925, 0.025]))
    torch.testing.assert_close(targets.sum(1), torch.ones(2))


def test_mixup_blends_clips_and_targets_alike():
    clip = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1, 1).expand(4, 3, 2, 4, 4).contiguous()
    labels = torch.tensor([0, 1, 2, 3])
    mix = T.Mixup(4, mixup_alpha=0.8, cutmix_alpha=0.0, label_smoothing=0.0, seed=0)
    mixed, targets = mix(clip.clone(), labels)
    lam = float(targets[0, 0])
    assert 0 < lam < 1
    torch.testing.assert_close(mixed[0], torch.full_like(clip[0], 3 * (1 - lam)))  # sample 0 with sample 3
    torch.testing.assert_close(targets[0], torch.tensor([lam, 0, 0, 1 - lam]))


def test_cutmix_pastes_a_box_and_corrects_lam():
    clip = torch.zeros(2, 3, 2, 20, 20)
    clip[1] = 1.0
    mix = T.Mixup(2, mixup_alpha=0.0, cutmix_alpha=1.0, label_smoothing=0.0, seed=1)
    for _ in range(5):
        mixed, targets = mix(clip.clone(), torch.tensor([0, 1]))
        pasted = float(mixed[0].mean())  # fraction of sample 0 that now shows sample 1
        assert pasted == pytest.approx(float(targets[0, 1]))
        assert bool((mixed[0, :, 0] == mixed[0, :, 1]).all())  # the same box on every frame


def test_mixup_off_keeps_the_batch_and_smooths():
    clip = torch.randn(2, 3, 2, 4, 4)
    mixed, targets = T.Mixup(5, prob=0.0, label_smoothing=0.1)(clip.clone(), torch.tensor([1, 4]))
    torch.testing.assert_close(mixed, clip)
    torch.testing.assert_close(targets, T.smooth_one_hot(torch.tensor([1, 4]), 5, 0.1))
    with pytest.raises(TypeError, match="normalised"):
        T.Mixup(5)(torch.zeros(2, 3, 2, 4, 4, dtype=torch.uint8), torch.tensor([0, 1]))
