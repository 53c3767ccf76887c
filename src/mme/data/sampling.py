"""Which raw frames a clip is made of.

A clip is T frame indices into the video. For MME pre-training each tubelet k (sampled frames
2k, 2k+1) also needs the *dense* raw frames ``r_k, r_k+1, ..., r_k+L`` (``r_k`` = raw index of
sampled frame 2k) along which its trajectories are tracked (docs/method.md §4.1): the input is sparse,
the motion target temporally dense.

Two ways to place the T frames:

- **stride** (K400, UCF101, HMDB51): ``start + i*s``. The span a clip needs is
  ``max((T-1)*s, (T-tubelet)*s + L) + 1`` raw frames, so the last tubelet's trajectories stay
  inside the video too; training draws ``start`` uniformly among the spans that fit, testing
  spreads ``num_clips`` clips evenly from the first to the last possible start.
- **segment** (SSV2, TSN-style): the video is cut into T equal segments and one frame is taken
  in each: a uniformly random one in training, for test view c of n the one at fraction
  ``(c + 0.5) / n`` of the segment (the middle for a single view).

Short videos (stride sampling), by the configured policy: ``reduce_stride`` (default) uses the
largest stride < s whose span fits (real motion at a finer time step), and falls back to
``clamp`` when even stride 1 does not fit; ``clamp`` takes ``i*s`` from frame 0 and repeats the
last frame for indices past the end; ``loop`` wraps indices around the video. Dense indices past
the end are clamped to the last frame (segment sampling, ``clamp``) or wrapped (``loop``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClipIndices:
    """Raw frame indices of one clip: ``frames`` (T,), and ``dense`` (K, L+1) or None."""

    frames: np.ndarray
    dense: np.ndarray | None = None
    stride: int = 0  # the stride used (after a short-video reduction); 0 for segment sampling

    def union(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Distinct frames to decode, and where ``frames`` / ``dense`` point into them."""
        parts = [self.frames] if self.dense is None else [self.frames, self.dense.reshape(-1)]
        unique, inverse = np.unique(np.concatenate(parts), return_inverse=True)
        frame_pos = inverse[: len(self.frames)]
        dense_pos = None if self.dense is None else inverse[len(self.frames) :].reshape(self.dense.shape)
        return unique, frame_pos, dense_pos


def clip_span(num_frames: int, stride: int, steps: int = 0, tubelet: int = 2) -> int:
    """Raw frames a stride-sampled clip covers, including the last tubelet's L dense steps."""
    last_sampled = (num_frames - 1) * stride
    last_dense = (num_frames - tubelet) * stride + steps if steps else 0
    return max(last_sampled, last_dense) + 1


def _fit(indices: np.ndarray, video_frames: int, wrap: bool) -> np.ndarray:
    return indices % video_frames if wrap else np.minimum(indices, video_frames - 1)


def _dense(
    raw_frames: np.ndarray, steps: int, tubelet: int, video_frames: int, wrap: bool
) -> np.ndarray | None:
    """``r_k + 0..steps`` for the first frame of every tubelet, fitted into the video."""
    if steps <= 0:
        return None
    dense = raw_frames[::tubelet, None] + np.arange(steps + 1)[None, :]
    return _fit(dense, video_frames, wrap)


def stride_clip(
    video_frames: int,
    num_frames: int,
    stride: int,
    rng: np.random.Generator | None = None,
    steps: int = 0,
    tubelet: int = 2,
    short_video: str = "reduce_stride",
    start: int | None = None,
) -> ClipIndices:
    """T frames ``stride`` apart, from ``start`` (random with ``rng``, else the centred start).

    ``steps`` > 0 adds the dense indices ``r_k .. r_k+steps`` of each tubelet.
    """
    if video_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {video_frames}")
    for candidate in range(stride, 0, -1) if short_video == "reduce_stride" else [stride]:
        span = clip_span(num_frames, candidate, steps, tubelet)
        if span <= video_frames:
            if start is None:
                room = video_frames - span
                start = int(rng.integers(0, room + 1)) if rng is not None else room // 2
            elif not 0 <= start <= video_frames - span:
                raise ValueError(f"start {start} does not fit a span of {span} in {video_frames} frames")
            frames = start + np.arange(num_frames) * candidate
            return ClipIndices(frames, _dense(frames, steps, tubelet, video_frames, False), candidate)
    # Nothing fits: start at frame 0 and clamp or wrap.
    used = 1 if short_video == "reduce_stride" else stride
    wrap = short_video == "loop"
    raw = np.arange(num_frames) * used
    return ClipIndices(_fit(raw, video_frames, wrap), _dense(raw, steps, tubelet, video_frames, wrap), used)


def clip_starts(
    video_frames: int, num_frames: int, stride: int, num_clips: int, steps: int = 0
) -> list[int | None]:
    """Starts of ``num_clips`` test clips evenly spaced from the first to the last possible one.

    ``None`` entries mean the video is shorter than a clip (the short-video policy applies).
    """
    span = clip_span(num_frames, stride, steps)
    if span > video_frames:
        return [None] * num_clips
    room = video_frames - span
    if num_clips == 1:
        return [room // 2]
    return [round(c * room / (num_clips - 1)) for c in range(num_clips)]


def view_stride_clip(
    video_frames: int,
    num_frames: int,
    stride: int,
    clip_index: int,
    num_clips: int,
    steps: int = 0,
    tubelet: int = 2,
    short_video: str = "reduce_stride",
) -> ClipIndices:
    """Test clip ``clip_index`` of ``num_clips`` (deterministic)."""
    start = clip_starts(video_frames, num_frames, stride, num_clips, steps)[clip_index]
    if start is None:
        return stride_clip(video_frames, num_frames, stride, None, steps, tubelet, short_video)
    return stride_clip(video_frames, num_frames, stride, None, steps, tubelet, short_video, start=start)


def segment_clip(
    video_frames: int,
    num_frames: int,
    rng: np.random.Generator | None = None,
    steps: int = 0,
    tubelet: int = 2,
    view: int = 0,
    num_views: int = 1,
) -> ClipIndices:
    """One frame per segment: random in each segment with ``rng``, else at ``(view+0.5)/num_views``."""
    if video_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {video_frames}")
    length = video_frames / num_frames
    offsets = np.arange(num_frames) * length
    position = rng.random(num_frames) if rng is not None else np.full(num_frames, (view + 0.5) / num_views)
    frames = np.minimum(np.floor(offsets + position * length).astype(np.int64), video_frames - 1)
    return ClipIndices(frames, _dense(frames, steps, tubelet, video_frames, False), 0)
