"""Target builders: the device batch -> per-token targets for ALL tokens (docs/method.md §4).

One registry entry per target (:data:`TARGETS`: activation, width, builder); batched tensor code,
no per-sample loops. Batch keys and per-token layouts: docs/motion.md, "Targets".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from mme.errors import ConfigError
from mme.motion.hog import hog_along_trajectories, hog_cells
from mme.objectives.config import TargetConfig

Batch = Mapping[str, torch.Tensor]
Built = tuple[torch.Tensor, torch.Tensor | None]


@dataclass(frozen=True)
class TargetSpec:
    """One target: the head activation it expects, its per-token size and its builder."""

    name: str
    activation: str  # "sigmoid", "tanh" or "identity": what the model puts on this head's output
    dim: Callable[[TargetConfig], int]
    build: Callable[[Batch, TargetConfig], Built]
    description: str
    signed: bool  # values of both signs: a sigmoid head could not output half of them

    def check_activation(self, activation: str) -> None:
        """ConfigError when a head with ``activation`` cannot output this target's values."""
        if activation == "sigmoid" and self.signed:
            raise ConfigError(
                f"a sigmoid head cannot predict target {self.name!r}: its values are negative as "
                "often as positive; use identity or tanh"
            )


def _require(batch: Batch, key: str, target: str, ndim: int) -> torch.Tensor:
    if key not in batch:
        raise ConfigError(f"target {target!r} needs batch[{key!r}], which the data pipeline did not provide")
    value = batch[key]
    if value.ndim != ndim:
        raise ValueError(
            f"target {target!r}: batch[{key!r}] must have {ndim} dims, got shape {tuple(value.shape)}"
        )
    return value


def _token_grid(clip: torch.Tensor, config: TargetConfig) -> tuple[int, int, int]:
    """(K, Hp, Wp) of a (B, 3, T, H, W) clip, checking that the sizes divide evenly."""
    _, _, frames, height, width = clip.shape
    if frames % config.tubelet_size or height % config.patch_size or width % config.patch_size:
        raise ValueError(
            f"clip of T={frames}, H={height}, W={width} does not split into tubelets of "
            f"{config.tubelet_size}x{config.patch_size}x{config.patch_size}"
        )
    return frames // config.tubelet_size, height // config.patch_size, width // config.patch_size


def grid_to_tokens(grid: torch.Tensor, per_side: int) -> torch.Tensor:
    """(B, K, Gh, Gw, *F) grid -> (B, N, per_side**2, *F), tokens in model order, points row-major."""
    batch, tubelets, grid_h, grid_w = grid.shape[:4]
    features = grid.shape[4:]
    rows, cols = grid_h // per_side, grid_w // per_side
    split = grid.reshape(batch, tubelets, rows, per_side, cols, per_side, *features)
    order = (0, 1, 2, 4, 3, 5, *range(6, 6 + len(features)))
    return split.permute(order).reshape(batch, tubelets * rows * cols, per_side * per_side, *features)


def _trajectory_inputs(
    batch: Batch, config: TargetConfig, target: str
) -> tuple[torch.Tensor, torch.Tensor, int]:
    clip = _require(batch, "clip", target, 5)
    disp = _require(batch, "traj_disp", target, 6)
    valid = _require(batch, "traj_valid", target, 5)
    tubelets, rows, cols = _token_grid(clip, config)
    per_side = config.patch_size // config.traj_stride
    expected = (clip.shape[0], tubelets, config.traj_steps, rows * per_side, cols * per_side)
    if tuple(disp.shape) != (*expected, 2) or tuple(valid.shape) != expected:
        raise ValueError(
            f"target {target!r}: traj_disp {tuple(disp.shape)} / traj_valid {tuple(valid.shape)} "
            f"do not fit the clip {tuple(clip.shape)}: expected {(*expected, 2)} and {expected} "
            f"(steps={config.traj_steps}, stride={config.traj_stride})"
        )
    return disp, valid, per_side


def trajectory_weight(valid: torch.Tensor, per_side: int) -> torch.Tensor:
    """Token weight (B, N): 1 if at least one of its points is valid at the last step, else 0."""
    last = valid[:, :, -1]  # (B, K, Gh, Gw)
    return grid_to_tokens(last, per_side).any(dim=-1).to(torch.float32)


def build_traj(batch: Batch, config: TargetConfig) -> Built:
    """Per-token trajectory displacements, layout "2 x L x q*q"."""
    disp, valid, per_side = _trajectory_inputs(batch, config, "traj")
    disp = disp.float().clamp(-config.max_displacement, config.max_displacement)
    tokens = grid_to_tokens(disp.permute(0, 1, 3, 4, 2, 5), per_side)  # (B, N, P, L, 2)
    tokens = tokens.permute(0, 1, 4, 3, 2)  # (B, N, 2, L, P)
    if config.traj_norm == "none":
        return (tokens / config.max_displacement).flatten(2), trajectory_weight(valid, per_side)
    if config.traj_norm == "patch_std_int":
        tokens = _whole_flow_pixels(tokens, batch)
    return patch_standardise(tokens, config).flatten(2), trajectory_weight(valid, per_side)


def patch_standardise(tokens: torch.Tensor, config: TargetConfig) -> torch.Tensor:
    """Standardise (..., P) over a token's points; ``patch_std`` floors the std (docs/motion.md)."""
    mean = tokens.mean(dim=-1, keepdim=True)
    std = tokens.std(dim=-1, keepdim=True, unbiased=True)
    if config.traj_norm == "patch_std":
        return (tokens - mean) / std.clamp(min=config.traj_std_floor).add(config.eps)
    return (tokens - mean) / (std + config.eps)


