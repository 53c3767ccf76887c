"""Settings of the data pipeline (plain fields, for omegaconf); defaults follow docs/method.md §6."""

from __future__ import annotations

from dataclasses import dataclass, field

from mme.errors import ConfigError

SAMPLINGS = ("stride", "segment")
SHORT_VIDEO_POLICIES = ("reduce_stride", "clamp", "loop")
MASK_TYPES = ("tube", "random")
TRAJECTORY_MODES = ("online", "offline", "none")
DECODE_BACKENDS = ("pyav", "decord")


def _check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(choices)}")


def _check_range(key: str, value: float, low: float, high: float, low_open: bool = False) -> None:
    if not ((low < value) if low_open else (low <= value)) or not value <= high:
        bracket = "(" if low_open else "["
        raise ConfigError(f"{key} must be in {bracket}{low}, {high}], got {value!r}")


@dataclass
class _ClipSettings:
    """What every dataset shares: where the videos are, how clips are sampled and decoded."""

    # A list file relative paths are joined to (None: the folder holding the list file).
    root: str | None = None
    # T: frames per clip, and s: the raw-frame stride between them ("stride" sampling).
    num_frames: int = 16
    stride: int = 4
    # "stride": T frames s apart from a random start (K400/UCF/HMDB); "segment": one frame in
    # each of T equal segments of the video (SSV2, TSN-style).
    sampling: str = "stride"
    # A video shorter than a clip's span: "reduce_stride" (the largest stride that fits, then
    # "clamp"), "clamp" (indices past the end repeat the last frame) or "loop" (wrap around).
    short_video: str = "reduce_stride"
    input_size: int = 224
    patch_size: int = 16
    tubelet_size: int = 2
    decode_backend: str = "pyav"
    decode_threads: int = 1
    # A video with fewer decodable frames than this is bad (None: num_frames).
    min_video_frames: int | None = None
    # Stop with a DataError once more than this fraction of the dataset's videos is bad.
    max_bad_fraction: float = 0.01
    # Keep decoded videos in memory, up to this many MB per process (each loader worker has its
    # own cache); 0: decode every item from its file. For small datasets read many times.
    cache_mb: float = 0.0

    def _validate_clip(self) -> None:
        for key in ("num_frames", "stride", "input_size", "patch_size", "tubelet_size"):
            if int(getattr(self, key)) != getattr(self, key) or getattr(self, key) < 1:
                raise ConfigError(f"data.{key} must be an integer >= 1, got {getattr(self, key)!r}")
        _check_choice("data.sampling", self.sampling, SAMPLINGS)
        _check_choice("data.short_video", self.short_video, SHORT_VIDEO_POLICIES)
        _check_choice("data.decode_backend", self.decode_backend, DECODE_BACKENDS)
        if self.num_frames % self.tubelet_size:
            raise ConfigError(
                f"data.num_frames={self.num_frames} must be a multiple of "
                f"data.tubelet_size={self.tubelet_size}"
            )
        if self.input_size % self.patch_size:
            raise ConfigError(
                f"data.input_size={self.input_size} must be a multiple of data.patch_size={self.patch_size}"
            )
        if self.decode_threads < 0:
            raise ConfigError(f"data.decode_threads must be >= 0, got {self.decode_threads}")
        if self.min_video_frames is not None and self.min_video_frames < 1:
            raise ConfigError(f"data.min_video_frames must be >= 1 or null, got {self.min_video_frames}")
        _check_range("data.max_bad_fraction", self.max_bad_fraction, 0.0, 1.0)
        if not self.cache_mb >= 0:
            raise ConfigError(f"data.cache_mb must be >= 0 (0: no cache), got {self.cache_mb!r}")

    @property
    def required_frames(self) -> int:
        return self.num_frames if self.min_video_frames is None else self.min_video_frames


