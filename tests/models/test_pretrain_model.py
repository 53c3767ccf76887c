"""The MME pre-training model: one prediction per masked token per head, in ascending order; gradients."""

from __future__ import annotations

import pytest
import torch
from model_helpers import random_clip, random_mask, tiny_pretrain, tube_mask

from mme.models import HeadConfig, MMEPretrainModel, create_model, get_config
from mme.objectives import head_specs

GRID = (2, 2, 2)


@pytest.mark.parametrize("kind", ["tube", "random"])
def test_one_prediction_per_masked_token_per_head(kind):
    heads = head_specs(["hog", "traj", "pixel"], activations={"hog": "sigmoid", "traj": "tanh"})
    model = tiny_pretrain(heads=heads).eval()
    clip = random_clip(batch=3, frames=8, size=48)  # grid (4, 3, 3): 36 tokens
    mask = tube_mask(3, (4, 3, 3), masked_per_frame=6) if kind == "tube" else random_mask(3, 36, 24)
    out = model(clip, mask)
    assert list(out) == ["hog", "traj", "pixel"]
    assert (
        out["hog"].shape == (3, 24, 108)
        and out["traj"].shape == (3, 24, 32)
        and out["pixel"].shape == (3, 24, 1536)
    )
    assert ((out["hog"] > 0) & (out["hog"] < 1)).all()  # sigmoid, as asked
    assert (out["traj"].abs() < 1).all()  # tanh, as asked


def test_default_heads_can_output_every_target_value():
    # HOG of a normalised clip exceeds 1 and standardised trajectories exceed +-1 (docs/models.md):
    # the default heads are unbounded; the released sigmoid/tanh are one `model.heads` item away.
    assert [(h.name, h.activation) for h in create_model("mme_vit_tiny_patch16_224").config.heads] == [
        ("hog", "identity"),
        ("traj", "identity"),
    ]


def test_predictions_follow_ascending_token_order():
    """Make the decoder output depend on the position only: its prediction for masked token n must be
    head(LayerNorm(table[n])), in the order of x[mask]."""
    model = tiny_pretrain(
        heads=[HeadConfig("probe", 96, "identity")], decoder_embed_dim=96, num_frames=8, img_size=48
    ).eval()
    with torch.no_grad():
        model.mask_token.zero_()
        for block in model.decoder.blocks:  # blocks become the identity (both residual branches zero)
            block.attn.proj.weight.zero_()
            block.attn.proj.bias.zero_()
            block.mlp.fc2.weight.zero_()
            block.mlp.fc2.bias.zero_()
    clip = random_clip(batch=2, frames=8, size=48)
    mask = random_mask(2, 36, 20, seed=3)
    out = model(clip, mask)["probe"]
    table = model.decoder_pos_embed.expand(2, -1, -1)
    expected = model.heads["probe"](model.decoder.norm(table[mask].view(2, 20, 96)))
    assert torch.allclose(out, expected, atol=1e-5)
    # and a different masked set changes exactly which positions come out
    other = model(clip, mask.flip(1))["probe"]
    assert not torch.allclose(other, out, atol=1e-3)


def test_encoder_sees_visible_tokens_only():
    model = tiny_pretrain().eval()
    clip = random_clip(batch=2)
    mask = tube_mask(2, GRID, masked_per_frame=3)
    visible = model.forward_encoder(clip, mask)
    assert visible.shape == (2, 2, 192)
    changed = clip.clone()
    # changing pixels of masked tokens only must not change the encoder output
    token_pixels = changed[:, :, 0:2, 0:16, 0:16]  # token 0 (k=0, i=0, j=0)
    hidden0 = mask[:, 0]
    token_pixels[hidden0] += 5.0
    assert torch.allclose(model.forward_encoder(changed, mask)[hidden0], visible[hidden0], atol=1e-6)


def test_gradients_reach_every_trainable_parameter():
    torch.manual_seed(0)
    model = tiny_pretrain().train()
    clip = random_clip(batch=2)
    mask = tube_mask(2, GRID, masked_per_frame=2)
    out = model(clip, mask)
    loss = sum(pred.square().mean() for pred in out.values())
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    ("mask", "fragment"),
    [
        (torch.zeros(2, 8, dtype=torch.int64), "bool"),
        (torch.zeros(2, 9, dtype=torch.bool), "(2, 8)"),
        (torch.tensor([[True] * 3 + [False] * 5, [True] * 4 + [False] * 4]), "between 3 and 4"),
        (torch.zeros(2, 8, dtype=torch.bool), "hides 0"),
        (torch.ones(2, 8, dtype=torch.bool), "hides 8"),
    ],
)
def test_mask_is_validated(mask, fragment):
    model = tiny_pretrain()
    with pytest.raises(ValueError) as info:
        model(random_clip(batch=2), mask)
    assert fragment in str(info.value)


def test_registry_defaults_are_the_released_recipe():
    cfg = get_config("mme_vit_base_patch16_224")
    assert (cfg.encoder.embed_dim, cfg.encoder.depth, cfg.encoder.num_heads) == (768, 12, 12)
    assert (
        cfg.encoder.num_frames,
        cfg.encoder.img_size,
        cfg.encoder.patch_size,
        cfg.encoder.tubelet_size,
    ) == (
        16,
        224,
        16,
        2,
    )
    assert cfg.encoder.num_patches == 1568
    assert (cfg.decoder_embed_dim, cfg.decoder_depth, cfg.decoder_num_heads) == (192, 1, 6)
    assert [(h.name, h.dim, h.activation) for h in cfg.heads] == [
        ("hog", 108, "identity"),  # released: sigmoid (docs/models.md, head activations)
        ("traj", 32, "identity"),  # released: tanh
    ]
    model = create_model("mme_vit_tiny_patch16_224", depth=3)
    assert isinstance(model, MMEPretrainModel)
    assert model.heads["hog"].hidden[0].out_features == 512
    assert model.no_weight_decay() == {"mask_token"}
    assert model.num_layers == 3
    assert model.layer_id("encoder.blocks.2.mlp.fc1.weight") == 3
    assert model.layer_id("heads.traj.out.weight") == 4


def test_videomae_single_linear_head():
    model = tiny_pretrain(heads=head_specs(["pixel"]), head_hidden_dim=0)
    assert isinstance(model.heads["pixel"].hidden, torch.nn.Identity)
    out = model(random_clip(batch=1), tube_mask(1, GRID, 2))
    assert out["pixel"].shape == (1, 4, 1536)