def _whole_flow_pixels(tokens: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Steps truncated to whole flow pixels (``traj_flow_scale``: input pixels per flow pixel; absent: 1)."""
    scale = batch.get("traj_flow_scale")
    if scale is None:
        return torch.trunc(tokens)
    scale = scale.to(tokens).reshape(-1, 1, 2, 1, 1)  # (B, N, 2, L, P) broadcast
    return torch.trunc(tokens / scale) * scale


def build_hog(batch: Batch, config: TargetConfig) -> Built:
    """Per-token HOG of each tubelet's second frame, layout "q*q cells x 3 channels x 9 bins"."""
    clip = _require(batch, "clip", "hog", 5)
    batch_size, channels = clip.shape[:2]
    tubelets = _token_grid(clip, config)[0]
    second = clip[:, :, 1 :: config.tubelet_size]  # (B, C, K, H, W): frames 2k + 1
    images = second.transpose(1, 2).reshape(batch_size * tubelets, channels, *clip.shape[-2:])
    cells = hog_cells(images.float(), cell=config.hog_cell, bins=config.hog_bins)  # (BK, C, bins, Gh, Gw)
    grid = cells.permute(0, 3, 4, 1, 2).reshape(
        batch_size, tubelets, *cells.shape[-2:], channels, config.hog_bins
    )
    return grid_to_tokens(grid, config.patch_size // config.hog_cell).flatten(2), None


def build_traj_hog(batch: Batch, config: TargetConfig) -> Built:
    """Per-token HOG along the trajectories (paper variant), layout "L x q*q points x 3 x 9"."""
    disp, valid, per_side = _trajectory_inputs(batch, config, "traj_hog")
    frames = _require(batch, "traj_frames", "traj_hog", 6)
    batch_size, tubelets = disp.shape[:2]
    expected = (batch_size, tubelets, config.traj_steps + 1, 3, *batch["clip"].shape[-2:])
    if tuple(frames.shape) != expected:
        raise ValueError(f"target 'traj_hog': traj_frames must be {expected}, got {tuple(frames.shape)}")
    disp = disp.float().clamp(-config.max_displacement, config.max_displacement)
    hog = hog_along_trajectories(
        frames.float(), disp, stride=config.traj_stride, cell=config.hog_cell, bins=config.hog_bins
    )  # (B, K, L, Gh, Gw, C, bins)
    hog = hog * valid[..., None, None].to(hog.dtype)
    tokens = grid_to_tokens(hog.permute(0, 1, 3, 4, 2, 5, 6), per_side)  # (B, N, P, L, C, bins)
    return tokens.transpose(2, 3).flatten(2), trajectory_weight(valid, per_side)


def build_pixel(batch: Batch, config: TargetConfig) -> Built:
    """VideoMAE's pixel target, normalised per token and channel, layout "(p0 p1 p2) c"."""
    clip = _require(batch, "clip", "pixel", 5)
    batch_size, channels = clip.shape[:2]
    tubelets, rows, cols = _token_grid(clip, config)
    tube, patch = config.tubelet_size, config.patch_size
    split = clip.float().reshape(batch_size, channels, tubelets, tube, rows, patch, cols, patch)
    tokens = split.permute(0, 2, 4, 6, 3, 5, 7, 1).reshape(batch_size, tubelets * rows * cols, -1, channels)
    mean = tokens.mean(dim=2, keepdim=True)
    std = tokens.var(dim=2, keepdim=True, unbiased=True).sqrt()
    return ((tokens - mean) / (std + config.eps)).flatten(2), None


TARGETS: dict[str, TargetSpec] = {
    spec.name: spec
    for spec in (
        TargetSpec(
            "hog",
            "identity",
            lambda c: c.hog_cells_per_token * 3 * c.hog_bins,
            build_hog,
            "HOG of each tubelet's second frame (appearance, released recipe)",
            False,
        ),
        TargetSpec(
            "traj",
            "identity",
            lambda c: 2 * c.traj_steps * c.traj_points,
            build_traj,
            "per-step trajectory displacements (motion, released recipe)",
            True,
        ),
        TargetSpec(
            "traj_hog",
            "identity",
            lambda c: c.traj_steps * c.traj_points * 3 * c.hog_bins,
            build_traj_hog,
            "HOG under each tracked point at each step (paper's shape variant)",
            False,
        ),
        TargetSpec(
            "pixel",
            "identity",
            lambda c: c.tubelet_size * c.patch_size * c.patch_size * 3,
            build_pixel,
            "normalised pixels (VideoMAE baseline)",
            True,
        ),
    )
}


def get_target(name: str) -> TargetSpec:
    spec = TARGETS.get(name)
    if spec is None:
        raise ConfigError(f"unknown target {name!r}; choose from {', '.join(TARGETS)}")
    return spec


def target_dim(name: str, config: TargetConfig | None = None) -> int:
    """Per-token size of target ``name`` (the head's output width)."""
    return get_target(name).dim(config or TargetConfig())


def head_specs(
    names: Sequence[str], config: TargetConfig | None = None, activations: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """One ``{name, dim, activation}`` head per target; ``activations`` overrides the targets' own."""
    config = config or TargetConfig()
    activations = activations or {}
    return [
        {
            "name": name,
            "dim": target_dim(name, config),
            "activation": activations.get(name, get_target(name).activation),
        }
        for name in names
    ]


def build_targets(
    names: list[str] | tuple[str, ...], batch: Batch, config: TargetConfig | None = None
) -> dict[str, Built]:
    """``{name: (values (B, N, C), weight (B, N) or None)}`` for each target in ``names``."""
    config = config or TargetConfig()
    with torch.no_grad():
        return {name: get_target(name).build(batch, config) for name in names}
