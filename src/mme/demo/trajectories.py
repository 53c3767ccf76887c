"""The trajectory picture: what MME is asked to predict, and what a pre-trained model predicts.

For one clip of a video (the centred clip, centre crop, as in validation) this computes the
target trajectories exactly as pre-training does (``mme.motion.dense_clip_trajectories`` on the
network-input frames, then ``mme.objectives`` builds the per-token target), hides patches with a
tube mask, runs the pre-training model and draws:

- top row: the raw frames ``r_k .. r_k+L`` of one tubelet with every tracked point's target
  trajectory so far (patches hidden from the encoder outlined);
- bottom row, masked patches only: the target, the model's prediction, and both overlaid.

Predictions of the released recipe are *patch-std normalised* like the target (per token,
coordinate and step: minus the mean over the patch's points, over their std). To draw them in
pixels they are un-normalised with the target's per-token mean and std — what VideoMAE's
visualisation does for normalised pixels — so a patch's mean motion and its scale come from the
target, and what the picture shows of the model is how the points move *relative to each other*.
The numbers returned (and printed in the caption) compare the model's endpoint error with the
error of predicting zeros (= the patch's mean motion for every point).

``mme visualize --checkpoint PT --video FILE --out PNG`` calls :func:`trajectory_figure`.
"""

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
from mme.objectives import TargetConfig, build_targets, grid_to_tokens
from mme.utils.logging import get_logger

_log = get_logger("mme.demo")
TARGET_COLOUR = "#b6ff1c"  # yellow-green
PREDICTION_COLOUR = "#ff2bd6"  # magenta


@dataclass
class PictureSettings:
    """How the clip is sampled, tracked and masked (those of the pre-training run by default)."""

    stride: int = 4
    mask_ratio: float = 0.7
    mask_type: str = "tube"
    traj: TrajectoryConfig = dataclasses.field(default_factory=TrajectoryConfig)
    targets: TargetConfig = dataclasses.field(default_factory=TargetConfig)


@dataclass
class TrajectorySample:
    """One clip's trajectories, per token: ``(N, 2, L, P)`` displacements in input pixels."""

    dense_frames: np.ndarray  # uint8 (K, L+1, H, W, 3): frames r_k .. r_k+L, network geometry
    mask: np.ndarray  # bool (N,), True = hidden from the encoder
    target: np.ndarray  # float (N, 2, L, P): target displacements (clamped), pixels
    valid: np.ndarray  # bool (N, L, P): the point is inside the frame after step t
    predicted: np.ndarray  # float (N, 2, L, P): un-normalised prediction (NaN where visible)
    grid: tuple[int, int, int]  # (K, Hp, Wp) tokens
    patch: int
    points_per_side: int
    traj_stride: int
    frame_indices: np.ndarray  # (K, L+1) raw frame numbers r_k + t
    normalisation: str


def settings_from_run(checkpoint: str | os.PathLike[str]) -> PictureSettings | None:
    """The settings of the pre-training run ``checkpoint`` came from, when they can be found.

    A training checkpoint (``checkpoints/step-*.pt``) holds its run config; a model folder
    (``<run>/model``) sits next to the run's ``config.yaml``. Anything else: None (defaults).
    """
    from mme.train.checkpoint import load_checkpoint
    from mme.train.config import PretrainConfig
    from mme.train.config_loader import from_dict, load_config

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


def load_traj_model(checkpoint: str | os.PathLike[str]) -> torch.nn.Module:
    """A pre-training model with a ``traj`` head (any layout mme reads), in eval mode."""
    from mme.models import load_pretrain_model_with_report

    model, report = load_pretrain_model_with_report(checkpoint)
    _log.info(report.summary())
    if "traj" not in model.head_names:
        raise CheckpointError(
            f"{checkpoint} has no 'traj' head (heads: {', '.join(model.head_names)}); the trajectory "
            "picture needs an MME pre-training checkpoint"
        )
    return model.eval()


