"""Video decoding with random access to frame indices (:func:`open_video`, :class:`VideoReader`).

Frame ``i`` is the i-th stored frame in presentation order, from a packet index built at open
(exact under edit lists, B-frames and variable frame rate). Seeking, undecodable frames and
truncated files: docs/data.md, "Decoding".
"""

from __future__ import annotations

import abc
import bisect
import logging
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from mme.errors import DataError

BACKENDS = ("pyav", "decord")

_log = logging.getLogger("mme.io.video")


class VideoReader(abc.ABC):
    """Random and sequential access to the frames of one video file."""

    path: Path

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    @abc.abstractmethod
    def num_frames(self) -> int:
        """Number of frames known to decode (lowered when decoding finds the file shorter)."""

    @property
    @abc.abstractmethod
    def fps(self) -> float:
        """Average frame rate from the container (frames per second)."""

    @property
    @abc.abstractmethod
    def height(self) -> int: ...

    @property
    @abc.abstractmethod
    def width(self) -> int: ...

    @abc.abstractmethod
    def _read(self, wanted: np.ndarray) -> dict[int, np.ndarray]:
        """Decode the sorted unique indices ``wanted``; map each to its (H, W, 3) uint8 frame."""

    @abc.abstractmethod
    def iter_frames(self) -> Iterator[np.ndarray]:
        """Yield every frame in order as ``uint8 (H, W, 3)`` RGB."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def get_frames(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Frames at ``indices`` as ``uint8 (n, H, W, 3)`` RGB, in the order asked (repeats allowed)."""
        idx = np.asarray(indices)
        if idx.ndim != 1 or idx.size == 0:
            raise ValueError(f"indices must be a non-empty 1-D sequence, got shape {idx.shape}")
        if not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"indices must be integers, got dtype {idx.dtype}")
        idx = idx.astype(np.int64)
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= self.num_frames:
            raise IndexError(f"frame index out of range [0, {self.num_frames}) in {self.path}: {lo}..{hi}")
        wanted = np.unique(idx)
        frames = self._read(wanted)
        return np.stack([frames[int(i)] for i in idx])

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self.path)!r}, frames={self.num_frames}, fps={self.fps:.3f}, "
            f"size={self.width}x{self.height})"
        )


