"""Tubelet embedding (docs/method.md §1): Conv3d weights applied as one GEMM on the reshaped clip.

Kernel = stride makes the two the same sum; the GEMM is ~2x faster on CPU (benchmarks/README.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchEmbed(nn.Module):
    """Clip (B, C, T, H, W) -> tokens (B, N, D) in ``Conv3d(...).flatten(2)`` order."""

    def __init__(self, in_chans: int, embed_dim: int, tubelet_size: int, patch_size: int) -> None:
        super().__init__()
        self.in_chans = in_chans
        self.tubelet_size = tubelet_size
        self.patch_size = patch_size
        kernel = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=kernel, stride=kernel)

    def grid(self, clip_shape: torch.Size | tuple[int, ...]) -> tuple[int, int, int]:
        """Token grid ``(T', H', W')`` of a clip shape; ValueError says what was expected and given."""
        if len(clip_shape) != 5:
            raise ValueError(
                f"expected a clip of shape (B, {self.in_chans}, T, H, W) (5 dims), "
                f"got shape {tuple(clip_shape)}"
            )
        _, channels, frames, height, width = clip_shape
        if channels != self.in_chans:
            raise ValueError(
                f"expected {self.in_chans} channels in a clip (B, C, T, H, W), got {channels} "
                f"(shape {tuple(clip_shape)}); is the clip (B, T, C, H, W)?"
            )
        if frames < self.tubelet_size or frames % self.tubelet_size:
            raise ValueError(
                f"the number of frames must be a positive multiple of the tubelet size {self.tubelet_size}, "
                f"got {frames} frames"
            )
        if (
            height < self.patch_size
            or width < self.patch_size
            or height % self.patch_size
            or width % self.patch_size
        ):
            raise ValueError(
                f"height and width must be positive multiples of the patch size {self.patch_size}, "
                f"got {height}x{width}"
            )
        return frames // self.tubelet_size, height // self.patch_size, width // self.patch_size

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        t, h, w = self.grid(clip.shape)
        batch, channels = clip.shape[:2]
        size, step = self.patch_size, self.tubelet_size
        # (B, C, T', t, H', p, W', p) -> (B, T', H', W', C, t, p, p): one row per tubelet, in the
        # (k, i, j) token order and the (C, t, p, p) order of the flattened Conv3d weight.
        tubelets = clip.reshape(batch, channels, t, step, h, size, w, size).permute(0, 2, 4, 6, 1, 3, 5, 7)
        tubelets = tubelets.reshape(batch, t * h * w, channels * step * size * size)
        return F.linear(tubelets, self.proj.weight.flatten(1), self.proj.bias)
