"""Datasets: pre-training samples and classification clips (docs/data.md, "Datasets")."""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mme.data.bad_videos import BadVideoLog
from mme.data.config import ClassificationDataConfig, PretrainDataConfig
from mme.data.frame_cache import FrameCache
from mme.data.geometry import Geometry, multi_scale_crop, random_resized_crop, short_side_crop
from mme.data.masking import MaskGenerator
from mme.data.sampling import ClipIndices, segment_clip, stride_clip, view_stride_clip
from mme.data.transforms import RandAugment, random_erase, to_clip_tensor
from mme.errors import ConfigError, DataError
from mme.io.lists import VideoEntry, check_labels, read_list
from mme.io.video import open_video

_log = logging.getLogger("mme.data")
MAX_REPLACEMENTS = 20


class BadVideo(Exception):
    """Raised inside a dataset when the video at hand cannot give a clip (replaced, not fatal)."""


def worker_init_fn(worker_id: int) -> None:
    """``worker_init_fn``: seed Python/NumPy from the worker's torch seed; one OpenCV/torch thread."""
    import cv2

    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def sample_rng() -> np.random.Generator:
    """A generator for one item, drawn from NumPy's global state (seeded per worker or per sample)."""
    return np.random.default_rng(np.random.randint(0, 2**32, size=4, dtype=np.uint64))


