"""``mme visualize``: a clip's target trajectories and a pre-training checkpoint's predictions for
its masked patches, drawn in the normalised target space, with the model's loss beside predicting
zeros (docs/demo.md, "The trajectory picture")."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mme.data.geometry import short_side_crop
from mme.data.masking import MaskGenerator
from mme.data.sampling import stride_clip
from mme.data.transforms import normalize_clip, to_clip_tensor
from mme.errors import CheckpointError, ConfigError, DataError
from mme.io.video import open_video
from mme.motion import TrajectoryConfig, dense_clip_trajectories
from mme.objectives import TargetConfig, TargetSettings, build_targets, grid_to_tokens, masked_loss
from mme.train.run_config import derive_target_config
from mme.utils.atomic import atomic_write_json
from mme.utils.logging import get_logger

_log = get_logger("mme.visualize")
TARGET_COLOUR = "#b6ff1c"  # yellow-green
PREDICTION_COLOUR = "#ff2bd6"  # magenta
WARNING_COLOUR = "#d62728"  # red: the random-decoder banner
HEAD = "traj"


@dataclass
class PictureSettings:
    """How the clip is sampled, tracked and masked (those of the pre-training run by default)."""

    stride: int = 4
    mask_ratio: float = 0.7
    mask_type: str = "tube"
    traj: TrajectoryConfig = dataclasses.field(default_factory=TrajectoryConfig)
    targets: TargetSettings = dataclasses.field(default_factory=TargetSettings)


@dataclass
class ClipInputs:
    """What pre-training would give the model for one clip: a batch of one, its mask and targets."""

    batch: dict[str, torch.Tensor]  # "clip" (normalised), "traj_disp", "traj_valid"
    mask: torch.Tensor  # bool (1, N), True = hidden from the encoder
    targets: TargetConfig  # the run's target settings, at the model's patch and tubelet size
    dense_frames: np.ndarray  # uint8 (K, L+1, H, W, 3): frames r_k .. r_k+L, network geometry
    frame_indices: np.ndarray  # (K, L+1) raw frame numbers r_k + t
    grid: tuple[int, int, int]  # (K, Hp, Wp) tokens


@dataclass
class TrajectorySample:
    """One clip's trajectories per token, ``(N, 2, L, P)`` (coordinate, step, point)."""

    dense_frames: np.ndarray  # uint8 (K, L+1, H, W, 3): frames r_k .. r_k+L, network geometry
    mask: np.ndarray  # bool (N,), True = hidden from the encoder
    target: np.ndarray  # float (N, 2, L, P): target displacements (clamped), pixels
    target_norm: np.ndarray  # float (N, 2, L, P): the target the model is trained on
    valid: np.ndarray  # bool (N, L, P): the point is inside the frame after step t
    weight: np.ndarray  # float (N,): the token's weight in the loss (trajectory validity)
    predicted: np.ndarray  # float (N, 2, L, P): the model's output, normalised (NaN where visible)
    grid: tuple[int, int, int]  # (K, Hp, Wp) tokens
    patch: int
    points_per_side: int
    traj_stride: int
    frame_indices: np.ndarray  # (K, L+1) raw frame numbers r_k + t
    normalisation: str
    max_displacement: float


def settings_from_run(checkpoint: str | os.PathLike[str]) -> PictureSettings | None:
    """The settings of the pre-training run ``checkpoint`` came from, when they can be found.

    A training checkpoint (``checkpoints/step-*.pt``) holds its run config; a model folder
    (``<run>/model``) sits next to the run's ``config.yaml``. Anything else: None (defaults).
    """
    from mme.train.checkpoint import load_checkpoint
    from mme.train.config_loader import from_dict, load_config
    from mme.train.run_config import PretrainConfig

    path = Path(checkpoint)
    config = None
    if path.is_file() and path.suffix == ".pt":
        try:
            state = load_checkpoint(path)
            config = from_dict(PretrainConfig, state["config"], str(path))
        except (CheckpointError, ConfigError, ValueError, KeyError):
            config = None
    elif path.is_dir() and (path.parent / "config.yaml").is_file():
        try:
            config = load_config(PretrainConfig, path.parent / "config.yaml")
        except ConfigError:
            config = None
    if config is None:
        return None
    return PictureSettings(
        stride=config.data.stride,
        mask_ratio=config.data.mask_ratio,
        mask_type=config.data.mask_type,
        traj=config.traj,
        targets=config.targets,
    )


