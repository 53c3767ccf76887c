"""Top-k, view merging, confusion matrix and per-class accuracy on hand-checked inputs."""

from __future__ import annotations

import pytest
import torch

from mme.eval.metrics import confusion_matrix, merge_views, per_class_accuracy, topk_correct, wilson_interval


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
    with pytest.raises(ValueError, match="label 4 is outside the 4 classes"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 4]), num_classes=4)


def test_view_shards_merge_back_in_dataset_order_and_summarize():
    from mme.eval.evaluate import merge_shards, summarize

    scores = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.4, 0.6], [0.1, 0.9]])
    shards = [
        {"item": torch.tensor([0, 2, 4]), "values": scores[[0, 2, 4]], "failed": []},
        {"item": torch.tensor([1, 3, 5]), "values": scores[[1, 3, 5]], "failed": []},
        {"item": torch.zeros(0, dtype=torch.long), "values": torch.zeros(0, 0), "failed": []},  # no views
    ]
    merged = merge_shards(shards)
    assert merged["item"].tolist() == list(range(6)) and torch.equal(merged["values"], scores)
    # 3 videos x 2 views: video 0 = views (0.9,0.1),(0.2,0.8) -> class 0; video 1 -> class 1 ...
    result = summarize(merged, labels=torch.tensor([0, 1, 1]), views_per_video=2)
    expected = torch.tensor([[0.55, 0.45], [0.45, 0.55], [0.25, 0.75]])
    assert torch.allclose(result["video_scores"], expected)
    assert result["top1"] == pytest.approx(100.0) and result["view_top1"] == pytest.approx(100 * 4 / 6)
    assert result["confusion"].tolist() == [[1, 0], [0, 2]]


def test_a_video_with_a_failed_view_is_left_out_of_every_number():
    """3 videos x 2 views over two ranks; video 1's view 3 failed to decode (view 2 did not)."""
    from mme.eval.evaluate import failed_videos, merge_shards, summarize

    scores = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6], [0.1, 0.9]])  # items 0 1 2 4 5
    shards = [
        {"item": torch.tensor([0, 2, 4]), "values": scores[[0, 2, 3]], "failed": []},
        {"item": torch.tensor([1, 5]), "values": scores[[1, 4]], "failed": [(3, "cannot open video b.mp4")]},
    ]
    merged = merge_shards(shards)
    assert merged["failed"] == [(3, "cannot open video b.mp4")]
    assert failed_videos(merged["failed"], views_per_video=2) == {1: "cannot open video b.mp4"}
    # video 1 is labelled 0 and its one decoded view says class 0: counted, it would add a hit.
    result = summarize(merged, labels=torch.tensor([0, 0, 1]), views_per_video=2)
    assert result["videos"] == 2 and result["views"] == 4 and result["failed_videos"] == 1
    assert result["failures"] == {1: "cannot open video b.mp4"} and result["video_ids"].tolist() == [0, 2]
    assert torch.allclose(result["video_scores"], torch.tensor([[0.55, 0.45], [0.25, 0.75]]))
    assert result["video_labels"].tolist() == [0, 1]
    assert result["top1"] == pytest.approx(100.0) and result["view_top1"] == pytest.approx(75.0)
    assert result["confusion"].tolist() == [[1, 0], [0, 1]]


def test_wilson_interval_known_values():
    # 8 of 40 correct: by hand, Wilson 95%: (0.2 + z²/80) / (1 + z²/40) ∓ ... = 0.105..0.348
    assert wilson_interval(20.0, 40) == (10.5, 34.8)
    assert wilson_interval(0.0, 10) == (0.0, 27.8)
    assert wilson_interval(100.0, 10) == (72.2, 100.0)