@torch.no_grad()
def predict_trajectories(
    model: torch.nn.Module,
    video: str | os.PathLike[str],
    settings: PictureSettings,
    start: int | None = None,
    seed: int = 0,
) -> TrajectorySample:
    """Targets and (un-normalised) predictions for the clip of ``video`` starting at ``start``
    (None: the centred clip)."""
    encoder = model.config.encoder
    frames_per_clip, size = encoder.num_frames, encoder.img_size
    patch, tubelet = encoder.patch_size, encoder.tubelet_size
    targets = dataclasses.replace(settings.targets, patch_size=patch, tubelet_size=tubelet)
    if targets.traj_steps != settings.traj.steps:
        raise ConfigError(
            f"targets.traj_steps={targets.traj_steps} must equal traj.steps={settings.traj.steps}"
        )
    steps = settings.traj.steps
    with open_video(video) as reader:
        total = reader.num_frames
        try:
            indices = stride_clip(total, frames_per_clip, settings.stride, None, steps, tubelet, start=start)
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
    batch = {"clip": clip, "traj_disp": disp[None], "traj_valid": valid[None]}

    raw_config = dataclasses.replace(targets, traj_norm="none")
    raw = build_targets(["traj"], batch, raw_config)["traj"][0][0] * targets.max_displacement
    raw = raw.reshape(-1, 2, steps, targets.traj_points)  # (N, 2, L, P): c * L * P + t * P + p
    prediction = model(clip, mask[None])["traj"][0]  # (M, 2 * L * P)
    predicted = torch.full_like(raw, float("nan"))
    predicted[mask] = unnormalise(prediction, raw[mask], targets)
    per_side = patch // targets.traj_stride
    valid_tokens = grid_to_tokens(valid.permute(0, 2, 3, 1)[None], per_side)[0]  # (N, P, L)
    return TrajectorySample(
        dense_frames=frames[dense_pos],
        mask=mask.numpy(),
        target=raw.numpy(),
        valid=valid_tokens.permute(0, 2, 1).numpy(),
        predicted=predicted.numpy(),
        grid=grid,
        patch=patch,
        points_per_side=per_side,
        traj_stride=targets.traj_stride,
        frame_indices=indices.dense,
        normalisation=targets.traj_norm,
    )


def unnormalise(prediction: torch.Tensor, raw: torch.Tensor, targets: TargetConfig) -> torch.Tensor:
    """Trajectory predictions ``(M, 2 * L * P)`` (the ``traj`` head's layout) → pixels ``(M, 2, L, P)``.

    ``raw``: the same tokens' target displacements in pixels ``(M, 2, L, P)``. With ``patch_std``
    the prediction is scaled by the target's std over the token's points and shifted by their
    mean (per coordinate and step), the inverse of the target's normalisation; with ``none`` it
    is multiplied back by ``max_displacement``.
    """
    prediction = prediction.reshape(raw.shape)
    if targets.traj_norm == "patch_std":
        mean = raw.mean(dim=-1, keepdim=True)
        std = raw.std(dim=-1, keepdim=True, unbiased=True)
        return prediction * (std + targets.eps) + mean
    return prediction * targets.max_displacement


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