@dataclass
class PretrainDataConfig(_ClipSettings):
    """Pre-training data (docs/method.md §1, §4.1, §6): multi-scale crop, no flip, tube mask 0.7."""

    train_list: str | None = None
    # GroupMultiScaleCrop: crop sides are these fractions of the short side (snapped to the
    # input size within 3 px), width and height scale indices at most max_distort apart, at fixed
    # offsets (5 positions, 13 with more_fix_crop) or anywhere (fix_crop false); then resized.
    scales: list[float] = field(default_factory=lambda: [1.0, 0.875, 0.75, 0.66])
    max_distort: int = 1
    fix_crop: bool = True
    more_fix_crop: bool = True
    flip: bool = False
    mask_type: str = "tube"
    mask_ratio: float = 0.7
    # Where trajectory inputs come from: computed per clip in the loader ("online"), read from
    # `mme extract` files under traj_root ("offline"), or not at all ("none": no traj target).
    trajectories: str = "online"
    traj_root: str | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        self._validate_clip()
        if not self.scales or any(not 0 < s <= 1 for s in self.scales):
            raise ConfigError(f"data.scales must be fractions in (0, 1], got {list(self.scales)}")
        if self.max_distort < 0:
            raise ConfigError(f"data.max_distort must be >= 0, got {self.max_distort}")
        _check_choice("data.mask_type", self.mask_type, MASK_TYPES)
        _check_range("data.mask_ratio", self.mask_ratio, 0.0, 1.0, low_open=True)
        _check_choice("data.trajectories", self.trajectories, TRAJECTORY_MODES)
        if self.trajectories == "offline" and not self.traj_root:
            raise ConfigError(
                "data.traj_root must name the `mme extract` output when data.trajectories=offline"
            )


@dataclass
class ClassificationDataConfig(_ClipSettings):
    """Fine-tuning / evaluation data (VideoMAE protocol, docs/method.md §6)."""

    train_list: str | None = None
    val_list: str | None = None
    test_list: str | None = None
    # None: inferred from the lists (largest label + 1).
    num_classes: int | None = None
    # The name of every label: a JSON list (the classes.json `mme lists` / `mme synth` write) or a
    # text file with one name per line. None: classes.json beside the job's list file (train_list;
    # test_list for `mme eval`, after the checkpoint's own names) when there is one.
    classes_file: str | None = None
    # Training: random resized crop (area fraction and aspect range), flip, RandAugment (timm
    # string, "" for none), random erasing probability (one box per clip), repeated augmentation.
    min_area: float = 0.25
    max_area: float = 1.0
    min_aspect: float = 0.75
    max_aspect: float = 1.3333
    flip: bool = True
    rand_augment: str = "rand-m7-n4-mstd0.5-inc1"
    reprob: float = 0.25
    num_sample: int = 2
    # Validation and test: the short side is resized to short_side_size, then crops of
    # input_size are taken (one centred for validation; test_crops along the long side for test,
    # from test_clips clips evenly spaced in time).
    short_side_size: int = 224
    test_clips: int = 5
    test_crops: int = 3

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        self._validate_clip()
        if self.num_classes is not None and self.num_classes < 1:
            raise ConfigError(f"data.num_classes must be >= 1 or null, got {self.num_classes}")
        _check_range("data.min_area", self.min_area, 0.0, 1.0, low_open=True)
        _check_range("data.max_area", self.max_area, self.min_area, 1.0)
        if not 0 < self.min_aspect <= self.max_aspect:
            raise ConfigError(
                "data.min_aspect/max_aspect must satisfy 0 < min <= max, "
                f"got {self.min_aspect}, {self.max_aspect}"
            )
        _check_range("data.reprob", self.reprob, 0.0, 1.0)
        if self.rand_augment:
            from mme.data.transforms import RandAugment

            RandAugment.from_string(self.rand_augment)
        for key in ("num_sample", "short_side_size", "test_clips", "test_crops"):
            if getattr(self, key) < 1:
                raise ConfigError(f"data.{key} must be >= 1, got {getattr(self, key)}")
        if self.short_side_size < self.input_size:
            raise ConfigError(
                f"data.short_side_size={self.short_side_size} must be >= data.input_size={self.input_size}"
            )


@dataclass
class MixupConfig:
    """Batch-level mixup / cutmix with label smoothing (timm's Mixup, 'batch' mode)."""

    mixup_alpha: float = 0.8
    cutmix_alpha: float = 1.0
    # Probability of mixing a batch at all, and of cutmix rather than mixup when both are on.
    prob: float = 1.0
    switch_prob: float = 0.5
    label_smoothing: float = 0.1

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.mixup_alpha < 0 or self.cutmix_alpha < 0:
            raise ConfigError(
                "mixup.mixup_alpha and mixup.cutmix_alpha must be >= 0, "
                f"got {self.mixup_alpha}, {self.cutmix_alpha}"
            )
        _check_range("mixup.prob", self.prob, 0.0, 1.0)
        _check_range("mixup.switch_prob", self.switch_prob, 0.0, 1.0)
        _check_range("mixup.label_smoothing", self.label_smoothing, 0.0, 1.0)

    @property
    def enabled(self) -> bool:
        return self.prob > 0 and (self.mixup_alpha > 0 or self.cutmix_alpha > 0)
