from __future__ import annotations

import pytest
import torch

from mme.objectives import masked_loss


def tiny_example():
    mask = torch.tensor([[True, False, True, False]])
    predictions = {
        "hog": torch.tensor([[[1.0, 2.0], [0.0, 0.0]]]),
        "traj": torch.tensor([[[0.5, 0.5, 0.5], [2.0, 0.0, 0.0]]]),
    }
    targets = {
        "hog": (torch.tensor([[[0.0, 0.0], [9.0, 9.0], [0.0, 1.0], [9.0, 9.0]]]), None),
        "traj": (torch.zeros(1, 4, 3), torch.tensor([[1.0, 1.0, 0.0, 1.0]])),
    }
    return predictions, targets, mask


def test_loss_equals_the_hand_computed_value():
    predictions, targets, mask = tiny_example()
    total, terms = masked_loss(predictions, targets, mask)
    # hog: token 0: 1 + 4 = 5; token 2: 0 + 1 = 1 -> (5 + 1) / 2 masked tokens = 3
    # traj: token 0: 3 * 0.25 = 0.75 (valid); token 2: 4 but weight 0 -> 0.75 / 2 = 0.375
    torch.testing.assert_close(terms["hog"], torch.tensor(3.0))
    torch.testing.assert_close(terms["traj"], torch.tensor(0.375))
    torch.testing.assert_close(total, torch.tensor((3.0 + 0.375) / 2))


def test_unmasked_tokens_do_not_move_the_loss():
    predictions, targets, mask = tiny_example()
    before, _ = masked_loss(predictions, targets, mask)
    targets["hog"][0][:, [1, 3]] = -100.0
    targets["traj"][0][:, [1, 3]] = 55.0
    targets["traj"][1][:, [1, 3]] = 0.0
    after, _ = masked_loss(predictions, targets, mask)
    torch.testing.assert_close(after, before)


def test_invalid_tokens_do_not_move_the_motion_term():
    predictions, targets, mask = tiny_example()
    _, before = masked_loss(predictions, targets, mask)
    predictions["traj"][0, 1] = torch.tensor([-7.0, 8.0, 9.0])  # masked token 2, weight 0
    targets["traj"][0][0, 2] = torch.tensor([3.0, 3.0, 3.0])
    _, after = masked_loss(predictions, targets, mask)
    torch.testing.assert_close(after["traj"], before["traj"])


def test_gradients_reach_only_predictions_of_weighted_tokens_and_half_inputs_work():
    predictions, targets, mask = tiny_example()
    traj = predictions["traj"].clone().half().requires_grad_(True)
    total, _ = masked_loss({"hog": predictions["hog"], "traj": traj}, targets, mask)
    assert total.dtype == torch.float32
    total.backward()
    assert torch.all(traj.grad[0, 1] == 0) and torch.all(traj.grad[0, 0] != 0)


def test_batch_rows_are_averaged_over_all_masked_tokens():
    mask = torch.tensor([[True, False], [False, True]])
    predictions = {"pixel": torch.tensor([[[2.0]], [[0.0]]])}
    targets = {"pixel": (torch.zeros(2, 2, 1), None)}
    total, terms = masked_loss(predictions, targets, mask)
    torch.testing.assert_close(terms["pixel"], torch.tensor(2.0))  # (4 + 0) / 2
    torch.testing.assert_close(total, torch.tensor(2.0))


def test_inconsistent_inputs_are_rejected():
    predictions, targets, mask = tiny_example()
    with pytest.raises(ValueError, match="same number"):
        masked_loss(predictions, targets, torch.zeros(1, 4, dtype=torch.bool))
    two_rows = {"pixel": torch.zeros(2, 1, 1)}
    with pytest.raises(ValueError, match="same number"):
        masked_loss(
            two_rows, {"pixel": (torch.zeros(2, 2, 1), None)}, torch.tensor([[True, False], [True, True]])
        )
    with pytest.raises(ValueError, match="name different targets"):
        masked_loss({"hog": predictions["hog"]}, targets, mask)
    predictions["hog"] = predictions["hog"][..., :1]
    with pytest.raises(ValueError, match="'hog': predictions"):
        masked_loss(predictions, targets, mask)