def open_video(path: str | os.PathLike[str], backend: str = "pyav", threads: int = 1) -> VideoReader:
    """Open ``path`` with ``backend`` ("pyav" or "decord"); ``threads`` 0 lets the decoder choose."""
    if backend not in BACKENDS:
        raise DataError(f"unknown video backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if threads < 0:
        raise DataError(f"decoder threads must be >= 0, got {threads}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"video not found: {path}")
    if backend == "decord":
        return DecordReader(path, threads=threads)
    return PyAVReader(path, threads=threads)


class PyAVReader(VideoReader):
    """PyAV (FFmpeg) reader with a packet index for exact, seek-based random access."""

    # Seek forward only to skip at least this many frames: a seek flushes the decoder and
    # restarts at a keyframe, which costs more than decoding a few frames (benchmarks/data.py).
    SEEK_MIN_SKIP = 8

    def __init__(self, path: str | os.PathLike[str], threads: int = 1) -> None:
        super().__init__(path)
        import av

        self._av = av
        try:
            self._container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError, ValueError) as error:
            raise DataError(f"cannot open video {self.path}: {error}") from error
        try:
            if not self._container.streams.video:
                raise DataError(f"no video stream in {self.path}")
            self._stream = self._container.streams.video[0]
            self._stream.thread_type = "AUTO"
            self._stream.codec_context.thread_count = threads
            self._height = int(self._stream.codec_context.height)
            self._width = int(self._stream.codec_context.width)
            self.header_frames = int(self._stream.frames or 0)
            self._build_index()
            self._fps = self._average_rate()
        except BaseException:
            self._container.close()
            raise
        self._decoder: Iterator[tuple[int, Any]] | None = None
        self._run_keyframe = -1  # keyframe the active decoder started from
        self._pos = -1  # index of the last frame the active decoder produced
        self._last: tuple[int, Any] | None = None  # that frame (the one to repeat)
        from av.video.reformatter import VideoReformatter

        self._reformatter = VideoReformatter()
        self.decode_errors = 0  # packets the decoder rejected
        self.frames_decoded = 0  # frames decoded so far (what seeking saves shows here)

    # -- metadata -------------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return self._num_frames

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def height(self) -> int:
        return self._height

    @property
    def width(self) -> int:
        return self._width

    def _build_index(self) -> None:
        """Demux (no decoding): every frame's pts in presentation order, keyframes and seek stamps."""
        av = self._av
        stamps: list[int] = []
        keys: dict[int, int] = {}  # keyframe pts -> the timestamp to seek to (its dts when known)
        first_dts: int | None = None
        try:
            for packet in self._container.demux(self._stream):
                if packet.size == 0:
                    continue
                stamp = packet.pts if packet.pts is not None else packet.dts
                if stamp is None:
                    raise DataError(
                        f"{self.path}: video packets without timestamps; re-encode it "
                        "(e.g. ffmpeg -i IN -c:v libx264 OUT.mp4)"
                    )
                decode_stamp = int(packet.dts) if packet.dts is not None else int(stamp)
                first_dts = decode_stamp if first_dts is None else min(first_dts, decode_stamp)
                stamps.append(int(stamp))
                if packet.is_keyframe:
                    keys[int(stamp)] = decode_stamp
        except av.error.FFmpegError as error:
            if not stamps:
                raise DataError(f"cannot read video {self.path}: {error}") from error
            _log.warning("%s: demuxing stopped early (%s); indexing %d frames", self.path, error, len(stamps))
        if not stamps or first_dts is None:
            raise DataError(f"no video frames in {self.path}")
        pts = np.unique(np.asarray(stamps, dtype=np.int64))  # sorted; shared timestamps count once
        self._pts = pts
        self._pts_list = pts.tolist()
        self._num_frames = len(pts)
        # Seek targets, per keyframe index: (pts, dts). Demuxers with an index (MP4, MKV, AVI,
        # WebM) compare a seek stamp with pts: the keyframe's pts lands exactly on it, while its
        # dts (< pts with B-frames) would land one keyframe early. Demuxers without one (MPEG-TS)
        # compare with dts: there the pts may land one keyframe late, which _read detects and then
        # switches this reader to dts stamps. Frame 0 is a target too: the very start.
        targets = {0: (first_dts, first_dts)}
        for stamp, decode_stamp in keys.items():
            index = int(np.searchsorted(pts, stamp))
            targets.setdefault(index, (stamp, decode_stamp))
        self._keyframes = sorted(targets)
        self._seek_stamps = targets
        self._seek_by_dts = False
        if self.header_frames and self.header_frames != self._num_frames:
            _log.debug("%s: header says %d frames, %d packets", self.path, self.header_frames, len(pts))

    def _average_rate(self) -> float:
        for rate in (self._stream.average_rate, self._stream.guessed_rate, self._stream.base_rate):
            if rate:
                return float(rate)
        if self._num_frames > 1 and self._stream.time_base:
            span = float((self._pts[-1] - self._pts[0]) * self._stream.time_base)
            if span > 0:
                return (self._num_frames - 1) / span
        raise DataError(f"{self.path}: the container gives no frame rate")

    # -- decoding -------------------------------------------------------------------------------
    def _index_of(self, frame: Any) -> int:
        stamp = frame.pts if frame.pts is not None else frame.dts
        if stamp is None:
            raise DataError(f"{self.path}: decoded a frame without a timestamp")
        # Index of the last indexed frame at or before this timestamp (exact match in practice).
        return max(bisect.bisect_right(self._pts_list, int(stamp)) - 1, 0)

    def _frames(self) -> Iterator[tuple[int, Any]]:
        """(index, frame) pairs from the current position; rejected packets are skipped."""
        av = self._av
        for packet in self._container.demux(self._stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError as error:
                self.decode_errors += 1
                _log.debug("%s: packet at pts %s does not decode: %s", self.path, packet.pts, error)
                continue
            for frame in frames:
                self.frames_decoded += 1
                yield self._index_of(frame), frame

    def _seek(self, keyframe_index: int) -> None:
        av = self._av
        try:
            stamp = self._seek_stamps[keyframe_index][1 if self._seek_by_dts else 0]
            self._container.seek(stamp, stream=self._stream, backward=True, any_frame=False)
        except av.error.FFmpegError as error:
            raise DataError(f"cannot seek in {self.path}: {error}") from error
        self._decoder = self._frames()
        self._run_keyframe = keyframe_index  # demuxers may land earlier: never re-seek to it
        self._pos = -1
        self._last = None

    def _worth_seeking(self, keyframe: int) -> bool:
        """Seek only to skip at least SEEK_MIN_SKIP frames (a seek flushes the decoder)."""
        return keyframe - (self._pos + 1) >= self.SEEK_MIN_SKIP and keyframe != self._run_keyframe

    def _keyframe_at_or_before(self, index: int) -> int:
        return self._keyframes[bisect.bisect_right(self._keyframes, index) - 1]

    def _keyframe_before(self, keyframe: int) -> int:
        position = bisect.bisect_left(self._keyframes, keyframe)
        return self._keyframes[max(position - 1, 0)]

    def _rgb(self, frame: Any) -> np.ndarray:
        # One reformatter (FFmpeg's swscale context) per reader: a frame's own to_ndarray builds a
        # new one every time, which costs about as much as decoding the frame.
        return self._reformatter.reformat(frame, format="rgb24").to_ndarray()

    def _read(self, wanted: np.ndarray) -> dict[int, np.ndarray]:
        out: dict[int, np.ndarray] = {}
        converted: dict[int, np.ndarray] = {}  # RGB of the frames handed out, by their own index
        pending = deque(int(i) for i in wanted)

        def hand_out(wanted_index: int, source: tuple[int, Any]) -> None:
            if source[0] not in converted:
                converted[source[0]] = self._rgb(source[1])
            out[wanted_index] = converted[source[0]]

        def consume(current: tuple[int, Any]) -> None:
            """Hand ``current`` to the wanted indices it settles, then make it the last frame seen."""
            index = current[0]
            while pending and pending[0] <= index:
                wanted_index = pending.popleft()
                # A wanted frame that never came out of the decoder: the closest preceding one.
                hand_out(wanted_index, current if wanted_index == index or self._last is None else self._last)
            self._pos, self._last = index, current

        retreat: int | None = None  # keyframe to seek to after a seek landed past its target
        while pending:
            seek_to = self._keyframe_at_or_before(pending[0]) if retreat is None else retreat
            if (
                retreat is not None
                or self._decoder is None
                or self._pos >= pending[0]
                or self._worth_seeking(seek_to)
            ):
                self._seek(seek_to)
            retreat = None
            fresh = self._pos < 0
            assert self._decoder is not None
            for index, frame in self._decoder:
                if fresh and index > pending[0] and seek_to > 0:
                    retreat = self._retreat_from(seek_to)  # the seek landed past the wanted frame
                    break
                fresh = False
                consume((index, frame))
                if not pending or self._worth_seeking(self._keyframe_at_or_before(pending[0])):
                    break  # done, or the next wanted frame is cheaper to reach by seeking
            else:
                self._decoder = None
                if self._last is None and seek_to > 0:
                    retreat = self._retreat_from(seek_to)  # nothing came out after this seek
                    continue
                if self._last is None:
                    raise DataError(f"no frame of {self.path} could be decoded")
                self._record_end(self._last[0] + 1)
                while pending:  # past the end: repeat the last decodable frame
                    hand_out(pending.popleft(), self._last)
        return out

    def _retreat_from(self, keyframe: int) -> int:
        """Where to seek after a seek to ``keyframe`` landed late or gave nothing.

        First retry the same keyframe by dts (MPEG-TS seeks by dts), then go back one keyframe.
        """
        if not self._seek_by_dts:
            self._seek_by_dts = True
            return keyframe
        return self._keyframe_before(keyframe)

    def _record_end(self, true_count: int) -> None:
        if true_count < self._num_frames:
            _log.warning(
                "%s: only %d of %d frames decode; later frames repeat frame %d",
                self.path,
                true_count,
                self._num_frames,
                true_count - 1,
            )
            self._num_frames = true_count

    def iter_frames(self) -> Iterator[np.ndarray]:
        """Every frame in order from a sequential decode; gaps repeat the previous frame."""
        self._seek(0)
        decoder, self._decoder = self._decoder, None  # a random read must not reuse this pass
        assert decoder is not None
        expected = 0
        previous: np.ndarray | None = None
        for index, frame in decoder:
            if index < expected:
                continue  # leading frames of an open GOP, already covered
            rgb = self._rgb(frame)
            while expected < index:
                yield previous if previous is not None else rgb
                expected += 1
            yield rgb
            previous = rgb
            expected = index + 1
        if previous is None:
            raise DataError(f"no frame of {self.path} could be decoded")
        self._record_end(expected)

    def close(self) -> None:
        self._decoder = None
        self._last = None
        container = getattr(self, "_container", None)
        if container is not None:
            container.close()
            self._container = None


class DecordReader(VideoReader):
    """decord reader behind the same interface (optional dependency: ``pip install decord``)."""

    def __init__(self, path: str | os.PathLike[str], threads: int = 1) -> None:
        super().__init__(path)
        try:
            import decord
        except ImportError as error:
            raise DataError("the decord backend needs `pip install decord` (or backend='pyav')") from error
        self._errors: tuple[type[BaseException], ...] = (decord._ffi.base.DECORDError, RuntimeError)
        try:
            self._vr = decord.VideoReader(str(self.path), ctx=decord.cpu(0), num_threads=threads)
            self._num_frames = len(self._vr)
            if self._num_frames == 0:
                raise DataError(f"no video frames in {self.path}")
            first = self._vr[0].asnumpy()
        except self._errors as error:
            raise DataError(f"cannot open video {self.path}: {error}") from error
        self._height, self._width = int(first.shape[0]), int(first.shape[1])
        self._fps = float(self._vr.get_avg_fps())

    @property
    def num_frames(self) -> int:
        return self._num_frames

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def height(self) -> int:
        return self._height

    @property
    def width(self) -> int:
        return self._width

    def _read(self, wanted: np.ndarray) -> dict[int, np.ndarray]:
        try:
            batch = self._vr.get_batch(wanted.tolist()).asnumpy()
        except self._errors as error:
            raise DataError(f"cannot decode frames of {self.path}: {error}") from error
        return {int(i): batch[n] for n, i in enumerate(wanted)}

    def iter_frames(self, chunk: int = 32) -> Iterator[np.ndarray]:
        for start in range(0, self._num_frames, chunk):
            yield from self._read(np.arange(start, min(start + chunk, self._num_frames))).values()

    def close(self) -> None:
        self._vr = None


_CONTAINER_FORMATS = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".avi": "avi",
    ".ts": "mpegts",
}


def write_video(
    path: str | os.PathLike[str],
    frames: Iterable[np.ndarray],
    fps: float = 25.0,
    codec: str = "libx264",
    crf: int | None = 18,
    preset: str | None = "veryfast",
    gop: int | None = None,
    options: dict[str, str] | None = None,
) -> int:
    """Encode RGB uint8 frames to ``path`` (yuv420p, container by suffix) atomically; returns the count."""
    import av

    from mme.utils.atomic import atomic_path

    path = Path(path)
    container_format = _CONTAINER_FORMATS.get(path.suffix.lower())
    if container_format is None:
        raise DataError(f"cannot tell the container of {path}: use one of {', '.join(_CONTAINER_FORMATS)}")
    encoder_options: dict[str, str] = {}
    if codec == "libx264":
        if crf is not None:
            encoder_options["crf"] = str(crf)
        if preset is not None:
            encoder_options["preset"] = preset
    if gop is not None:
        encoder_options["g"] = str(gop)
    encoder_options.update(options or {})
    count = 0
    with atomic_path(path) as tmp, av.open(str(tmp), "w", format=container_format) as container:
        stream = None
        for frame in frames:
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise ValueError(f"frames must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
            if stream is None:
                height, width = frame.shape[:2]
                if height % 2 or width % 2:
                    raise ValueError(f"yuv420p needs even frame sizes, got {width}x{height}")
                stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                stream.options = encoder_options
            elif frame.shape[:2] != (stream.height, stream.width):
                size = f"{frame.shape[1]}x{frame.shape[0]}"
                raise ValueError(f"frame {count} is {size}, not {stream.width}x{stream.height}")
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            container.mux(stream.encode(video_frame))
            count += 1
        if stream is None:
            raise ValueError(f"no frames to write to {path}")
        container.mux(stream.encode(None))
    return count
