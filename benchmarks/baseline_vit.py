"""A straightforward VideoMAE-style pre-training network, for comparison in benchmarks/step.py.

Same maths and sizes as ``mme.models.MMEPretrainModel`` (tubelet Conv3d, fixed sine-cosine
positions, pre-norm blocks with ``qkv`` + ``q_bias``/``v_bias``, encoder on visible tokens,
decoder on all tokens, MLP heads), written the plain way: attention as
``softmax((q @ k^T) * scale) @ v`` with the full score matrix, the position table as a constant
tensor, boolean-mask gathers. It is a reference point for speed only; it is not part of mme.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoid_table(num_positions: int, dim: int) -> torch.Tensor:
    position = torch.arange(num_positions, dtype=torch.float64)[:, None]
    channel = torch.arange(dim)
    angle = position / torch.pow(10000.0, (2 * (channel // 2)).double() / dim)
    table = torch.where(channel % 2 == 0, angle.sin(), angle.cos())
    return table.float()[None]


class PlainAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = nn.functional.linear(x, self.qkv.weight, bias)
        qkv = qkv.reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(out)


class PlainBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = PlainAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class PlainPretrainModel(nn.Module):
    """``forward(clip, mask) -> {head: (B, M, C)}`` like MMEPretrainModel, written plainly."""

    def __init__(
        self,
        dim: int,
        depth: int,
        heads: int,
        decoder_dim: int = 192,
        decoder_depth: int = 1,
        decoder_heads: int = 6,
        head_dims: dict[str, tuple[int, type[nn.Module]]] | None = None,
        num_tokens: int = 1568,
    ) -> None:
        super().__init__()
        head_dims = head_dims or {"hog": (108, nn.Sigmoid), "traj": (32, nn.Tanh)}
        self.patch_embed = nn.Conv3d(3, dim, kernel_size=(2, 16, 16), stride=(2, 16, 16))
        self.register_buffer("pos", sinusoid_table(num_tokens, dim), persistent=False)
        self.blocks = nn.ModuleList(PlainBlock(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.encoder_to_decoder = nn.Linear(dim, decoder_dim, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.register_buffer("decoder_pos", sinusoid_table(num_tokens, decoder_dim), persistent=False)
        self.decoder_blocks = nn.ModuleList(
            PlainBlock(decoder_dim, decoder_heads) for _ in range(decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(decoder_dim, eps=1e-6)
        self.heads = nn.ModuleDict(
            {
                name: nn.Sequential(nn.Linear(decoder_dim, 512), nn.GELU(), nn.Linear(512, width), act())
                for name, (width, act) in head_dims.items()
            }
        )
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, clip: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.patch_embed(clip).flatten(2).transpose(1, 2)
        x = x + self.pos.type_as(x)
        b, _, c = x.shape
        x = x[~mask].reshape(b, -1, c)
        for block in self.blocks:
            x = block(x)
        x = self.encoder_to_decoder(self.norm(x))
        pos = self.decoder_pos.type_as(x).expand(b, -1, -1)
        d = x.shape[-1]
        num_masked = int(mask[0].sum())
        x = torch.cat(
            [x + pos[~mask].reshape(b, -1, d), self.mask_token + pos[mask].reshape(b, num_masked, d)], dim=1
        )
        for block in self.decoder_blocks:
            x = block(x)
        x = self.decoder_norm(x[:, -num_masked:])
        return {name: head(x) for name, head in self.heads.items()}


def parameter_count(model: nn.Module) -> int:
    return sum(math.prod(p.shape) for p in model.parameters())
