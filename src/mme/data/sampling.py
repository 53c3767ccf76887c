"""Which raw frames a clip is made of, input and dense (docs/data.md, "Clip sampling")."""

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
    """T frames ``stride`` apart from a random (``rng``) or centred start; ``steps`` > 0 adds dense ones."""
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
    """Starts of ``num_clips`` evenly spaced test clips; None where the video is shorter than a clip."""
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
