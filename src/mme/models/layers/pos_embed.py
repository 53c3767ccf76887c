"""The fixed 1-D sine-cosine position table of VideoMAE/MME (docs/method.md §2).

Computed in float64 and rounded once (the original numpy table, bit for bit); never stored.
"""

from __future__ import annotations

import torch


def sincos_table(
    num_positions: int,
    dim: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Position table of shape ``(1, num_positions, dim)``."""
    position = torch.arange(num_positions, dtype=torch.float64, device=device)[:, None]
    channel = torch.arange(dim, device=device)
    exponent = (2 * torch.div(channel, 2, rounding_mode="floor")).to(torch.float64) / dim
    angle = position / torch.pow(10000.0, exponent)
    table = torch.where(channel % 2 == 0, torch.sin(angle), torch.cos(angle))
    return table.to(dtype).unsqueeze(0)