def endpoint_errors(sample: TrajectorySample) -> dict[str, float]:
    """Mean endpoint error (pixels) over the masked tokens' valid points: the model, and zeros
    (the normalised prediction 0, i.e. every point moving with its patch's mean)."""
    masked = sample.mask & sample.valid[:, -1].any(axis=1)
    if not masked.any():
        return {"model": float("nan"), "patch_mean": float("nan"), "points": 0}
    valid = sample.valid[masked, -1]  # (M, P): valid at the end
    target = sample.target[masked].sum(axis=2)  # (M, 2, P): endpoint offsets
    predicted = sample.predicted[masked].sum(axis=2)
    mean = target.mean(axis=2, keepdims=True) if sample.normalisation == "patch_std" else 0.0
    model_error = np.linalg.norm(predicted - target, axis=1)[valid]
    zero_error = np.linalg.norm(mean - target, axis=1)[valid]
    return {
        "model": float(model_error.mean()),
        "patch_mean": float(zero_error.mean()),
        "points": int(valid.sum()),
    }


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
) -> dict[str, Any]:
    """Draw ``sample`` (see module docstring) into a PNG; returns what was drawn and the errors."""
    from matplotlib import patheffects
    from matplotlib.patches import Rectangle

    from mme.demo.figures import new_figure, save_png

    tubelets, rows, cols = sample.grid
    k = _busiest_tubelet(sample) if tubelet is None else tubelet
    if not 0 <= k < tubelets:
        raise ConfigError(f"tubelet must be in [0, {tubelets - 1}], got {tubelet}")
    scale = _auto_magnify(sample) if magnify is None else float(magnify)
    tokens = np.arange(k * rows * cols, (k + 1) * rows * cols)
    target_paths = paths(sample, sample.target, scale)[tokens]  # (n, P, L+1, 2)
    predicted_paths = paths(sample, np.nan_to_num(sample.predicted), scale)[tokens]
    valid = sample.valid[tokens]  # (n, L, P)
    masked = sample.mask[tokens]
    frames = sample.dense_frames[k]  # (L+1, H, W, 3)
    steps = frames.shape[0] - 1
    height, width = frames.shape[1:3]
    errors = endpoint_errors(sample)

    panels = steps + 1
    figure = new_figure(2.2 * panels, 2.2 * 2 + 0.5)
    axes = figure.subplots(2, panels, squeeze=False)
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.9, wspace=0.04, hspace=0.12)
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
        ("masked patches: target", ((TARGET_COLOUR, target_paths),)),
        ("masked patches: MME prediction", ((PREDICTION_COLOUR, predicted_paths),)),
        ("target and prediction", ((TARGET_COLOUR, target_paths), (PREDICTION_COLOUR, predicted_paths))),
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
        ax.set_title(name, fontsize=8)
    for ax in axes.flat:
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_xticks([])
        ax.set_yticks([])
    if sample.normalisation == "patch_std":
        how = (
            "The model predicts patch-std normalised trajectories (per token, coordinate and step: "
            "minus the mean over the patch's points, over their std); they are drawn in pixels by "
            "un-normalising with the target's per-token mean and std (as VideoMAE's visualisation "
            "does for pixels): a patch's mean motion and scale come from the target, the prediction "
            "shows how its points move relative to each other."
        )
    else:
        how = "Predictions are in units of the maximum displacement and drawn scaled back to pixels."
    caption = (
        f"Top: frames r_k..r_k+{steps} of tubelet {k} with the target trajectories (green; points "
        f"every {sample.traj_stride} px, tracked with optical flow); bright squares: patches hidden "
        f"from the encoder, dark: visible. Bottom: the masked patches on frame r_k, target (green) "
        f"and the model's prediction (magenta). {how} Displacements "
        f"drawn x{scale:g}. Mean endpoint error over the masked points of the clip: model "
        f"{errors['model']:.2f} px, patch-mean motion {errors['patch_mean']:.2f} px."
    )
    if title:
        figure.suptitle(title, fontsize=10)
    figure.text(0.01, 0.0, caption, fontsize=7.5, ha="left", va="top", wrap=True)
    save_png(figure, Path(out))
    return {"path": str(out), "tubelet": k, "magnify": scale, "endpoint_error": errors}


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
) -> dict[str, Any]:
    """The trajectory picture of ``video`` for an MME pre-training ``checkpoint``, saved to ``out``.

    ``settings`` default to the checkpoint's own run (:func:`settings_from_run`), else to the
    released recipe's (stride 4, mask 0.7 tube, default trajectories). ``start``: first raw frame
    of the clip (None: centred); ``tubelet``: which tubelet to draw (None: the one whose masked
    patches move most); ``magnify``: displacement scale for drawing (None: automatic).
    """
    if not Path(video).is_file():
        raise DataError(f"video {video} does not exist")
    model = load_traj_model(checkpoint)
    settings = settings or settings_from_run(checkpoint) or PictureSettings()
    sample = predict_trajectories(model, video, settings, start=start, seed=seed)
    title = f"{Path(video).name}: MME trajectory targets and predictions ({Path(checkpoint).name})"
    return draw_trajectory_figure(sample, out, tubelet=tubelet, magnify=magnify, title=title)
