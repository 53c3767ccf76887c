"""HOG in PyTorch, batched on any device (docs/method.md §4.2); no library computes exactly this."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

HOG_BINS = 9
HOG_CELL = 8
# Upper bound on the elements of the per-pixel (N, C, bins, H, W) vote tensor built at once;
# larger batches are processed in chunks of images (256 MiB of float32).
_MAX_VOTE_ELEMENTS = 1 << 26


def sobel_gradients(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel derivatives (gx, gy) of float images (N, C, H, W), per channel, replicate padding."""
    channels = images.shape[1]
    kernel_x = torch.tensor(
        [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=images.dtype, device=images.device
    )
    kernels = torch.stack([kernel_x, kernel_x.t()])[:, None].repeat(channels, 1, 1, 1)
    padded = F.pad(images, (1, 1, 1, 1), mode="replicate")
    grads = F.conv2d(padded, kernels, groups=channels)
    return grads[:, 0::2], grads[:, 1::2]


def orientation_votes(images: torch.Tensor, bins: int = HOG_BINS) -> torch.Tensor:
    """Per-pixel orientation votes (N, C, bins, H, W): magnitude split between the two nearest bins."""
    gx, gy = sobel_gradients(images)
    magnitude = torch.sqrt(gx * gx + gy * gy)
    theta = torch.remainder(torch.atan2(gy, gx), math.pi)
    position = theta * (bins / math.pi)
    lower_float = torch.floor(position)
    upper_share = position - lower_float
    lower = lower_float.long() % bins
    upper = (lower + 1) % bins
    votes = torch.zeros(
        (*images.shape[:2], bins, *images.shape[2:]), dtype=images.dtype, device=images.device
    )
    votes.scatter_(2, lower[:, :, None], (magnitude * (1.0 - upper_share))[:, :, None])
    votes.scatter_add_(2, upper[:, :, None], (magnitude * upper_share)[:, :, None])
    return votes


def _chunks(images: torch.Tensor, bins: int) -> int:
    per_image = max(1, images[0].numel() * bins)
    return max(1, _MAX_VOTE_ELEMENTS // per_image)


def hog_cells(images: torch.Tensor, cell: int = HOG_CELL, bins: int = HOG_BINS) -> torch.Tensor:
    """Images (N, C, H, W) -> (N, C, bins, H // cell, W // cell), the mean vote per whole cell."""
    if images.ndim != 4:
        raise ValueError(f"hog_cells expects (N, C, H, W) images, got shape {tuple(images.shape)}")
    images = images if images.is_floating_point() else images.float()
    channels, height, width = images.shape[1:]
    if height < cell or width < cell:
        raise ValueError(f"a {width}x{height} image holds no {cell}x{cell} cell")
    outputs = []
    for chunk in images.split(_chunks(images, bins)):
        votes = orientation_votes(chunk, bins)
        pooled = F.avg_pool2d(votes.flatten(1, 2), kernel_size=cell, stride=cell)
        outputs.append(pooled.unflatten(1, (channels, bins)))
    return torch.cat(outputs)


def hog_at_points(
    images: torch.Tensor, points: torch.Tensor, cell: int = HOG_CELL, bins: int = HOG_BINS
) -> torch.Tensor:
    """HOG (N, M, C, bins) of the ``cell`` window centred on each sub-pixel point (N, M, 2), bilinear."""
    if images.ndim != 4 or points.ndim != 3 or points.shape[0] != images.shape[0] or points.shape[-1] != 2:
        raise ValueError(
            f"hog_at_points expects images (N, C, H, W) and points (N, M, 2), got {tuple(images.shape)} "
            f"and {tuple(points.shape)}"
        )
    images = images if images.is_floating_point() else images.float()
    channels, height, width = images.shape[1:]
    if height < cell or width < cell:
        raise ValueError(f"a {width}x{height} image holds no {cell}x{cell} cell")
    points = points.to(images.dtype)
    step = max(1, _chunks(images, bins))
    outputs = []
    for image_chunk, point_chunk in zip(images.split(step), points.split(step), strict=True):
        votes = orientation_votes(image_chunk, bins).flatten(1, 2)
        # windows[..., y0, x0] = mean vote over rows y0..y0+cell-1, columns x0..x0+cell-1,
        # i.e. the window centred on (x0 + (cell-1)/2, y0 + (cell-1)/2).
        windows = F.avg_pool2d(votes, kernel_size=cell, stride=1)
        grid_h, grid_w = windows.shape[-2:]
        start = point_chunk - (cell - 1) / 2.0
        # grid_sample with align_corners=True maps -1 / +1 to the first / last window centres.
        norm_x = 2.0 * start[..., 0] / max(grid_w - 1, 1) - 1.0
        norm_y = 2.0 * start[..., 1] / max(grid_h - 1, 1) - 1.0
        grid = torch.stack([norm_x, norm_y], dim=-1)[:, :, None]
        sampled = F.grid_sample(windows, grid, mode="bilinear", padding_mode="border", align_corners=True)
        outputs.append(sampled[..., 0].transpose(1, 2).unflatten(2, (channels, bins)))
    return torch.cat(outputs)


def hog_along_trajectories(
    frames: torch.Tensor,
    disp: torch.Tensor,
    stride: int = HOG_CELL,
    cell: int = HOG_CELL,
    bins: int = HOG_BINS,
) -> torch.Tensor:
    """HOG (..., L, Gh, Gw, C, bins) under each tracked point at steps 1..L of its trajectory."""
    lead = disp.shape[:-4]
    steps, grid_h, grid_w = disp.shape[-4:-1]
    if frames.shape[:-3] != (*lead, steps + 1):
        raise ValueError(
            f"frames {tuple(frames.shape)} do not match trajectories {tuple(disp.shape)}: "
            f"expected leading shape {(*lead, steps + 1)}"
        )
    channels, height, width = frames.shape[-3:]
    centre = (stride - 1) / 2.0
    ys = torch.arange(grid_h, dtype=disp.dtype, device=disp.device) * stride + centre
    xs = torch.arange(grid_w, dtype=disp.dtype, device=disp.device) * stride + centre
    seeds = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (Gh, Gw, 2) as (x, y)
    positions = seeds + torch.cumsum(disp, dim=-4)  # (..., L, Gh, Gw, 2): after steps 1..L
    images = frames[..., 1:, :, :, :].reshape(-1, channels, height, width)
    points = positions.reshape(-1, grid_h * grid_w, 2)
    sampled = hog_at_points(images, points, cell=cell, bins=bins)
    return sampled.reshape(*lead, steps, grid_h, grid_w, channels, bins)
