"""Classification metrics on CPU tensors: top-k, multi-view merging, per-class accuracy, confusion."""

from __future__ import annotations

import math

import torch


def topk_correct(scores: torch.Tensor, labels: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[int, int]:
    """Rows whose label is among the ``k`` highest scores, per ``k`` (``k`` > classes counts every row)."""
    if scores.numel() == 0:
        return dict.fromkeys(ks, 0)
    largest = min(max(ks), scores.shape[1])
    top = scores.topk(largest, dim=1).indices
    hits = top.eq(labels.view(-1, 1))
    return {k: int(hits[:, : min(k, largest)].any(dim=1).sum()) for k in ks}


def merge_views(
    view_scores: torch.Tensor, video_index: torch.Tensor, num_videos: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean per-video scores ``(num_videos, C)`` and view counts, summed in row order (bit-exact)."""
    sums = torch.zeros(num_videos, view_scores.shape[1], dtype=torch.float64)
    sums.index_add_(0, video_index.long(), view_scores.double())
    counts = torch.bincount(video_index.long(), minlength=num_videos)
    if (counts == 0).any():
        missing = torch.nonzero(counts == 0).flatten()[:10].tolist()
        raise RuntimeError(f"no view was evaluated for videos {missing}")
    return (sums / counts.unsqueeze(1)).float(), counts


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(C, C)`` counts; row = true class, column = predicted class."""
    if labels.numel() and int(labels.max()) >= num_classes:
        # The jobs check every list's labels up front (mme.io.lists.check_labels); reaching this is a bug.
        raise ValueError(f"label {int(labels.max())} is outside the {num_classes} classes of the scores")
    flat = labels.long() * num_classes + predictions.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def per_class_accuracy(confusion: torch.Tensor) -> list[float | None]:
    """Recall of each class (``None`` for a class without samples)."""
    totals = confusion.sum(dim=1)
    correct = confusion.diagonal()
    return [None if int(t) == 0 else float(c) / float(t) for c, t in zip(correct, totals, strict=True)]


def wilson_interval(percent: float, count: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval (in %) of an accuracy on ``count`` videos (small test sets)."""
    if count <= 0:
        return 0.0, 100.0
    p = percent / 100.0
    centre = (p + z * z / (2 * count)) / (1 + z * z / count)
    half = z * math.sqrt(p * (1 - p) / count + z * z / (4 * count * count)) / (1 + z * z / count)
    return round(100 * max(0.0, centre - half), 1), round(100 * min(1.0, centre + half), 1)
