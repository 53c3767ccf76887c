"""Test helpers: tiny models, masks, original-layout state dicts and an explicit reference forward.

The reference re-implements the VideoMAE/MME network as plain functions over a state dict with
the *original* parameter names and an explicit ``softmax(q k^T / sqrt(d)) v`` attention, so the
models under test are checked against an independent computation, not against themselves.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mme.models import create_model

FRAMES, SIZE = 4, 32  # 2 x 2 x 2 = 8 tokens: tiny and fast
TINY = {"num_frames": FRAMES, "img_size": SIZE, "depth": 2}


def tiny_classifier(**overrides):
    return create_model("vit_tiny_patch16_224", **{**TINY, "num_classes": 5, **overrides})


def tiny_pretrain(**overrides):
    return create_model("mme_vit_tiny_patch16_224", **{**TINY, **overrides})


def random_clip(batch: int = 2, frames: int = FRAMES, size: int = SIZE, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, frames, size, size, generator=torch.Generator().manual_seed(seed))


def tube_mask(batch: int, grid: tuple[int, int, int], masked_per_frame: int, seed: int = 0) -> torch.Tensor:
    """One random spatial mask per sample, repeated over the temporal positions (token order k, i, j)."""
    t, h, w = grid
    gen = torch.Generator().manual_seed(seed)
    spatial = torch.zeros(batch, h * w, dtype=torch.bool)
    for b in range(batch):
        spatial[b, torch.randperm(h * w, generator=gen)[:masked_per_frame]] = True
    return spatial.repeat(1, t)


def random_mask(batch: int, num_tokens: int, num_masked: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    mask = torch.zeros(batch, num_tokens, dtype=torch.bool)
    for b in range(batch):
        mask[b, torch.randperm(num_tokens, generator=gen)[:num_masked]] = True
    return mask


# ----------------------------------------------------------------------------- original layouts


def _block_names(prefix: str, dim: int, hidden: int, layer_scale: bool = False) -> dict[str, tuple[int, ...]]:
    names = {
        "norm1.weight": (dim,),
        "norm1.bias": (dim,),
        "attn.qkv.weight": (3 * dim, dim),
        "attn.q_bias": (dim,),
        "attn.v_bias": (dim,),
        "attn.proj.weight": (dim, dim),
        "attn.proj.bias": (dim,),
        "norm2.weight": (dim,),
        "norm2.bias": (dim,),
        "mlp.fc1.weight": (hidden, dim),
        "mlp.fc1.bias": (hidden,),
        "mlp.fc2.weight": (dim, hidden),
        "mlp.fc2.bias": (dim,),
    }
    if layer_scale:
        names.update({"gamma_1": (dim,), "gamma_2": (dim,)})
    return {prefix + key: shape for key, shape in names.items()}


def _fill(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in shapes.items():
        if name.endswith(("norm1.weight", "norm2.weight", "norm.weight")):
            state[name] = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        elif "gamma" in name:
            state[name] = 0.5 + 0.1 * torch.randn(shape, generator=gen)
        else:
            fan_in = shape[1] if len(shape) == 2 else (math.prod(shape[1:]) if len(shape) > 2 else 16)
            state[name] = torch.randn(shape, generator=gen) / math.sqrt(fan_in)
    return state


def original_finetune_state(
    dim: int = 192, depth: int = 2, classes: int = 5, layer_scale: bool = False, seed: int = 0
) -> dict[str, torch.Tensor]:
    """A fine-tuned VideoMAE/MME classifier state dict under the original names (docs/method.md §7)."""
    shapes: dict[str, tuple[int, ...]] = {
        "patch_embed.proj.weight": (dim, 3, 2, 16, 16),
        "patch_embed.proj.bias": (dim,),
    }
    for i in range(depth):
        shapes.update(_block_names(f"blocks.{i}.", dim, 4 * dim, layer_scale))
    shapes.update(
        {
            "fc_norm.weight": (dim,),
            "fc_norm.bias": (dim,),
            "head.weight": (classes, dim),
            "head.bias": (classes,),
        }
    )
    return _fill(shapes, seed)


def original_pretrain_state(
    dim: int = 192,
    depth: int = 2,
    decoder_dim: int = 96,
    decoder_depth: int = 1,
    head_dims: tuple[int, ...] = (108, 32),
    videomae: bool = False,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """An MME pre-training state dict (``--decoder_num 1``: ``decoder.0.head.i.{0,2}``), or VideoMAE's
    (``decoder.blocks``, one Linear ``decoder.head``) with ``videomae=True``."""
    shapes: dict[str, tuple[int, ...]] = {
        "encoder.patch_embed.proj.weight": (dim, 3, 2, 16, 16),
        "encoder.patch_embed.proj.bias": (dim,),
        "encoder.norm.weight": (dim,),
        "encoder.norm.bias": (dim,),
        "mask_token": (1, 1, decoder_dim),
    }
    for i in range(depth):
        shapes.update(_block_names(f"encoder.blocks.{i}.", dim, 4 * dim))
    dec = "decoder." if videomae else "decoder.0."
    shapes["encoder_to_decoder.weight" if videomae else "encoder_to_decoder.0.weight"] = (decoder_dim, dim)
    for i in range(decoder_depth):
        shapes.update(_block_names(f"{dec}blocks.{i}.", decoder_dim, 4 * decoder_dim))
    shapes.update({f"{dec}norm.weight": (decoder_dim,), f"{dec}norm.bias": (decoder_dim,)})
    if videomae:
        shapes.update(
            {"decoder.head.weight": (head_dims[0], decoder_dim), "decoder.head.bias": (head_dims[0],)}
        )
    else:
        for h, width in enumerate(head_dims):
            shapes.update(
                {
                    f"decoder.0.head.{h}.0.weight": (512, decoder_dim),
                    f"decoder.0.head.{h}.0.bias": (512,),
                    f"decoder.0.head.{h}.2.weight": (width, 512),
                    f"decoder.0.head.{h}.2.bias": (width,),
                }
            )
    return _fill(shapes, seed)


# ----------------------------------------------------------------------------- reference forward


def sinusoid_table(num_positions: int, dim: int) -> torch.Tensor:
    """The original table, written out: angle = pos / 10000^(2*(j//2)/dim); sin on even j, cos on odd j."""
    rows = []
    for pos in range(num_positions):
        row = []
        for j in range(dim):
            angle = pos / 10000 ** (2 * (j // 2) / dim)
            row.append(math.sin(angle) if j % 2 == 0 else math.cos(angle))
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float64).float()[None]


def explicit_attention(x: torch.Tensor, state: dict, prefix: str, heads: int) -> torch.Tensor:
    batch, tokens, dim = x.shape
    bias = None
    if prefix + "q_bias" in state:
        bias = torch.cat([state[prefix + "q_bias"], torch.zeros(dim), state[prefix + "v_bias"]])
    qkv = F.linear(x, state[prefix + "qkv.weight"], bias)
    q, k, v = qkv.reshape(batch, tokens, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
    scores = (q @ k.transpose(-2, -1)) * (dim // heads) ** -0.5
    out = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(batch, tokens, dim)
    return F.linear(out, state[prefix + "proj.weight"], state[prefix + "proj.bias"])


def _layer_norm(x: torch.Tensor, state: dict, prefix: str, eps: float) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], state[prefix + "weight"], state[prefix + "bias"], eps)


def reference_block(x: torch.Tensor, state: dict, prefix: str, heads: int, eps: float = 1e-6) -> torch.Tensor:
    branch = explicit_attention(_layer_norm(x, state, prefix + "norm1.", eps), state, prefix + "attn.", heads)
    x = x + state.get(prefix + "gamma_1", 1.0) * branch
    hidden = F.gelu(
        F.linear(
            _layer_norm(x, state, prefix + "norm2.", eps),
            state[prefix + "mlp.fc1.weight"],
            state[prefix + "mlp.fc1.bias"],
        )
    )
    branch = F.linear(hidden, state[prefix + "mlp.fc2.weight"], state[prefix + "mlp.fc2.bias"])
    return x + state.get(prefix + "gamma_2", 1.0) * branch


def _embed(clip: torch.Tensor, state: dict, prefix: str) -> torch.Tensor:
    weight = state[prefix + "patch_embed.proj.weight"]
    tokens = F.conv3d(clip, weight, state[prefix + "patch_embed.proj.bias"], stride=weight.shape[2:])
    tokens = tokens.flatten(2).transpose(1, 2)
    return tokens + sinusoid_table(tokens.shape[1], tokens.shape[2])


def _depth(state: dict, prefix: str) -> int:
    return len({key[len(prefix) :].split(".")[0] for key in state if key.startswith(prefix)})


def reference_classifier(
    state: dict, clip: torch.Tensor, heads: int, eps: float = 1e-6, fc_eps: float = 1e-6
):
    """Logits of a fine-tuned VideoMAE/MME classifier (original names) on ``clip``."""
    x = _embed(clip, state, "")
    for i in range(_depth(state, "blocks.")):
        x = reference_block(x, state, f"blocks.{i}.", heads, eps)
    pooled = _layer_norm(x.mean(dim=1), state, "fc_norm.", fc_eps)
    return F.linear(pooled, state["head.weight"], state["head.bias"])


def reference_pretrain(
    state: dict, clip: torch.Tensor, mask: torch.Tensor, heads: int, decoder_heads: int, activations: list
) -> list[torch.Tensor]:
    """Predictions of an original MME pre-training model (``decoder.0.*`` names) for the masked tokens."""
    x = _embed(clip, state, "encoder.")
    batch, _, dim = x.shape
    x = x[~mask].reshape(batch, -1, dim)
    for i in range(_depth(state, "encoder.blocks.")):
        x = reference_block(x, state, f"encoder.blocks.{i}.", heads)
    x = _layer_norm(x, state, "encoder.norm.", 1e-6)
    x = F.linear(x, state["encoder_to_decoder.0.weight"])
    table = sinusoid_table(mask.shape[1], x.shape[-1]).expand(batch, -1, -1)
    num_masked = int(mask[0].sum())
    full = torch.cat(
        [
            x + table[~mask].reshape(batch, -1, x.shape[-1]),
            state["mask_token"] + table[mask].reshape(batch, num_masked, x.shape[-1]),
        ],
        dim=1,
    )
    for i in range(_depth(state, "decoder.0.blocks.")):
        full = reference_block(full, state, f"decoder.0.blocks.{i}.", decoder_heads)
    out = _layer_norm(full[:, -num_masked:], state, "decoder.0.norm.", 1e-6)
    predictions = []
    for h, activation in enumerate(activations):
        hidden = F.gelu(
            F.linear(out, state[f"decoder.0.head.{h}.0.weight"], state[f"decoder.0.head.{h}.0.bias"])
        )
        predictions.append(
            activation(
                F.linear(hidden, state[f"decoder.0.head.{h}.2.weight"], state[f"decoder.0.head.{h}.2.bias"])
            )
        )
    return predictions
