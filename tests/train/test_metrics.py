"""Top-k, view merging, confusion matrix and per-class accuracy on hand-checked inputs."""

from __future__ import annotations

import pytest
import torch

from mme.train.metrics import confusion_matrix, merge_views, per_class_accuracy, topk_correct


def test_topk_counts():
    scores = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    labels = torch.tensor([1, 1, 0])
    assert topk_correct(scores, labels, (1, 2, 5)) == {1: 1, 2: 2, 5: 3}
    assert topk_correct(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)) == {1: 0, 5: 0}


def test_merge_views_averages_per_video():
    views = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.2, 0.8], [0.6, 0.4]])
    merged, counts = merge_views(views, torch.tensor([0, 1, 1, 0]), num_videos=2)
    assert torch.allclose(merged, torch.tensor([[0.8, 0.2], [0.1, 0.9]]))
    assert counts.tolist() == [2, 2]
    with pytest.raises(RuntimeError, match=r"videos \[2\]"):
        merge_views(views, torch.tensor([0, 1, 1, 0]), num_videos=3)


def test_confusion_and_per_class():
    confusion = confusion_matrix(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 0, 1, 2]), num_classes=4)
    assert confusion.tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert per_class_accuracy(confusion) == [0.5, 1.0, 1.0, None]
