"""Trajectory files: one per video, every start frame's trajectories (docs/trajectory-format.md)."""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mme.errors import DataError
from mme.motion.camera import CAMERA_MOTIONS
from mme.utils.atomic import atomic_write

MAGIC = b"MMETRAJ1"
FORMAT_VERSION = 2  # what the writer writes
READABLE_VERSIONS = (1, 2)  # 1: before camera_motion (= "none")
QUANT_SCALE = 6
BLOCK_FRAMES = 16
ZLIB_LEVEL = 6
_HEADER_LENGTH = struct.Struct("<I")
_MAX_HEADER = 64 << 20


@dataclass
class TrajectoryMeta:
    """A trajectory file's JSON header (docs/trajectory-format.md, "Header fields")."""

    num_frames: int
    width: int
    height: int
    steps: int
    grid_stride: int
    grid_height: int
    grid_width: int
    flow: str
    median_filter: bool
    max_displacement: float
    fps: float
    source_width: int
    source_height: int
    source_bytes: int
    max_side: int | None = None
    camera_motion: str = "none"
    camera_fallbacks: list[int] = field(default_factory=list)
    quant_scale: int = QUANT_SCALE
    block_frames: int = BLOCK_FRAMES
    format_version: int = FORMAT_VERSION
    blocks: list[list[int]] = field(default_factory=list)  # [offset, size, crc32] per block
    file_size: int = 0

    @property
    def scale_x(self) -> float:
        return self.width / self.source_width

    @property
    def scale_y(self) -> float:
        return self.height / self.source_height

    def settings(self) -> dict[str, Any]:
        """The fields that decide the content (not the format version: v1 equals v2 with no camera motion)."""
        keys = ("steps", "grid_stride", "flow", "median_filter", "max_displacement", "max_side")
        keys += ("camera_motion", "quant_scale", "block_frames", "source_bytes")
        return {key: getattr(self, key) for key in keys}


