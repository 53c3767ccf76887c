from __future__ import annotations

import numpy as np
import pytest

from mme.errors import DataError
from mme.motion.store import (
    MAGIC,
    TrajectoryMeta,
    TrajectoryWriter,
    read_trajectories,
    read_trajectory_meta,
    verify_trajectory_file,
)


def make_meta(**overrides) -> TrajectoryMeta:
    fields = dict(
        num_frames=0, width=48, height=32, steps=4, grid_stride=8, grid_height=4, grid_width=6,
        flow="dis_fine", median_filter=True, max_displacement=20.0, fps=29.97, source_width=96,
        source_height=64, source_bytes=12345, max_side=48,
    )  # fmt: skip
    fields.update(overrides)
    return TrajectoryMeta(**fields)


def random_trajectories(frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    disp = rng.uniform(-20, 20, (frames, 4, 4, 6, 2)).astype(np.float32)
    death = rng.integers(0, 5, (frames, 4, 6))  # number of valid steps
    valid = np.arange(4)[None, :, None, None] < death[:, None]
    disp[~np.concatenate([np.ones_like(valid[:, :1]), valid[:, :-1]], axis=1)] = 0.0
    return disp, valid


def write(path, disp, valid, **overrides) -> TrajectoryMeta:
    writer = TrajectoryWriter(make_meta(**overrides))
    for d, v in zip(disp, valid, strict=True):
        writer.append(d, v)
    writer.save(path)
    return writer.meta


def test_round_trip_keeps_validity_exactly_and_displacements_to_a_twelfth_of_a_pixel(tmp_path):
    disp, valid = random_trajectories(37)  # 3 blocks, the last one partial
    write(tmp_path / "a.traj", disp, valid)
    got_disp, got_valid, meta = read_trajectories(tmp_path / "a.traj")
    assert got_disp.shape == disp.shape and got_disp.dtype == np.float32
    np.testing.assert_array_equal(got_valid, valid)
    assert np.abs(got_disp - disp).max() <= 1 / 12 + 1e-6
    assert meta.num_frames == 37 and meta.fps == 29.97 and meta.scale_x == 0.5 and len(meta.blocks) == 3


def test_chosen_start_frames_come_back_in_the_order_asked(tmp_path):
    disp, valid = random_trajectories(40, seed=1)
    write(tmp_path / "a.traj", disp, valid)
    all_disp, all_valid, _ = read_trajectories(tmp_path / "a.traj")
    picked = [33, 2, 2, 17, 39]
    some_disp, some_valid, _ = read_trajectories(tmp_path / "a.traj", start_frames=picked)
    np.testing.assert_array_equal(some_disp, all_disp[picked])
    np.testing.assert_array_equal(some_valid, all_valid[picked])
    with pytest.raises(IndexError, match="outside"):
        read_trajectories(tmp_path / "a.traj", start_frames=[40])


def test_files_are_deterministic(tmp_path):
    disp, valid = random_trajectories(20, seed=2)
    write(tmp_path / "a.traj", disp, valid)
    write(tmp_path / "b.traj", disp, valid)
    assert (tmp_path / "a.traj").read_bytes() == (tmp_path / "b.traj").read_bytes()


def test_truncated_file_is_a_data_error_naming_it(tmp_path):
    disp, valid = random_trajectories(20, seed=3)
    path = tmp_path / "clip.mp4.traj"
    write(path, disp, valid)
    data = path.read_bytes()
    for cut in (5, 20, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(DataError, match=r"clip\.mp4\.traj"):
            read_trajectories(path)


def test_flipped_byte_in_a_block_is_caught_by_the_checksum(tmp_path):
    disp, valid = random_trajectories(20, seed=4)
    path = tmp_path / "a.traj"
    meta = write(path, disp, valid)
    data = bytearray(path.read_bytes())
    data[meta.blocks[1][0] + 10] ^= 0xFF
    path.write_bytes(bytes(data))
    read_trajectories(path, start_frames=[0])  # block 0 is intact
    with pytest.raises(DataError, match="block 1 fails its checksum"):
        read_trajectories(path, start_frames=[17])
    with pytest.raises(DataError, match="checksum"):
        verify_trajectory_file(path)


def test_not_a_trajectory_file_or_missing_file(tmp_path):
    (tmp_path / "x.traj").write_bytes(b"hello world, this is no trajectory file")
    with pytest.raises(DataError, match="bad magic"):
        read_trajectory_meta(tmp_path / "x.traj")
    with pytest.raises(DataError, match="not found"):
        read_trajectories(tmp_path / "missing.traj")
    (tmp_path / "v.traj").write_bytes(MAGIC + (2).to_bytes(4, "little") + b"{}")
    with pytest.raises(DataError, match="format version None"):
        read_trajectory_meta(tmp_path / "v.traj")


def test_writer_checks_shapes_and_needs_frames(tmp_path):
    writer = TrajectoryWriter(make_meta())
    with pytest.raises(ValueError, match="expected disp"):
        writer.append(np.zeros((4, 5, 6, 2), np.float32), np.ones((4, 5, 6), bool))
    with pytest.raises(ValueError, match="no start frame"):
        writer.save(tmp_path / "empty.traj")
    assert not (tmp_path / "empty.traj").exists()


def test_displacements_beyond_the_clamp_saturate_at_the_int8_range(tmp_path):
    disp = np.full((1, 4, 4, 6, 2), 25.0, np.float32)
    write(tmp_path / "a.traj", disp, np.ones((1, 4, 4, 6), bool))
    got, _, _ = read_trajectories(tmp_path / "a.traj")
    np.testing.assert_allclose(got, 127 / 6)
