"""The ViT building blocks against explicit computations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from model_helpers import explicit_attention, reference_block, sinusoid_table

from mme.models.layers import Attention, Block, DropPath, PatchEmbed, sincos_table


def test_sincos_table_matches_the_original_formula_bit_for_bit():
    for tokens, dim in [(8, 192), (37, 64), (1568, 96)]:
        table = sincos_table(tokens, dim)
        assert table.shape == (1, tokens, dim) and table.dtype == torch.float32
        assert torch.equal(table, sinusoid_table(tokens, dim))
    # interleaved sin/cos: position 0 is (0, 1, 0, 1, ...)
    assert torch.equal(sincos_table(1, 6)[0, 0], torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0]))


def test_sdpa_attention_equals_explicit_softmax_attention():
    torch.manual_seed(0)
    attn = Attention(48, num_heads=4, qkv_bias=True)
    with torch.no_grad():
        attn.q_bias.normal_()
        attn.v_bias.normal_()
    x = torch.randn(3, 11, 48)
    state = {k: v.detach() for k, v in attn.state_dict().items()}
    expected = explicit_attention(x, state, "", heads=4)
    assert (attn(x) - expected).abs().max() <= 1e-5


def test_key_bias_is_zero_and_biases_are_optional():
    attn = Attention(16, num_heads=2, qkv_bias=True)
    with torch.no_grad():
        attn.q_bias.fill_(1.0)
        attn.v_bias.fill_(2.0)
    bias = attn.qkv_bias()
    assert torch.equal(bias, torch.cat([torch.ones(16), torch.zeros(16), 2 * torch.ones(16)]))
    plain = Attention(16, num_heads=2, qkv_bias=False)
    assert plain.qkv_bias() is None
    assert set(plain.state_dict()) == {"qkv.weight", "proj.weight", "proj.bias"}
    assert plain.qkv.bias is None


@pytest.mark.parametrize("init_values", [0.0, 0.3])
def test_block_equals_reference_with_and_without_layer_scale(init_values):
    torch.manual_seed(1)
    block = Block(48, num_heads=3, init_values=init_values).eval()
    with torch.no_grad():
        for name, param in block.named_parameters():
            if "bias" in name:
                param.normal_(std=0.1)
    state = {k: v.detach() for k, v in block.state_dict().items()}
    assert ("gamma_1" in state) == (init_values > 0)
    x = torch.randn(2, 9, 48)
    assert (block(x) - reference_block(x, state, "", heads=3)).abs().max() <= 1e-5


def test_patch_embed_token_order_is_time_row_column():
    embed = PatchEmbed(in_chans=3, embed_dim=1, tubelet_size=2, patch_size=16)
    with torch.no_grad():
        embed.proj.weight.fill_(1.0 / (3 * 2 * 16 * 16))
        embed.proj.bias.zero_()
    clip = torch.zeros(1, 3, 4, 32, 48)  # grid (2, 2, 3)
    for k in range(2):
        for i in range(2):
            for j in range(3):
                clip[0, :, 2 * k : 2 * k + 2, 16 * i : 16 * i + 16, 16 * j : 16 * j + 16] = (
                    k * 2 + i
                ) * 3 + j
    tokens = embed(clip)
    assert tokens.shape == (1, 12, 1)
    assert torch.allclose(tokens[0, :, 0], torch.arange(12, dtype=torch.float32), atol=1e-3)


def test_patch_embed_equals_the_strided_conv3d():
    torch.manual_seed(0)
    embed = PatchEmbed(in_chans=3, embed_dim=24, tubelet_size=2, patch_size=16)
    clip = torch.randn(2, 3, 6, 48, 32)
    expected = (
        F.conv3d(clip, embed.proj.weight, embed.proj.bias, stride=(2, 16, 16)).flatten(2).transpose(1, 2)
    )
    assert torch.allclose(embed(clip), expected, atol=1e-5)


@pytest.mark.parametrize(
    ("shape", "fragments"),
    [
        ((2, 3, 5, 32, 32), ["tubelet size 2", "got 5 frames"]),
        ((2, 3, 4, 30, 32), ["patch size 16", "30x32"]),
        ((2, 4, 4, 32, 32), ["expected 3 channels", "got 4"]),
        ((3, 4, 32, 32), ["(B, 3, T, H, W)", "(3, 4, 32, 32)"]),
    ],
)
def test_patch_embed_rejects_bad_shapes_with_expected_and_given(shape, fragments):
    embed = PatchEmbed(in_chans=3, embed_dim=8, tubelet_size=2, patch_size=16)
    with pytest.raises(ValueError) as info:
        embed(torch.zeros(shape))
    for fragment in fragments:
        assert fragment in str(info.value)


def test_drop_path_drops_whole_samples_and_keeps_the_mean():
    torch.manual_seed(0)
    drop = DropPath(0.25)
    x = torch.ones(4000, 3, 5)
    out = drop(x)
    per_sample = out.flatten(1)
    assert set(per_sample.unique().tolist()) <= {0.0, torch.tensor(1.0 / 0.75).item()}
    assert torch.all(per_sample.min(dim=1).values == per_sample.max(dim=1).values)
    assert abs(out.mean().item() - 1.0) < 0.05
    assert torch.equal(drop.eval()(x), x)
    with pytest.raises(ValueError, match=r"got 1\.0"):
        DropPath(1.0)