class TrajectoryWriter:
    """Collects one video's trajectories start frame by start frame, compressing full blocks."""

    def __init__(self, meta: TrajectoryMeta) -> None:
        self.meta = meta
        self._blocks: list[bytes] = []
        self._disp: list[np.ndarray] = []
        self._alive: list[np.ndarray] = []
        self._count = 0

    @property
    def count(self) -> int:
        return self._count

    def append(self, disp: np.ndarray, valid: np.ndarray) -> None:
        """Add the next start frame: disp float (L, Gh, Gw, 2) in pixels, valid bool (L, Gh, Gw)."""
        meta = self.meta
        grid = (meta.grid_height, meta.grid_width)
        if disp.shape != (meta.steps, *grid, 2) or valid.shape != (meta.steps, *grid):
            raise ValueError(
                f"expected disp {(meta.steps, *grid, 2)} and valid {(meta.steps, *grid)}, "
                f"got {disp.shape} and {valid.shape}"
            )
        quantised = np.clip(np.rint(disp * meta.quant_scale), -127, 127).astype(np.int8)
        self._disp.append(np.ascontiguousarray(quantised.transpose(0, 3, 1, 2)))  # (L, 2, Gh, Gw)
        self._alive.append(valid.sum(axis=0, dtype=np.uint8))
        self._count += 1
        if len(self._disp) == meta.block_frames:
            self._flush()

    def _flush(self) -> None:
        if not self._disp:
            return
        raw = np.stack(self._disp).tobytes() + np.stack(self._alive).tobytes()
        self._blocks.append(zlib.compress(raw, ZLIB_LEVEL))
        self._disp.clear()
        self._alive.clear()

    def to_bytes(self) -> bytes:
        """The whole file (``meta.num_frames`` becomes the number of start frames appended)."""
        self._flush()
        meta = self.meta
        if self._count == 0:
            raise ValueError("no start frame was appended")
        meta.num_frames = self._count
        table = [[0, len(block), zlib.crc32(block)] for block in self._blocks]
        # The header holds the offsets, which depend on the header's own length: iterate to a fixpoint.
        header = b""
        for _ in range(8):
            offset = len(MAGIC) + _HEADER_LENGTH.size + len(header)
            for entry in table:
                entry[0] = offset
                offset += entry[1]
            meta.blocks, meta.file_size = table, offset
            new_header = json.dumps(asdict(meta), sort_keys=True, separators=(",", ":")).encode()
            if new_header == header:
                break
            header = new_header
        return MAGIC + _HEADER_LENGTH.pack(len(header)) + header + b"".join(self._blocks)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the file atomically (temporary name, then rename)."""
        data = self.to_bytes()
        with atomic_write(path, "wb") as handle:
            handle.write(data)


def _corrupt(path: Path, reason: str) -> DataError:
    return DataError(f"corrupt or truncated trajectory file {path}: {reason}")


def read_trajectory_meta(path: str | os.PathLike[str]) -> TrajectoryMeta:
    """Read and check a file's header without decompressing; DataError when missing, unknown or truncated."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(MAGIC) + _HEADER_LENGTH.size)
            if len(head) < len(MAGIC) + _HEADER_LENGTH.size or head[: len(MAGIC)] != MAGIC:
                raise _corrupt(path, "not an mme trajectory file (bad magic)")
            (length,) = _HEADER_LENGTH.unpack(head[len(MAGIC) :])
            if length > _MAX_HEADER:
                raise _corrupt(path, f"header length {length} is implausible")
            raw = handle.read(length)
            actual_size = os.fstat(handle.fileno()).st_size
    except FileNotFoundError:
        raise DataError(f"trajectory file not found: {path}") from None
    except OSError as error:
        raise DataError(f"cannot read trajectory file {path}: {error}") from error
    if len(raw) != length:
        raise _corrupt(path, "header cut short")
    try:
        fields = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _corrupt(path, f"unreadable header ({error})") from error
    version = fields.get("format_version") if isinstance(fields, dict) else None
    if version not in READABLE_VERSIONS:
        raise DataError(
            f"trajectory file {path} has format version {version!r}; mme reads {list(READABLE_VERSIONS)}"
        )
    if version >= 2 and "camera_motion" not in fields:
        raise _corrupt(path, f"a version-{version} header without camera_motion")
    if version == 1 and {"camera_motion", "camera_fallbacks"} & fields.keys():
        raise _corrupt(path, "a version-1 header with version-2 fields")
    try:
        meta = TrajectoryMeta(**fields)
    except TypeError as error:
        raise _corrupt(path, f"unexpected header fields ({error})") from error
    if meta.camera_motion not in CAMERA_MOTIONS:
        raise _corrupt(path, f"unknown camera_motion {meta.camera_motion!r}")
    if meta.file_size != actual_size:
        raise _corrupt(path, f"{actual_size} bytes on disk, the header says {meta.file_size}")
    expected_blocks = -(-meta.num_frames // meta.block_frames)
    if len(meta.blocks) != expected_blocks:
        raise _corrupt(
            path, f"{len(meta.blocks)} blocks for {meta.num_frames} frames, expected {expected_blocks}"
        )
    return meta


def read_trajectories(
    path: str | os.PathLike[str], start_frames: Sequence[int] | np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, TrajectoryMeta]:
    """``disp`` (S, L, Gh, Gw, 2), ``valid`` and metadata for ``start_frames`` (all when None)."""
    path = Path(path)
    meta = read_trajectory_meta(path)
    if start_frames is None:
        wanted = np.arange(meta.num_frames)
    else:
        wanted = np.asarray(start_frames, dtype=np.int64).reshape(-1)
        if wanted.size and (wanted.min() < 0 or wanted.max() >= meta.num_frames):
            raise IndexError(
                f"start frames {wanted.min()}..{wanted.max()} outside [0, {meta.num_frames}) in {path}"
            )
    grid = (meta.grid_height, meta.grid_width)
    disp = np.empty((len(wanted), meta.steps, *grid, 2), np.float32)
    valid = np.empty((len(wanted), meta.steps, *grid), bool)
    step_index = np.arange(meta.steps).reshape(1, -1, 1, 1)
    with open(path, "rb") as handle:
        for block in np.unique(wanted // meta.block_frames):
            first = int(block) * meta.block_frames
            count = min(meta.block_frames, meta.num_frames - first)
            quantised, alive = _read_block(handle, path, meta, int(block), count)
            rows = np.nonzero(wanted // meta.block_frames == block)[0]
            local = wanted[rows] - first
            disp[rows] = quantised[local].transpose(0, 1, 3, 4, 2).astype(np.float32) / meta.quant_scale
            valid[rows] = step_index < alive[local][:, None]
    return disp, valid, meta


def _read_block(
    handle: Any, path: Path, meta: TrajectoryMeta, block: int, count: int
) -> tuple[np.ndarray, np.ndarray]:
    offset, size, crc = meta.blocks[block]
    handle.seek(offset)
    data = handle.read(size)
    if len(data) != size or zlib.crc32(data) != crc:
        raise _corrupt(path, f"block {block} fails its checksum")
    try:
        raw = zlib.decompress(data)
    except zlib.error as error:
        raise _corrupt(path, f"block {block} does not decompress ({error})") from error
    grid = (meta.grid_height, meta.grid_width)
    disp_bytes = count * meta.steps * 2 * grid[0] * grid[1]
    if len(raw) != disp_bytes + count * grid[0] * grid[1]:
        raise _corrupt(
            path, f"block {block} holds {len(raw)} bytes, expected {disp_bytes + count * grid[0] * grid[1]}"
        )
    quantised = np.frombuffer(raw, np.int8, disp_bytes).reshape(count, meta.steps, 2, *grid)
    alive = np.frombuffer(raw, np.uint8, offset=disp_bytes).reshape(count, *grid)
    return quantised, alive


def verify_trajectory_file(path: str | os.PathLike[str]) -> TrajectoryMeta:
    """Check every block's checksum without decompressing; DataError when damaged."""
    path = Path(path)
    meta = read_trajectory_meta(path)
    with open(path, "rb") as handle:
        for block, (offset, size, crc) in enumerate(meta.blocks):
            handle.seek(offset)
            if zlib.crc32(handle.read(size)) != crc:
                raise _corrupt(path, f"block {block} fails its checksum")
    return meta
