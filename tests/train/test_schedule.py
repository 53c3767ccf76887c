"""Per-step lr / weight-decay schedules."""

from __future__ import annotations

import math

import pytest
import torch

from mme.train.trainer import CosineSchedule, apply_schedules


def test_warmup_is_linear_then_cosine_reaches_final():
    schedule = CosineSchedule(base=1.0, final=0.1, total_steps=110, warmup_steps=10, warmup_start=0.0)
    assert schedule(0) == 0.0
    assert schedule(5) == pytest.approx(0.5)
    assert schedule(10) == pytest.approx(1.0)
    # halfway through the cosine part the value is the midpoint of base and final
    assert schedule(60) == pytest.approx(0.55)
    assert schedule(109) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 99 / 100)))
    assert schedule(110) == 0.1
    assert schedule(500) == 0.1


def test_schedule_without_warmup_starts_at_base_and_may_rise():
    # the weight-decay schedule may go up (start 0.05, end 0.2)
    schedule = CosineSchedule(base=0.05, final=0.2, total_steps=4)
    expected = [0.2 - 0.075 * (1 + math.cos(math.pi * s / 4)) for s in range(4)] + [0.2]
    assert [schedule(s) for s in range(5)] == pytest.approx(expected)
    assert schedule(0) == pytest.approx(0.05)
    assert schedule(2) == pytest.approx(0.125)


def test_bad_schedule_arguments():
    with pytest.raises(ValueError, match="total_steps"):
        CosineSchedule(base=1.0, final=0.0, total_steps=0)
    with pytest.raises(ValueError, match="warmup_steps"):
        CosineSchedule(base=1.0, final=0.0, total_steps=5, warmup_steps=6)


def test_apply_schedules_uses_group_scales():
    a, b = torch.nn.Parameter(torch.zeros(2, 2)), torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.AdamW(
        [{"params": [a], "lr_scale": 0.5, "wd_scale": 1.0}, {"params": [b], "lr_scale": 1.0, "wd_scale": 0.0}]
    )
    lr = CosineSchedule(base=2.0, final=0.0, total_steps=10, warmup_steps=2)
    wd = CosineSchedule(base=0.05, final=0.05, total_steps=10)
    values = apply_schedules(optimizer, 1, lr, wd)
    assert values == (pytest.approx(1.0), pytest.approx(0.05))
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5)
    assert optimizer.param_groups[1]["lr"] == pytest.approx(1.0)
    assert optimizer.param_groups[0]["weight_decay"] == pytest.approx(0.05)
    assert optimizer.param_groups[1]["weight_decay"] == 0.0
