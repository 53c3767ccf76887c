"""The masked reconstruction loss (docs/method.md §5)."""

from __future__ import annotations

from collections.abc import Mapping

import torch


def masked_loss(
    predictions: Mapping[str, torch.Tensor],
    targets: Mapping[str, tuple[torch.Tensor, torch.Tensor | None]],
    mask: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Squared error over masked tokens, weighted; returns (total, {target name: term}).

    Each term sums over the B x M masked tokens and divides by B x M; the total is the mean of the
    terms; float32 whatever the predictions' dtype (docs/method.md §5).
    """
    if mask.dtype != torch.bool or mask.ndim != 2:
        raise ValueError(f"mask must be bool (B, N), got {mask.dtype} {tuple(mask.shape)}")
    if set(predictions) != set(targets):
        raise ValueError(
            f"predictions {sorted(predictions)} and targets {sorted(targets)} name different targets"
        )
    if not predictions:
        raise ValueError("masked_loss needs at least one target")
    batch, tokens = mask.shape
    masked_per_row = mask.sum(dim=1)
    count = int(masked_per_row[0])
    if count == 0 or not bool((masked_per_row == count).all()):
        raise ValueError(
            f"every mask row must mask the same number (> 0) of tokens, got {masked_per_row.tolist()}"
        )
    terms: dict[str, torch.Tensor] = {}
    for name, prediction in predictions.items():
        values, weight = targets[name]
        if values.shape[:2] != (batch, tokens):
            raise ValueError(
                f"target {name!r}: values {tuple(values.shape)} do not match mask {tuple(mask.shape)}"
            )
        expected = (batch, count, values.shape[-1])
        if tuple(prediction.shape) != expected:
            raise ValueError(f"target {name!r}: predictions {tuple(prediction.shape)}, expected {expected}")
        chosen = values[mask].reshape(expected).float()
        error = (prediction.float() - chosen).pow(2).sum(dim=-1)  # (B, M)
        if weight is not None:
            error = error * weight[mask].reshape(batch, count).float()
        terms[name] = error.sum() / (batch * count)
    total = torch.stack(list(terms.values())).mean()
    return total, terms