def load_traj_model(
    checkpoint: str | os.PathLike[str], allow_random_decoder: bool = False
) -> tuple[torch.nn.Module, list[str]]:
    """A pre-training model with a ``traj`` head (any layout mme reads), in eval mode, and the
    names of the tensors its ``traj`` predictions depend on that the checkpoint did not hold
    (newly initialised: empty for a pre-training checkpoint).

    Raises CheckpointError when there are such tensors, unless ``allow_random_decoder``.
    """
    from mme.interop import load_pretrain_model_with_report
    from mme.interop.report import group_names

    model, report = load_pretrain_model_with_report(checkpoint)
    _log.info(report.summary())
    if HEAD not in model.head_names:
        raise CheckpointError(
            f"{checkpoint} has no 'traj' head (heads: {', '.join(model.head_names)}); the trajectory "
            "picture needs an MME pre-training checkpoint"
        )
    random = random_decoder_tensors(report.new)
    if random and not allow_random_decoder:
        raise CheckpointError(
            f"{checkpoint} holds no pre-training decoder for the 'traj' head (newly initialised: "
            f"{group_names(random)}); a random decoder's predictions say nothing about the checkpoint. "
            "Give an MME pre-training checkpoint, or pass --allow-random-decoder "
            "(allow_random_decoder=True) to draw them anyway"
        )
    return model.eval(), random


def random_decoder_tensors(new: list[str]) -> list[str]:
    """Of the model tensors a checkpoint did not provide (``LoadReport.new``), those the ``traj``
    prediction goes through after the encoder: decoder, mask token, projection, ``traj`` head."""
    own_head = f"heads.{HEAD}."
    return [
        name
        for name in new
        if not name.startswith("encoder.") and (name.startswith(own_head) or not name.startswith("heads."))
    ]


