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


def test_view_shards_merge_back_in_dataset_order_and_summarize():
    from mme.train.evaluate import merge_shards, summarize

    scores = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.4, 0.6], [0.1, 0.9]])
    shards = [
        {"item": torch.tensor([0, 2, 4]), "scores": scores[[0, 2, 4]]},
        {"item": torch.tensor([1, 3, 5]), "scores": scores[[1, 3, 5]]},
        {"item": torch.zeros(0, dtype=torch.long), "scores": torch.zeros(0, 0)},  # a rank without views
    ]
    merged = merge_shards(shards)
    assert merged["item"].tolist() == list(range(6)) and torch.equal(merged["scores"], scores)
    # 3 videos x 2 views: video 0 = views (0.9,0.1),(0.2,0.8) -> class 0; video 1 -> class 1 ...
    result = summarize(merged, labels=torch.tensor([0, 1, 1]), views_per_video=2)
    expected = torch.tensor([[0.55, 0.45], [0.45, 0.55], [0.25, 0.75]])
    assert torch.allclose(result["video_scores"], expected)
    assert result["top1"] == pytest.approx(100.0) and result["view_top1"] == pytest.approx(100 * 4 / 6)
    assert result["confusion"].tolist() == [[1, 0], [0, 2]]
