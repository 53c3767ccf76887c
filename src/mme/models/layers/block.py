"""Pre-norm transformer block with optional drop-path and layer scale (docs/method.md §2)."""

from __future__ import annotations

import torch
from torch import nn

from mme.models.layers.attention import Attention
from mme.models.layers.drop_path import DropPath
from mme.models.layers.mlp import Mlp


class Block(nn.Module):
    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
        drop_path: float = 0.0,
        init_values: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        if init_values > 0:
            self.gamma_1 = nn.Parameter(torch.full((dim,), float(init_values)))
            self.gamma_2 = nn.Parameter(torch.full((dim,), float(init_values)))
        else:
            self.register_parameter("gamma_1", None)
            self.register_parameter("gamma_2", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.attn(self.norm1(x))
        if self.gamma_1 is not None:
            branch = self.gamma_1 * branch
        x = x + self.drop_path(branch)
        branch = self.mlp(self.norm2(x))
        if self.gamma_2 is not None:
            branch = self.gamma_2 * branch
        return x + self.drop_path(branch)