def clip_inputs(
    video: str | os.PathLike[str],
    settings: PictureSettings,
    encoder: Any,
    start: int | None = None,
    seed: int = 0,
) -> ClipInputs:
    """The clip of ``video`` starting at ``start`` (None: centred), tracked and masked as
    pre-training does, for a model whose encoder config is ``encoder``."""
    frames_per_clip, size = encoder.num_frames, encoder.img_size
    patch, tubelet = encoder.patch_size, encoder.tubelet_size
    targets = derive_target_config(settings.targets, settings.traj, patch, tubelet)
    with open_video(video) as reader:
        try:
            indices = stride_clip(
                reader.num_frames,
                frames_per_clip,
                settings.stride,
                None,
                settings.traj.steps,
                tubelet,
                start=start,
            )
        except ValueError as error:
            raise DataError(f"{video}: {error}") from None
        unique, frame_pos, dense_pos = indices.union()
        decoded = reader.get_frames(unique)
    geometry = short_side_crop(decoded.shape[1], decoded.shape[2], size)
    frames = geometry.apply_to_frames(decoded)
    clip = normalize_clip(to_clip_tensor(frames[frame_pos])[None])
    used, local = np.unique(dense_pos, return_inverse=True)
    disp, valid = dense_clip_trajectories(frames[used], local.reshape(dense_pos.shape), settings.traj)
    grid = (frames_per_clip // tubelet, size // patch, size // patch)
    mask = MaskGenerator(grid, settings.mask_ratio, settings.mask_type)(np.random.default_rng(seed))
    return ClipInputs(
        batch={"clip": clip, "traj_disp": disp[None], "traj_valid": valid[None]},
        mask=mask[None],
        targets=targets,
        dense_frames=frames[dense_pos],
        frame_indices=indices.dense,
        grid=grid,
    )


def compare(inputs: ClipInputs, prediction: torch.Tensor) -> TrajectorySample:
    """The clip's targets beside ``prediction`` ``(M, 2 * L * P)``: the ``traj`` head's output
    for the masked tokens, kept as it is (normalised, like the target it is trained on)."""
    targets = inputs.targets
    steps, points = targets.traj_steps, targets.traj_points
    values, weight = build_targets([HEAD], inputs.batch, targets)[HEAD]
    raw_config = dataclasses.replace(targets, traj_norm="none")
    raw = build_targets([HEAD], inputs.batch, raw_config)[HEAD][0][0] * targets.max_displacement
    shape = (-1, 2, steps, points)  # index c * L * P + t * P + p (mme.objectives.targets)
    mask = inputs.mask[0]
    predicted = torch.full_like(values[0], float("nan"))
    predicted[mask] = prediction.to(predicted.dtype)
    per_side = targets.patch_size // targets.traj_stride
    valid = inputs.batch["traj_valid"][0]  # (K, L, Gh, Gw)
    valid_tokens = grid_to_tokens(valid.permute(0, 2, 3, 1)[None], per_side)[0]  # (N, P, L)
    return TrajectorySample(
        dense_frames=inputs.dense_frames,
        mask=mask.numpy(),
        target=raw.reshape(shape).numpy(),
        target_norm=values[0].reshape(shape).numpy(),
        valid=valid_tokens.permute(0, 2, 1).numpy(),
        weight=weight[0].numpy(),  # the traj builder always weights by validity
        predicted=predicted.reshape(shape).numpy(),
        grid=inputs.grid,
        patch=targets.patch_size,
        points_per_side=per_side,
        traj_stride=targets.traj_stride,
        frame_indices=inputs.frame_indices,
        normalisation=targets.traj_norm,
        max_displacement=targets.max_displacement,
    )


@torch.no_grad()
def predict_trajectories(
    model: torch.nn.Module,
    video: str | os.PathLike[str],
    settings: PictureSettings,
    start: int | None = None,
    seed: int = 0,
) -> TrajectorySample:
    """Targets and the model's (normalised) predictions for the clip of ``video`` starting at
    ``start`` (None: the centred clip)."""
    inputs = clip_inputs(video, settings, model.config.encoder, start=start, seed=seed)
    prediction = model(inputs.batch["clip"], inputs.mask)[HEAD][0]  # (M, 2 * L * P)
    return compare(inputs, prediction)


def prediction_losses(sample: TrajectorySample) -> dict[str, Any]:
    """The pre-training loss on the clip's masked tokens (``mme.objectives.masked_loss``) of the
    model and of predicting zeros (a baseline that never sees the video), in the normalised
    target space. A model that learnt nothing from the visible patches gets no lower than the
    context-free floor (``mme.eval.target_floors``), which for patch-std targets is about ``zeros``."""
    mask = torch.from_numpy(sample.mask)[None]
    target = torch.from_numpy(sample.target_norm).flatten(1)[None]
    weight = torch.from_numpy(sample.weight)[None]
    masked = int(mask.sum())
    model = torch.from_numpy(sample.predicted[sample.mask]).reshape(1, masked, -1)
    losses = {
        name: float(masked_loss({HEAD: prediction}, {HEAD: (target, weight)}, mask)[1][HEAD])
        for name, prediction in (("model", model), ("zeros", torch.zeros_like(model)))
    }
    return {
        **losses,
        "space": f"normalised traj target ({sample.normalisation})",
        "masked_tokens": masked,
        "weighted_tokens": float(sample.weight[sample.mask].sum()),
    }


def seed_positions(sample: TrajectorySample) -> np.ndarray:
    """(N, P, 2) seed (x, y) of every token's points: the centres of the grid cells."""
    _, rows, cols = sample.grid
    q, g = sample.points_per_side, sample.traj_stride
    token = np.arange(int(np.prod(sample.grid)))
    i, j = (token // cols) % rows, token % cols
    point = np.arange(q * q)
    gy = i[:, None] * q + point[None, :] // q
    gx = j[:, None] * q + point[None, :] % q
    return np.stack([g * gx + (g - 1) / 2, g * gy + (g - 1) / 2], axis=-1).astype(np.float64)


def paths(sample: TrajectorySample, displacements: np.ndarray, magnify: float) -> np.ndarray:
    """(N, P, L+1, 2) point positions along the trajectories, displacements scaled by ``magnify``."""
    steps = displacements.transpose(0, 3, 2, 1)  # (N, P, L, 2)
    offsets = np.concatenate([np.zeros_like(steps[:, :, :1]), np.cumsum(steps, axis=2)], axis=2)
    return seed_positions(sample)[:, :, None, :] + magnify * offsets


def normalised_scale(sample: TrajectorySample, magnify: float) -> float:
    """Pixels drawn per unit of the normalised target and step (bottom row).

    ``none``: the unit is ``max_displacement`` pixels, drawn like the top row (x ``magnify``).
    ``patch_std*``: the unit is the patch's std, which only the target knows, so one fixed scale
    for every patch: a point moving one std every step ends a third of a patch from its seed.
    """
    if sample.normalisation == "none":
        return sample.max_displacement * magnify
    steps = sample.target.shape[2]
    return sample.patch / (3 * steps)


def _auto_magnify(sample: TrajectorySample) -> float:
    """A factor (1 to 10) that draws the longer trajectories (90th percentile of the clip's
    endpoint offsets) about a third of a patch long; short, noisy ones stay short."""
    lengths = np.linalg.norm(sample.target.sum(axis=2), axis=1)[sample.valid[:, -1]]
    if lengths.size == 0:
        return 1.0
    longer = float(np.percentile(lengths, 90))
    if longer < 1e-3:
        return 1.0
    return float(np.clip(round(sample.patch / 3 / longer), 1, 10))


def _busiest_tubelet(sample: TrajectorySample) -> int:
    """The tubelet whose masked patches move the most (ties: the earliest)."""
    tubelets = sample.grid[0]
    motion = np.abs(np.nan_to_num(sample.target)).sum(axis=(1, 2, 3)) * sample.mask
    return int(np.argmax(motion.reshape(tubelets, -1).sum(axis=1)))


def draw_trajectory_figure(
    sample: TrajectorySample,
    out: str | os.PathLike[str],
    tubelet: int | None = None,
    magnify: float | None = None,
    title: str | None = None,
    random_decoder: bool = False,
) -> dict[str, Any]:
    """Draw ``sample`` (see module docstring) into a PNG; returns what was drawn and the losses.

    ``random_decoder``: the prediction comes from a newly initialised decoder; the title says so.
    """
    from matplotlib import patheffects
    from matplotlib.patches import Rectangle

    from mme.visualize.canvas import new_figure, save_png

    tubelets, rows, cols = sample.grid
    k = _busiest_tubelet(sample) if tubelet is None else tubelet
    if not 0 <= k < tubelets:
        raise ConfigError(f"tubelet must be in [0, {tubelets - 1}], got {tubelet}")
    scale = _auto_magnify(sample) if magnify is None else float(magnify)
    unit = normalised_scale(sample, scale)
    tokens = np.arange(k * rows * cols, (k + 1) * rows * cols)
    target_paths = paths(sample, sample.target, scale)[tokens]  # (n, P, L+1, 2), pixels
    normalised_paths = paths(sample, sample.target_norm, unit)[tokens]
    predicted_paths = paths(sample, np.nan_to_num(sample.predicted), unit)[tokens]
    valid = sample.valid[tokens]  # (n, L, P)
    masked = sample.mask[tokens]
    frames = sample.dense_frames[k]  # (L+1, H, W, 3)
    steps = frames.shape[0] - 1
    height, width = frames.shape[1:3]
    losses = prediction_losses(sample)
    who = "random decoder" if random_decoder else "model"

    panels = steps + 1
    figure = new_figure(2.2 * panels, 2.2 * 2 + 0.5)
    axes = figure.subplots(2, panels, squeeze=False)
    top = 0.78 if random_decoder else 0.84  # room for the title's lines (3 with the banner)
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=top, wspace=0.04, hspace=0.16)
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)

    def dim_visible(ax: Any) -> None:
        """Darken the patches the encoder sees, so the masked ones (to predict) stand out."""
        for n in np.flatnonzero(~masked):
            i, j = divmod(int(n), cols)
            corner = (j * sample.patch - 0.5, i * sample.patch - 0.5)
            ax.add_patch(Rectangle(corner, sample.patch, sample.patch, color="black", alpha=0.5, lw=0))

    def draw_paths(ax: Any, positions: np.ndarray, which: np.ndarray, upto: int, colour: str) -> None:
        outline = [patheffects.withStroke(linewidth=2.2, foreground="black")]
        for n in np.flatnonzero(which):
            for p in range(positions.shape[1]):
                alive = 1 + int(valid[n, :upto, p].sum()) if upto else 1
                line = positions[n, p, :alive]
                ax.plot(line[:, 0], line[:, 1], color=colour, lw=1.1, path_effects=outline)
                ax.plot(line[-1, 0], line[-1, 1], "o", color=colour, ms=2.0)

    everyone = np.ones_like(masked)
    for t in range(panels):
        ax = axes[0, t]
        ax.imshow(frames[t], extent=extent, interpolation="nearest")
        dim_visible(ax)
        draw_paths(ax, target_paths, everyone, t, TARGET_COLOUR)
        raw = int(sample.frame_indices[k, t])
        ax.set_title(f"raw frame {raw} (r$_k$+{t})" if t else f"raw frame {raw} (r$_k$, k={k})", fontsize=8)
    bottom = (
        (f"normalised target (zeros: loss {losses['zeros']:.3g})", ((TARGET_COLOUR, normalised_paths),)),
        (f"{who} prediction: loss {losses['model']:.3g}", ((PREDICTION_COLOUR, predicted_paths),)),
        ("target and prediction", ((TARGET_COLOUR, normalised_paths), (PREDICTION_COLOUR, predicted_paths))),
    )
    for t in range(panels):
        ax = axes[1, t]
        if t >= len(bottom):
            ax.set_visible(False)
            continue
        name, layers = bottom[t]
        ax.imshow(frames[0], extent=extent, interpolation="nearest")
        dim_visible(ax)
        for colour, positions in layers:
            draw_paths(ax, positions, masked, steps, colour)
        ax.set_title(name, fontsize=8, color=WARNING_COLOUR if random_decoder and t else "black")
    for ax in axes.flat:
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_xticks([])
        ax.set_yticks([])
    if sample.normalisation != "none":
        how = (
            f"The target is {sample.normalisation} normalised (per patch, coordinate and step: "
            "minus the mean over the patch's points, over their std). Bottom row: the normalised "
            "target and the model's output as they are, i.e. each point's motion relative to its "
            f"patch's mean in units of the patch's std, one unit per step drawn {unit:.3g} px. "
            "Nothing of the target is used to draw the prediction."
        )
    else:
        how = (
            f"The target is the displacement over max_displacement={sample.max_displacement:g} px; "
            f"the bottom row draws target and output in pixels x{scale:g}."
        )
    caption = (
        f"Top: frames r_k..r_k+{steps} of tubelet {k} with the target trajectories in pixels (green; "
        f"points every {sample.traj_stride} px, tracked with optical flow; displacements drawn "
        f"x{scale:g}); bright squares: patches hidden from the encoder, dark: visible. Bottom: the "
        f"masked patches on frame r_k, target (green) and the {who}'s prediction (magenta). {how} "
        f"Pre-training loss over the clip's {losses['masked_tokens']} masked tokens: {who} "
        f"{losses['model']:.4g}; predicting zeros (never sees the video: "
        f"{_zeros_meaning(sample.normalisation)}) {losses['zeros']:.4g}."
    )
    headline = f"loss on masked tokens: {who} {losses['model']:.4g} vs zeros baseline {losses['zeros']:.4g}"
    if random_decoder:
        figure.suptitle(
            "RANDOM DECODER: the checkpoint has no pre-training decoder; these predictions are "
            f"untrained\n{title or ''}\n{headline}",
            fontsize=11,
            color=WARNING_COLOUR,
            fontweight="bold",
        )
    else:
        figure.suptitle(f"{title}\n{headline}" if title else headline, fontsize=10)
    figure.text(0.01, 0.0, caption, fontsize=7.5, ha="left", va="top", wrap=True)
    save_png(figure, Path(out))
    return {
        "path": str(out),
        "tubelet": k,
        "magnify": scale,
        "normalised_unit_px": unit,
        "normalisation": sample.normalisation,
        "random_decoder": random_decoder,
        "loss": losses,
        "baseline": f"zeros: {_zeros_meaning(sample.normalisation)}",
    }


