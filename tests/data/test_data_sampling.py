"""mme.data.sampling: exact indices for every sampler and short-video policy."""

from __future__ import annotations

import numpy as np
import pytest

from mme.data.sampling import clip_span, clip_starts, segment_clip, stride_clip, view_stride_clip


def test_span_covers_the_last_tubelets_dense_frames():
    assert clip_span(16, 4) == 61  # (T-1)*s + 1
    assert clip_span(16, 4, steps=4) == 61  # last tubelet starts at 14*4=56, 56+4=60
    assert clip_span(16, 2, steps=4) == 33  # 14*2+4 = 32 > 30
    assert clip_span(16, 1, steps=4) == 19


def test_stride_clip_with_start_and_dense_indices():
    clip = stride_clip(100, 8, 4, steps=4, start=10)
    np.testing.assert_array_equal(clip.frames, [10, 14, 18, 22, 26, 30, 34, 38])
    np.testing.assert_array_equal(
        clip.dense, [[10, 11, 12, 13, 14], [18, 19, 20, 21, 22], [26, 27, 28, 29, 30], [34, 35, 36, 37, 38]]
    )
    assert clip.stride == 4
    # Without an rng the clip is centred: room = 100 - 29 = 71, start 35.
    assert stride_clip(100, 8, 4).frames[0] == 35


def test_stride_clip_random_start_covers_all_fitting_starts():
    rng = np.random.default_rng(0)
    starts = {int(stride_clip(40, 8, 4, rng, steps=4).frames[0]) for _ in range(400)}
    assert starts == set(range(40 - 29 + 1))  # every start whose span (29 frames) fits


def test_short_video_reduce_stride_then_clamp():
    clip = stride_clip(20, 8, 4, np.random.default_rng(0), steps=4)  # span 29 > 20; stride 2 -> 17 fits
    assert clip.stride == 2
    assert clip.frames[-1] - clip.frames[0] == 14 and clip.frames[-1] < 20
    assert clip.dense.max() < 20
    tiny = stride_clip(5, 8, 4, steps=4)  # even stride 1 (span 11) does not fit: clamp
    assert tiny.stride == 1
    np.testing.assert_array_equal(tiny.frames, [0, 1, 2, 3, 4, 4, 4, 4])
    np.testing.assert_array_equal(tiny.dense[1], [2, 3, 4, 4, 4])


def test_short_video_clamp_and_loop():
    clamp = stride_clip(10, 4, 4, short_video="clamp")
    np.testing.assert_array_equal(clamp.frames, [0, 4, 8, 9])
    loop = stride_clip(10, 4, 4, short_video="loop", steps=2)
    np.testing.assert_array_equal(loop.frames, [0, 4, 8, 2])
    np.testing.assert_array_equal(loop.dense, [[0, 1, 2], [8, 9, 0]])


def test_test_clips_are_evenly_spaced():
    assert clip_starts(100, 8, 4, 3) == [0, 36, 71]  # span 29, room 71
    assert clip_starts(100, 8, 4, 1) == [35]
    assert clip_starts(20, 8, 4, 2) == [None, None]
    np.testing.assert_array_equal(view_stride_clip(100, 8, 4, 2, 3).frames, 71 + 4 * np.arange(8))
    short = view_stride_clip(20, 8, 4, 1, 2)  # too short: the short-video policy (stride 2, centred)
    assert short.stride == 2 and short.frames[0] == (20 - 15) // 2


def test_segment_sampling():
    rng = np.random.default_rng(0)
    for _ in range(50):
        frames = segment_clip(80, 8, rng).frames
        assert all(10 * i <= f < 10 * (i + 1) for i, f in enumerate(frames))
    np.testing.assert_array_equal(segment_clip(80, 8).frames, [5, 15, 25, 35, 45, 55, 65, 75])
    np.testing.assert_array_equal(segment_clip(80, 8, view=0, num_views=2).frames, 10 * np.arange(8) + 2)
    np.testing.assert_array_equal(segment_clip(80, 8, view=1, num_views=2).frames, 10 * np.arange(8) + 7)
    short = segment_clip(5, 8)  # fewer frames than segments: frames repeat
    np.testing.assert_array_equal(short.frames, [0, 0, 1, 2, 2, 3, 4, 4])  # floor((i + .5) * 5 / 8)
    dense = segment_clip(80, 4, steps=3).dense
    np.testing.assert_array_equal(dense, [[10, 11, 12, 13], [50, 51, 52, 53]])
    np.testing.assert_array_equal(segment_clip(4, 4, steps=3).dense, [[0, 1, 2, 3], [2, 3, 3, 3]])


def test_union_positions_point_back_to_indices():
    clip = stride_clip(100, 8, 2, steps=4, start=0)
    unique, frame_pos, dense_pos = clip.union()
    assert len(unique) == len(set(unique)) and list(unique) == sorted(unique)
    np.testing.assert_array_equal(unique[frame_pos], clip.frames)
    np.testing.assert_array_equal(unique[dense_pos], clip.dense)
    np.testing.assert_array_equal(unique, np.arange(17))  # frames 0..14 step 2, dense 0..4 ... 12..16


def test_bad_input():
    with pytest.raises(ValueError, match="start"):
        stride_clip(100, 8, 4, start=90)
    with pytest.raises(ValueError, match="at least one frame"):
        stride_clip(0, 8, 4)
