"""mme.io.video: random access equals a sequential decode, on every container and stream quirk."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from mme.errors import DataError
from mme.io.video import open_video, write_video


def moving_frames(count: int, width: int = 96, height: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth texture sliding 2 px/frame plus a bar whose length counts frames (each frame differs)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 16 + 2, (width + 2 * count) // 16 + 2, 3), dtype=np.uint8)
    texture = cv2.resize(coarse, (width + 2 * count, height), interpolation=cv2.INTER_CUBIC)
    frames = np.stack([texture[:, 2 * i : 2 * i + width] for i in range(count)])
    for i in range(count):
        frames[i, :4, : (i * width) // count] = 255
    return frames


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    """The same 75 frames in several containers; H.264 with B-frames and a short GOP."""
    folder = tmp_path_factory.mktemp("videos")
    frames = moving_frames(75)
    made = {}
    for name, codec, options in [
        ("clip.mp4", "libx264", {"bf": "3"}),
        ("clip.mkv", "libx264", {}),
        ("clip.ts", "libx264", {}),  # MPEG-TS: pts start near 1.4 s, seeking compares dts
        ("clip.avi", "mpeg4", {}),
        ("clip.webm", "libvpx-vp9", {"deadline": "realtime", "cpu-used": "8"}),
    ]:
        write_video(folder / name, frames, codec=codec, gop=10, options=options)
        made[name] = folder / name
    return made


def sequential(path: Path) -> np.ndarray:
    with open_video(path) as reader:
        return np.stack(list(reader.iter_frames()))


@pytest.mark.parametrize("name", ["clip.mp4", "clip.mkv", "clip.ts", "clip.avi", "clip.webm"])
def test_random_access_equals_sequential_decode(videos, name):
    full = sequential(videos[name])
    assert full.shape == (75, 64, 96, 3)
    rng = np.random.default_rng(1)
    requests = [[74], [0], [73, 74, 0, 74], [40, 3, 3, 60, 12]]
    requests += [rng.integers(0, 75, rng.integers(1, 17)).tolist() for _ in range(10)]
    with open_video(videos[name]) as reader:  # one reader: seeks backwards and forwards
        assert reader.num_frames == 75
        for indices in requests:
            got = reader.get_frames(indices)
            assert got.dtype == np.uint8 and got.shape == (len(indices), 64, 96, 3)
            np.testing.assert_array_equal(got, full[indices])


def test_frames_are_the_encoded_ones(videos):
    """Index i is the i-th encoded frame (not off by one), up to compression error."""
    source = moving_frames(75).astype(np.float32)
    with open_video(videos["clip.mp4"]) as reader:
        got = reader.get_frames([0, 37, 74]).astype(np.float32)
    for row, index in enumerate([0, 37, 74]):
        errors = np.abs(got[row] - source).mean(axis=(1, 2, 3))
        assert errors.argmin() == index and errors[index] < 6


def test_metadata(videos):
    with open_video(videos["clip.mp4"]) as reader:
        assert (reader.num_frames, reader.height, reader.width) == (75, 64, 96)
        assert reader.fps == pytest.approx(25.0)
        assert reader.header_frames == 75


@pytest.mark.parametrize("name", ["clip.mp4", "clip.mkv", "clip.ts", "clip.webm"])
def test_seeking_lands_on_the_keyframe(videos, name):
    """Keyframes every 10 frames: frame 72 costs frames 70..72 (plus decoder delay), not a GOP more."""
    with open_video(videos[name]) as reader:
        reader.get_frames([72])
        first = reader.frames_decoded
        reader.get_frames([41, 42, 55])  # seeks back to 40, then forward to 50
        assert first <= 8 and reader.frames_decoded - first <= 16, (first, reader.frames_decoded)


def test_pyav_and_decord_return_identical_frames(videos):
    pytest.importorskip("decord")
    indices = [74, 0, 31, 31, 73, 5, 60, 59]
    path = videos["clip.mp4"]
    with open_video(path) as pyav_reader, open_video(path, "decord") as decord_reader:
        assert decord_reader.num_frames == pyav_reader.num_frames
        assert (decord_reader.height, decord_reader.width) == (pyav_reader.height, pyav_reader.width)
        assert decord_reader.fps == pytest.approx(pyav_reader.fps)
        np.testing.assert_array_equal(decord_reader.get_frames(indices), pyav_reader.get_frames(indices))
        np.testing.assert_array_equal(np.stack(list(decord_reader.iter_frames())), sequential(path))


def test_variable_frame_rate_indexes_stored_frames(tmp_path):
    """Irregular timestamps that do not start at 0: index i is still the i-th stored frame."""
    frames = moving_frames(40)
    stamps = (500 + np.cumsum(np.random.default_rng(2).integers(15, 90, 40))).tolist()
    path = tmp_path / "vfr.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"g": "7"}
        for stamp, image in zip(stamps, frames, strict=True):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = stamp, Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    full = sequential(path)
    assert len(full) == 40
    errors = np.abs(full.astype(np.float32) - frames.astype(np.float32)).mean(axis=(1, 2, 3))
    assert errors.max() < 6
    with open_video(path) as reader:
        for indices in ([39, 0, 20], [1, 2, 3, 38], [25, 25, 7]):
            np.testing.assert_array_equal(reader.get_frames(indices), full[indices])


def _faststart_mp4(path: Path, count: int = 120) -> bytes:
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        stream.options = {"g": "12"}
        for image in moving_frames(count):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return path.read_bytes()


def test_header_longer_than_what_decodes(tmp_path):
    """Header 120 frames, data damaged after ~60: frames past the end repeat the last decodable one."""
    data = bytearray(_faststart_mp4(tmp_path / "good.mp4"))
    cut = int(len(data) * 0.6)
    data[cut:] = np.random.default_rng(3).integers(0, 256, len(data) - cut, dtype=np.uint8).tobytes()
    path = tmp_path / "damaged.mp4"
    path.write_bytes(bytes(data))
    with open_video(path) as reader:
        assert reader.header_frames == 120 and reader.num_frames == 120  # packets are all there
        got = reader.get_frames([0, 10, 119, 118])
        true_count = reader.num_frames
        assert 10 < true_count < 120  # the reader found out, and recorded the true count
        last = reader.get_frames([true_count - 1])[0]
        np.testing.assert_array_equal(got[2], last)
        np.testing.assert_array_equal(got[3], last)
    full = sequential(path)
    assert len(full) == true_count
    np.testing.assert_array_equal(got[:2], full[[0, 10]])


def test_truncated_file(tmp_path):
    data = _faststart_mp4(tmp_path / "good.mp4")
    path = tmp_path / "truncated.mp4"
    path.write_bytes(data[: len(data) // 2])
    with open_video(path) as reader:
        assert reader.header_frames == 120
        assert reader.num_frames < 120
        frames = reader.get_frames([0, reader.num_frames - 1])
        assert frames.shape[0] == 2 and reader.num_frames >= 1


def test_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match=r"not found.*nope\.mp4"):
        open_video(tmp_path / "nope.mp4")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(DataError, match=r"garbage\.mp4"):
        open_video(garbage)
    pytest.importorskip("decord")
    with pytest.raises(DataError, match=r"garbage\.mp4"):
        open_video(garbage, backend="decord")
    with pytest.raises(DataError, match="unknown video backend"):
        open_video(garbage, backend="opencv")


def test_out_of_range_index(videos):
    with open_video(videos["clip.mp4"]) as reader, pytest.raises(IndexError, match=r"clip\.mp4"):
        reader.get_frames([75])


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="needs /proc")
@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_open_close_does_not_leak_descriptors(videos, backend):
    if backend == "decord":
        pytest.importorskip("decord")
    for _ in range(3):  # warm up lazily opened library handles
        with open_video(videos["clip.mp4"], backend) as reader:
            reader.get_frames([5, 50])
    before = _open_descriptors()
    for i in range(40):
        with open_video(videos["clip.mp4"], backend) as reader:
            reader.get_frames([i, 74 - i])
    assert _open_descriptors() <= before


def test_write_video_rejects_bad_input(tmp_path):
    frames = moving_frames(3)
    with pytest.raises(DataError, match="container"):
        write_video(tmp_path / "x.xyz", frames)
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "odd.mp4", np.zeros((2, 11, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="no frames"):
        write_video(tmp_path / "empty.mp4", [])
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing half-written is left