def _zeros_meaning(normalisation: str) -> str:
    if normalisation == "none":
        return "no motion"
    return "every point moves with its patch's mean motion"


def trajectory_figure(
    checkpoint: str | os.PathLike[str],
    video: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    settings: PictureSettings | None = None,
    start: int | None = None,
    tubelet: int | None = None,
    seed: int = 0,
    magnify: float | None = None,
    allow_random_decoder: bool = False,
) -> dict[str, Any]:
    """Draw ``video``'s picture for ``checkpoint`` to ``out`` (numbers in ``out`` with suffix ``.json``).

    None means: the checkpoint run's settings (else the released recipe's), a centred clip, the
    tubelet whose masked patches move most, automatic magnification. A checkpoint without a
    pre-training decoder is a CheckpointError unless ``allow_random_decoder``."""
    if not Path(video).is_file():
        raise DataError(f"video {video} does not exist")
    if Path(out).suffix == ".json":
        raise ConfigError(f"out {out}: the picture is a PNG; its numbers go to the .json beside it")
    # A random decoder is drawn from torch's RNG: seed it, so the figure is the same on every run
    # and whatever the process drew before, and give the caller its RNG state back.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model, random = load_traj_model(checkpoint, allow_random_decoder)
    if random:
        _log.warning("%s: drawing the predictions of a RANDOM decoder (--allow-random-decoder)", checkpoint)
    settings = settings or settings_from_run(checkpoint) or PictureSettings()
    sample = predict_trajectories(model, video, settings, start=start, seed=seed)
    title = f"{Path(video).name}: MME trajectory targets and predictions ({Path(checkpoint).name})"
    info = draw_trajectory_figure(
        sample, out, tubelet=tubelet, magnify=magnify, title=title, random_decoder=bool(random)
    )
    info = {
        **info,
        "json": str(Path(out).with_suffix(".json")),
        "checkpoint": str(checkpoint),
        "video": str(video),
    }
    atomic_write_json(info["json"], info)
    return info
