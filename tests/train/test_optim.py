"""Parameter groups: every parameter in exactly one group, with the right lr scale and weight decay."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from mme.train.optim import build_adamw, param_groups, scaled_lr, skips_weight_decay


class _Block(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.fc = nn.Linear(dim, dim)


class _TinyViT(nn.Module):
    """Stand-in with the parameter names of the real encoder (patch_embed, blocks.N, fc_norm, head)."""

    num_layers = 2

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.patch_embed = nn.Conv3d(3, dim, (2, 4, 4), (2, 4, 4))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.extra_token = nn.Parameter(torch.zeros(1, 2, dim))
        self.blocks = nn.ModuleList(_Block(dim) for _ in range(self.num_layers))
        self.fc_norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 3)
        self.frozen = nn.Parameter(torch.zeros(2, 2), requires_grad=False)

    def no_weight_decay(self) -> set[str]:
        return {"extra_token"}


def _layer_id(name: str, num_layers: int) -> int:
    if name.startswith(("patch_embed", "mask_token", "extra_token")):
        return 0
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    return num_layers + 1


def test_every_trainable_parameter_in_exactly_one_group_with_expected_scales():
    model = _TinyViT()
    groups = param_groups(model, weight_decay=0.05, layer_decay=0.75, num_layers=2, layer_id=_layer_id)
    seen = [name for group in groups for name in group["param_names"]]
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert sorted(seen) == sorted(trainable)
    assert len(seen) == len(set(seen))
    assert sum(len(g["params"]) for g in groups) == len(trainable)
    by_name = {name: group for group in groups for name in group["param_names"]}
    decayed = {"patch_embed.weight", "blocks.0.qkv.weight", "blocks.0.fc.weight", "blocks.1.qkv.weight",
               "blocks.1.fc.weight", "head.weight"}  # fmt: skip
    for name, group in by_name.items():
        assert group["wd_scale"] == (1.0 if name in decayed else 0.0), name
        assert group["weight_decay"] == (0.05 if name in decayed else 0.0), name
        assert group["lr_scale"] == pytest.approx(0.75 ** (3 - _layer_id(name, 2))), name
    assert by_name["head.weight"]["lr_scale"] == 1.0
    assert by_name["patch_embed.weight"]["lr_scale"] == pytest.approx(0.75**3)
    assert by_name["blocks.1.q_bias"]["lr_scale"] == pytest.approx(0.75)


def test_without_layer_decay_two_groups():
    groups = param_groups(_TinyViT(), weight_decay=0.05)
    assert [(g["lr_scale"], g["wd_scale"]) for g in groups] == [(1.0, 0.0), (1.0, 1.0)]


def test_layer_decay_needs_layer_ids():
    with pytest.raises(ValueError, match="layer_id"):
        param_groups(_TinyViT(), weight_decay=0.05, layer_decay=0.75)


def test_skip_rules():
    assert skips_weight_decay("blocks.0.attn.proj.bias", torch.zeros(4, 4))
    assert skips_weight_decay("blocks.0.norm1.weight", torch.zeros(4))
    assert skips_weight_decay("decoder.mask_token", torch.zeros(1, 1, 4))
    assert skips_weight_decay("encoder.rel_pos", torch.zeros(3, 4), {"rel_pos"})
    assert not skips_weight_decay("encoder.rel_pos_x", torch.zeros(3, 4), {"rel_pos"})
    assert not skips_weight_decay("head.weight", torch.zeros(3, 4))


def test_adamw_gets_scaled_lr_and_decoupled_decay():
    model = _TinyViT()
    groups = param_groups(model, weight_decay=0.5, layer_decay=0.5, num_layers=2, layer_id=_layer_id)
    lr = scaled_lr(1e-3, global_batch=512)
    assert lr == pytest.approx(2e-3)
    optimizer = build_adamw(groups, lr=lr, betas=(0.9, 0.95))
    lrs = sorted({g["lr"] for g in optimizer.param_groups})
    assert lrs == pytest.approx([2e-3 * 0.5**k for k in (3, 2, 1, 0)])
    # one step with zero gradients: only weight decay moves the decayed weights (by lr * wd * w)
    with torch.no_grad():
        model.head.weight.fill_(1.0)
        model.fc_norm.weight.fill_(1.0)
    for p in model.parameters():
        p.grad = torch.zeros_like(p) if p.requires_grad else None
    optimizer.step()
    assert torch.allclose(model.head.weight, torch.full_like(model.head.weight, 1 - 2e-3 * 0.5))
    assert torch.equal(model.fc_norm.weight, torch.ones_like(model.fc_norm.weight))


def test_real_classifier_groups_follow_the_models_layer_ids():
    from mme.models import create_model, layer_id

    model = create_model("vit_tiny_patch16_224", num_classes=5, depth=3, num_frames=4, img_size=32)
    groups = param_groups(
        model, weight_decay=0.05, layer_decay=0.75, num_layers=model.num_layers, layer_id=layer_id
    )
    names = [n for g in groups for n in g["param_names"]]
    assert sorted(names) == sorted(n for n, _ in model.named_parameters()) and len(names) == len(set(names))
    by_name = {name: group for group in groups for name in group["param_names"]}
    assert by_name["patch_embed.proj.weight"]["lr_scale"] == pytest.approx(0.75**4)
    assert by_name["blocks.0.attn.qkv.weight"]["lr_scale"] == pytest.approx(0.75**3)
    assert by_name["blocks.2.mlp.fc1.weight"]["lr_scale"] == pytest.approx(0.75)
    assert by_name["head.weight"]["lr_scale"] == 1.0
    for name in ("blocks.1.attn.q_bias", "blocks.1.attn.v_bias", "blocks.1.norm1.weight", "fc_norm.bias"):
        assert by_name[name]["wd_scale"] == 0.0, name
    for name in ("blocks.1.attn.qkv.weight", "blocks.1.attn.proj.weight", "head.weight"):
        assert by_name[name]["wd_scale"] == 1.0, name


def test_real_pretrain_model_does_not_decay_its_mask_token():
    from mme.models import create_model

    model = create_model("mme_vit_tiny_patch16_224", depth=2, num_frames=4, img_size=32)
    groups = param_groups(model, weight_decay=0.05)
    no_decay = {n for g in groups if g["wd_scale"] == 0.0 for n in g["param_names"]}
    assert "mask_token" in no_decay
    assert "encoder_to_decoder.weight" not in no_decay


def test_fused_adamw_updates_like_the_per_parameter_loop():
    """The trainer uses the fused kernel; it must follow the same AdamW maths as PyTorch's loop.

    Both optimisers get the same gradients each step (from the loop's model), so any difference is
    the optimiser's own arithmetic, not Adam amplifying a rounding difference in a tiny gradient.
    """
    from mme.models import create_model

    torch.manual_seed(0)
    loop_model = create_model("vit_tiny_patch16_224", num_classes=3, depth=2, num_frames=4, img_size=32)
    fused_model = copy.deepcopy(loop_model)
    start = {name: p.detach().clone() for name, p in loop_model.named_parameters()}
    loop_opt, fused_opt = (
        build_adamw(param_groups(model, weight_decay=0.05), lr=1e-2, betas=(0.9, 0.95), fused=fused)
        for model, fused in ((loop_model, None), (fused_model, True))
    )
    for clip in torch.randn(3, 2, 3, 4, 32, 32):
        loop_opt.zero_grad()
        loop_model(clip).square().mean().backward()
        for source, target in zip(loop_model.parameters(), fused_model.parameters(), strict=True):
            target.grad = source.grad.clone()
        loop_opt.step()
        fused_opt.step()
    fused = dict(fused_model.named_parameters())
    for name, param in loop_model.named_parameters():
        assert (param - start[name]).abs().max() > 1e-5, name  # every parameter moved
        assert torch.allclose(param, fused[name], rtol=1e-6, atol=1e-7), name