def collate_repeated(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Collate training items holding ``num_sample`` clips each into one flat batch (B*S, ...)."""
    out: dict[str, Any] = {}
    for key in batch[0]:
        values = [item[key] for item in batch]
        if isinstance(values[0], torch.Tensor):
            out[key] = torch.cat(values) if values[0].ndim >= 1 else torch.stack(values)
        else:
            out[key] = torch.as_tensor(values)
    return out


class _VideoDataset(torch.utils.data.Dataset):
    """Entries, decoding and the bad-video policy shared by the datasets."""

    def __init__(
        self,
        config: PretrainDataConfig | ClassificationDataConfig,
        list_path: str | os.PathLike[str] | None,
        list_key: str,
        entries: Sequence[VideoEntry] | None,
        bad_video_dir: str | os.PathLike[str] | None,
    ) -> None:
        self.config = config
        self.source = list_key  # what error messages name: the list file, when read from one
        if entries is None:
            if not list_path:
                raise ConfigError(f"{list_key} is not set: name the list file of videos")
            entries = read_list(list_path, root=config.root)
            self.source = str(list_path)
        self.entries = list(entries)
        if not self.entries:
            raise DataError("the dataset has no videos")
        self.bad = BadVideoLog(bad_video_dir, len(self.entries), config.max_bad_fraction)
        # data.cache_mb: decoded videos kept in this process's memory (None: decode every item).
        self._frames = FrameCache(config.cache_mb) if config.cache_mb > 0 else None

    @property
    def num_videos(self) -> int:
        return len(self.entries)

    @property
    def bad_video_count(self) -> int:
        """Distinct bad videos found so far by any worker (read from the shared record)."""
        return self.bad.count

    def _replacement(self, index: int, attempt: int) -> int:
        """Deterministic stand-in for a bad video: a function of (index, attempt) only."""
        rng = np.random.default_rng([index, attempt, 0x6D6D65])
        for _ in range(8):
            candidate = int(rng.integers(len(self.entries)))
            if str(self.entries[candidate].path) not in self.bad.known:
                return candidate
        return candidate

    def _with_replacement(self, index: int, build: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
        """``build(video_index)``; when it raises BadVideo, record it and try a replacement."""
        current = index
        for attempt in range(MAX_REPLACEMENTS):
            try:
                return build(current)
            except BadVideo as error:
                self.bad.record(self.entries[current].path, str(error))
                current = self._replacement(index, attempt)
        raise DataError(
            f"{MAX_REPLACEMENTS} videos in a row were bad when replacing item {index} "
            f"({self.entries[index].path}); see {self.bad.folder}"
        )

    def _decode(
        self, entry: VideoEntry, plan: Callable[[int], ClipIndices], minimum: int
    ) -> tuple[np.ndarray, ClipIndices, np.ndarray, np.ndarray | None]:
        """A clip's distinct frames and positions, re-sampled within what decodes if the file is shorter."""
        config = self.config
        key = str(entry.path)
        video = self._frames.get(key) if self._frames is not None else None
        if video is not None:
            return self._from_memory(video, plan, minimum)
        try:
            with open_video(entry.path, config.decode_backend, config.decode_threads) as reader:
                available = reader.num_frames
                size = available * reader.height * reader.width * 3
                if self._frames is not None and available >= minimum and self._frames.has_room(size):
                    # Every frame once; past a truncated file's end get_frames repeats the last
                    # decodable frame and num_frames drops to the true count.
                    video = reader.get_frames(np.arange(available))[: reader.num_frames]
                    self._frames.put(key, video)
                    return self._from_memory(video, plan, minimum)
                for _ in range(2):
                    if available < minimum:
                        raise BadVideo(f"{available} decodable frames, a clip needs at least {minimum}")
                    indices = plan(available)
                    unique, frame_pos, dense_pos = indices.union()
                    frames = reader.get_frames(unique)
                    if reader.num_frames >= available:
                        return frames, indices, frame_pos, dense_pos
                    available = reader.num_frames  # the file is shorter than its packets said
                raise BadVideo(f"decoding keeps finding fewer frames ({available})")
        except DataError as error:
            raise BadVideo(str(error)) from error

    @staticmethod
    def _from_memory(
        video: np.ndarray, plan: Callable[[int], ClipIndices], minimum: int
    ) -> tuple[np.ndarray, ClipIndices, np.ndarray, np.ndarray | None]:
        """What :meth:`_decode` returns, from a video's frames held in memory."""
        if len(video) < minimum:
            raise BadVideo(f"{len(video)} decodable frames, a clip needs at least {minimum}")
        indices = plan(len(video))
        unique, frame_pos, dense_pos = indices.union()
        return video[unique], indices, frame_pos, dense_pos


class PretrainDataset(_VideoDataset):
    """Pre-training samples ``{"clip", "mask", "index"}`` plus ``traj_disp``/``traj_valid`` (docs/data.md)."""

    def __init__(
        self,
        config: PretrainDataConfig,
        traj_config: Any = None,
        entries: Sequence[VideoEntry] | None = None,
        bad_video_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(config, config.train_list, "data.train_list", entries, bad_video_dir)
        self.config: PretrainDataConfig = config
        if config.trajectories != "none" and traj_config is None:
            raise ConfigError(f"data.trajectories={config.trajectories} needs the trajectory config (traj)")
        self.traj_config = traj_config
        self.steps = int(traj_config.steps) if config.trajectories != "none" else 0
        if self.steps and config.input_size % traj_config.grid_stride:
            raise ConfigError(
                f"data.input_size={config.input_size} must be a multiple of "
                f"traj.grid_stride={traj_config.grid_stride}"
            )
        grid = (
            config.num_frames // config.tubelet_size,
            config.input_size // config.patch_size,
            config.input_size // config.patch_size,
        )
        self.mask_generator = MaskGenerator(grid, config.mask_ratio, config.mask_type)
        self.minimum_frames = max(config.required_frames, self.steps + 1)

    def __len__(self) -> int:
        return len(self.entries)

    def _plan(self, rng: np.random.Generator) -> Callable[[int], ClipIndices]:
        config = self.config
        if config.sampling == "segment":
            return lambda n: segment_clip(n, config.num_frames, rng, self.steps, config.tubelet_size)
        return lambda n: stride_clip(
            n, config.num_frames, config.stride, rng, self.steps, config.tubelet_size, config.short_video
        )

    def trajectory_path(self, entry: VideoEntry) -> Path:
        """Where ``mme extract`` of ``data.train_list`` (``--root data.root``) put this video's file."""
        from mme.io.lists import list_root
        from mme.motion.extract import output_path

        root = list_root(self.config.train_list, self.config.root)
        return output_path(entry.path, self.config.traj_root, root)

    def _offline_trajectories(
        self, entry: VideoEntry, indices: ClipIndices, geometry: Geometry, source_size: tuple[int, int]
    ) -> dict[str, torch.Tensor]:
        """The sample's ``traj_disp``/``traj_valid`` (and ``traj_camera_fallbacks``) from its file."""
        from mme.motion import read_trajectories

        assert indices.dense is not None
        path = self.trajectory_path(entry)
        starts = indices.dense[:, 0]
        try:
            disp, valid, meta = read_trajectories(path, starts)
        except IndexError as error:
            raise DataError(
                f"{path} does not cover frames {starts.tolist()} of {entry.path}: {error}"
            ) from error
        if (meta.source_width, meta.source_height) != source_size:
            raise DataError(
                f"{path} was extracted from a {meta.source_width}x{meta.source_height} video, "
                f"but {entry.path} is {source_size[0]}x{source_size[1]}"
            )
        if meta.steps != self.steps:
            raise DataError(f"{path} holds {meta.steps}-step trajectories, traj.steps is {self.steps}")
        if meta.camera_motion != self.traj_config.camera_motion:
            raise DataError(
                f"{path} was extracted with camera_motion={meta.camera_motion}, "
                f"traj.camera_motion is {self.traj_config.camera_motion}"
            )
        out_disp, out_valid = geometry.apply_to_trajectories(
            disp,
            valid,
            meta.grid_stride,
            out_stride=self.traj_config.grid_stride,
            source_scale=(meta.scale_x, meta.scale_y),
        )
        # Network-input pixels per stored pixel: targets.traj_norm=patch_std_int truncates there.
        box_w, box_h = geometry.box[2] * meta.scale_x, geometry.box[3] * meta.scale_y
        flow_scale = torch.tensor([geometry.out_size[0] / box_w, geometry.out_size[1] / box_h])
        out = {"traj_disp": out_disp, "traj_valid": out_valid, "traj_flow_scale": flow_scale}
        if meta.camera_motion != "none":
            first_frames = np.unique(starts[:, None] + np.arange(self.steps))  # the clip's frame pairs
            out["traj_camera_fallbacks"] = torch.tensor(
                int(np.isin(first_frames, meta.camera_fallbacks).sum())
            )
        return out

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = sample_rng()

        def build(video: int) -> dict[str, Any]:
            entry = self.entries[video]
            frames, indices, frame_pos, dense_pos = self._decode(entry, self._plan(rng), self.minimum_frames)
            height, width = frames.shape[1:3]
            config = self.config
            geometry = multi_scale_crop(
                height,
                width,
                config.input_size,
                rng,
                config.scales,
                config.max_distort,
                config.fix_crop,
                config.more_fix_crop,
                config.flip,
            )
            augmented = geometry.apply_to_frames(frames)
            sample: dict[str, Any] = {
                "clip": to_clip_tensor(augmented[frame_pos]),
                "mask": self.mask_generator(rng),
                "index": video,
            }
            if config.trajectories == "online":
                from mme.motion import dense_clip_trajectories
                from mme.motion.camera import CameraStats

                assert dense_pos is not None
                used, local = np.unique(dense_pos, return_inverse=True)
                stats = CameraStats()
                disp, valid = dense_clip_trajectories(
                    augmented[used], local.reshape(dense_pos.shape), self.traj_config, stats
                )
                sample["traj_disp"], sample["traj_valid"] = disp, valid
                sample["traj_flow_scale"] = torch.ones(2)  # the flow ran on the network-input frames
                if self.traj_config.camera_motion != "none":
                    # Frame pairs whose camera fit failed (uncompensated flow): logged by pre-training.
                    sample["traj_camera_fallbacks"] = torch.tensor(stats.fallbacks)
            elif config.trajectories == "offline":
                sample.update(self._offline_trajectories(entry, indices, geometry, (width, height)))
            return sample

        return self._with_replacement(index, build)


class VideoClassificationDataset(_VideoDataset):
    """Labelled clips for "train", "val" and "test" (one item per view; bad videos blank, never replaced)."""

    def __init__(
        self,
        config: ClassificationDataConfig,
        mode: str = "train",
        entries: Sequence[VideoEntry] | None = None,
        bad_video_dir: str | os.PathLike[str] | None = None,
        list_from: str | None = None,
    ) -> None:
        lists = {"train": config.train_list, "val": config.val_list, "test": config.test_list}
        for name in (mode, list_from or mode):
            if name not in lists:
                raise ConfigError(f"dataset mode/list must be one of train, val, test, got {name!r}")
        list_from = list_from or mode
        super().__init__(config, lists[list_from], f"data.{list_from}_list", entries, bad_video_dir)
        self.config: ClassificationDataConfig = config
        self.mode = mode
        self.views = config.test_clips * config.test_crops if mode == "test" else 1
        self.rand_augment = RandAugment.from_string(config.rand_augment) if config.rand_augment else None
        if config.num_classes:
            self.num_classes, self.num_classes_source = config.num_classes, "data.num_classes"
            self.check_labels(self.num_classes, self.num_classes_source)
        else:
            self.num_classes = max(entry.label for entry in self.entries) + 1
            self.num_classes_source = f"the largest label of {self.source} + 1"

    def check_labels(self, num_classes: int, classes_from: str) -> None:
        """DataError naming the list line of the first label that is not below ``num_classes``."""
        check_labels(self.entries, num_classes, self.source, classes_from)

    def __len__(self) -> int:
        return len(self.entries) * self.views

    def _plan(
        self, rng: np.random.Generator | None, clip: int = 0, clips: int = 1
    ) -> Callable[[int], ClipIndices]:
        config = self.config
        if config.sampling == "segment":
            return lambda n: segment_clip(
                n, config.num_frames, rng, tubelet=config.tubelet_size, view=clip, num_views=clips
            )
        if rng is not None:
            return lambda n: stride_clip(
                n,
                config.num_frames,
                config.stride,
                rng,
                tubelet=config.tubelet_size,
                short_video=config.short_video,
            )
        return lambda n: view_stride_clip(
            n,
            config.num_frames,
            config.stride,
            clip,
            clips,
            tubelet=config.tubelet_size,
            short_video=config.short_video,
        )

    def _train_item(self, video: int, rng: np.random.Generator) -> dict[str, Any]:
        config = self.config
        entry = self.entries[video]
        frames, _, frame_pos, _ = self._decode(entry, self._plan(rng), config.required_frames)
        frames = frames[frame_pos]
        height, width = frames.shape[1:3]
        clips = []
        for _ in range(config.num_sample):
            geometry = random_resized_crop(
                height,
                width,
                config.input_size,
                rng,
                (config.min_area, config.max_area),
                (config.min_aspect, config.max_aspect),
                config.flip,
            )
            clip = geometry.apply_to_frames(frames)
            if self.rand_augment is not None:
                clip = self.rand_augment(clip, rng)
            if config.reprob > 0:
                clip = random_erase(clip, rng, config.reprob)
            clips.append(to_clip_tensor(clip))
        label = torch.full((config.num_sample,), entry.label, dtype=torch.int64)
        index = torch.full((config.num_sample,), video, dtype=torch.int64)
        return {"clip": torch.stack(clips), "label": label, "index": index}

    def _eval_item(self, video: int, view: int) -> dict[str, Any]:
        config = self.config
        entry = self.entries[video]
        clip_index, crop = divmod(view, config.test_crops) if self.mode == "test" else (0, 0)
        clips = config.test_clips if self.mode == "test" else 1
        crops = config.test_crops if self.mode == "test" else 1
        frames, _, frame_pos, _ = self._decode(
            entry, self._plan(None, clip_index, clips), config.required_frames
        )
        frames = frames[frame_pos]
        geometry = short_side_crop(
            frames.shape[1], frames.shape[2], config.input_size, config.short_side_size, crop, crops
        )
        sample = {
            "clip": to_clip_tensor(geometry.apply_to_frames(frames)),
            "label": entry.label,
            "index": video,
        }
        if self.mode == "test":
            sample["view"] = view
        return sample

    def _failed_item(self, video: int, view: int, reason: str) -> dict[str, Any]:
        """The stand-in of a view that could not be decoded: a blank clip marked ``ok=False``."""
        config = self.config
        size = (3, config.num_frames, config.input_size, config.input_size)
        sample = {"clip": torch.zeros(size, dtype=torch.uint8), "label": self.entries[video].label}
        sample.update(index=video, ok=False, reason=reason)
        if self.mode == "test":
            sample["view"] = view
        return sample

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self.mode == "train":
            rng = sample_rng()
            return self._with_replacement(index, lambda current: self._train_item(current, rng))
        video, view = divmod(index, self.views)
        try:
            sample = self._eval_item(video, view)
        except BadVideo as error:
            # Never a replacement here: its scores would count under this video's label.
            return self._failed_item(video, view, str(error))
        return {**sample, "ok": True, "reason": ""}
