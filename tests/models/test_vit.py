"""The classifier: shapes, pooling, head init, input checks, other clip sizes, checkpointing, layer ids."""

from __future__ import annotations

import pytest
import torch
from model_helpers import FRAMES, SIZE, random_clip, reference_classifier, tiny_classifier

from mme.models import VideoClassifier, layer_id


def test_classifier_equals_the_reference_network():
    torch.manual_seed(0)
    model = tiny_classifier().eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("bias", "head.weight")):
                param.normal_(std=0.2)
    state = {k: v.detach() for k, v in model.state_dict().items()}
    clip = random_clip()
    expected = reference_classifier(state, clip, heads=3)
    assert (model(clip) - expected).abs().max() <= 1e-4


def test_logits_features_and_identity_head():
    model = tiny_classifier(num_classes=7).eval()
    clip = random_clip(batch=3)
    features = model.forward_features(clip)
    assert features.shape == (3, 192)
    assert model(clip).shape == (3, 7)
    # fc_norm output: zero mean and unit variance per sample (affine init 1/0)
    assert torch.allclose(features.mean(dim=1), torch.zeros(3), atol=1e-5)
    features_only = tiny_classifier(num_classes=0).eval()
    features_only.load_state_dict(model.state_dict(), strict=False)
    assert torch.equal(features_only(clip), features_only.forward_features(clip))
    assert features_only(clip).shape == (3, 192)


def test_head_is_scaled_by_init_scale():
    torch.manual_seed(0)
    big = tiny_classifier(num_classes=100, init_scale=1.0)
    torch.manual_seed(0)
    small = tiny_classifier(num_classes=100)
    assert small.config.init_scale == 0.001
    assert torch.allclose(small.head.weight, big.head.weight * 0.001)
    assert 0.015 < big.head.weight.std().item() < 0.025


def test_mean_pooling_covers_all_tokens():
    model = tiny_classifier().eval()
    clip = random_clip(batch=1)
    tokens = model.forward_blocks(model.embed(clip))
    assert tokens.shape == (1, 8, 192)
    assert torch.allclose(model.forward_features(clip), model.fc_norm(tokens.mean(dim=1)))


def test_other_frame_count_and_size_rebuild_the_position_table():
    model = tiny_classifier().eval()
    assert model.pos_embed.shape == (1, 8, 192)
    assert "pos_embed" not in model.state_dict()
    longer = random_clip(batch=1, frames=8, size=48)  # 4 x 3 x 3 = 36 tokens
    logits = model(longer)
    assert logits.shape == (1, 5) and torch.isfinite(logits).all()
    rebuilt = tiny_classifier(num_frames=8, img_size=48).eval()
    rebuilt.load_state_dict(model.state_dict())
    assert rebuilt.pos_embed.shape == (1, 36, 192)
    assert torch.allclose(rebuilt(longer), logits, atol=1e-6)


@pytest.mark.parametrize(
    ("shape", "fragment"),
    [
        ((1, 3, 3, SIZE, SIZE), "got 3 frames"),
        ((1, 3, FRAMES, 40, 40), "40x40"),
        ((1, 1, FRAMES, SIZE, SIZE), "got 1"),
    ],
)
def test_bad_clip_shapes_raise_value_error(shape, fragment):
    with pytest.raises(ValueError, match=fragment):
        tiny_classifier()(torch.zeros(shape))


def test_activation_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = tiny_classifier(drop_path_rate=0.0)
    checkpointed = tiny_classifier(use_checkpoint=True)
    checkpointed.load_state_dict(plain.state_dict())
    clip = random_clip()
    for model in (plain, checkpointed):
        model.train()
        model(clip).square().sum().backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), checkpointed.named_parameters(), strict=True):
        assert torch.allclose(a.grad, b.grad, atol=1e-6, rtol=1e-4), name


def test_drop_path_rates_grow_linearly_with_depth():
    model = tiny_classifier(depth=4, drop_path_rate=0.3)
    rates = [getattr(block.drop_path, "prob", 0.0) for block in model.blocks]
    assert rates == pytest.approx([0.0, 0.1, 0.2, 0.3])


def test_layer_ids_for_layer_decay():
    model = tiny_classifier()
    ids = {name: model.layer_id(name) for name, _ in model.named_parameters()}
    assert ids["patch_embed.proj.weight"] == 0
    assert ids["blocks.0.attn.qkv.weight"] == 1
    assert ids["blocks.1.mlp.fc2.bias"] == 2
    assert ids["fc_norm.weight"] == ids["head.bias"] == model.num_layers + 1 == 3
    assert layer_id("encoder.blocks.3.norm1.weight", 12) == 4
    assert layer_id("encoder.patch_embed.proj.bias", 12) == 0
    assert layer_id("decoder.blocks.0.attn.qkv.weight", 12) == 13
    assert layer_id("encoder_to_decoder.weight", 12) == 13
    with pytest.raises(ValueError, match="block 12"):
        layer_id("blocks.12.norm1.weight", 12)
    assert model.no_weight_decay() == set()


def test_reset_head_changes_class_count():
    model = tiny_classifier(num_classes=5)
    model.reset_head(11)
    assert isinstance(model, VideoClassifier) and model.num_classes == 11
    assert model(random_clip(batch=1)).shape == (1, 11)
