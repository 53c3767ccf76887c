"""The optimiser update: accumulation equals a big batch, mixed precision paths, divergence check."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mme.errors import ConfigError
from mme.train.optim import build_adamw, param_groups
from mme.train.trainer import CosineSchedule, NonFiniteLossError, Precision, Updater, check_finite


def _setup(
    update_freq: int, precision: str = "fp32", clip_grad: float | None = None, fused: bool | None = None
):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.GELU(), nn.Linear(8, 3))
    optimizer = build_adamw(param_groups(model, weight_decay=0.05), lr=1e-2, betas=(0.9, 0.95), fused=fused)
    schedule = CosineSchedule(base=1e-2, final=1e-3, total_steps=10, warmup_steps=2)
    weight_decay = CosineSchedule(base=0.05, final=0.1, total_steps=10)
    updater = Updater(model, optimizer, Precision(precision, torch.device("cpu")), schedule, weight_decay,
                      update_freq=update_freq, clip_grad=clip_grad)  # fmt: skip
    return model, updater


def _loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, precision: Precision) -> torch.Tensor:
    with precision.autocast():
        out = model(x)
    return nn.functional.cross_entropy(out.float(), y)


@pytest.mark.parametrize("fused", [None, True], ids=["loop", "fused"])  # the trainer uses fused
def test_two_accumulated_halves_equal_one_full_batch(fused):
    generator = torch.Generator().manual_seed(1)
    batches = [(torch.randn(8, 6, generator=generator), torch.randint(0, 3, (8,), generator=generator))
               for _ in range(3)]  # fmt: skip
    full, full_updater = _setup(update_freq=1, clip_grad=1.0, fused=fused)
    half, half_updater = _setup(update_freq=2, clip_grad=1.0, fused=fused)
    for x, y in batches:
        assert full_updater.backward(_loss(full, x, y, full_updater.precision))
        for part in (slice(0, 4), slice(4, 8)):
            with half_updater.accumulate():
                stepped = half_updater.backward(_loss(half, x[part], y[part], half_updater.precision))
        assert stepped
    assert full_updater.step == half_updater.step == 3
    for a, b in zip(full.parameters(), half.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    # the schedules moved with the step: warmup done after 2 steps, cosine decaying at step 3
    assert half_updater.lr == pytest.approx(CosineSchedule(1e-2, 1e-3, 10, 2)(3))
    assert half_updater.optimizer.param_groups[-1]["weight_decay"] == pytest.approx(half_updater.weight_decay)


def test_set_step_resumes_the_schedules():
    _, updater = _setup(update_freq=1)
    updater.set_step(5)
    assert updater.lr == pytest.approx(CosineSchedule(1e-2, 1e-3, 10, 2)(5))
    assert {g["lr"] for g in updater.optimizer.param_groups} == {updater.lr}


@pytest.mark.parametrize("fused", [None, True], ids=["loop", "fused"])
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_steps_reduce_the_loss(precision, fused):
    # with clipping: fp16's GradScaler unscales before the clip, then steps the fused kernel
    model, updater = _setup(update_freq=1, precision=precision, clip_grad=1.0, fused=fused)
    assert (updater.precision.scaler is not None) == (precision == "fp16")
    x, y = torch.randn(16, 6, generator=torch.Generator().manual_seed(2)), torch.arange(16) % 3
    with updater.precision.autocast():
        assert model(x).dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    first = float(_loss(model, x, y, updater.precision).detach())
    for _ in range(10):
        updater.backward(_loss(model, x, y, updater.precision))
    assert float(_loss(model, x, y, updater.precision).detach()) < first
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_unknown_precision():
    with pytest.raises(ConfigError, match="fp8"):
        Precision("fp8", torch.device("cpu"))


def test_check_finite_names_the_terms():
    terms = {"hog": torch.tensor(0.5), "traj": torch.tensor(float("inf"))}
    assert check_finite(torch.tensor(1.5), {"hog": torch.tensor(0.5)}, 3, 0) == (1.5, {"hog": 0.5})
    with pytest.raises(
        NonFiniteLossError, match=r"loss is inf in step 8 \(epoch 2\); terms: hog=0\.5, traj=inf"
    ):
        check_finite(torch.tensor(float("inf")), terms, 7, 2)
