"""Hugging Face VideoMAE <-> mme names and configs, without importing ``transformers`` (docs/models.md)."""

from __future__ import annotations

import re
from typing import Any

import torch

from mme.errors import CheckpointError
from mme.interop.adapters.videomae import Canonical
from mme.models.config import ClassifierConfig
from mme.utils.normalization import IMAGENET_MEAN, IMAGENET_STD

HF_FC_NORM_EPS = 1e-5
_PIL_BILINEAR = 2  # PIL.Image.Resampling.BILINEAR, how HF's image processors name the resize filter

# VideoMAEConfig defaults, for config.json files written with only the non-default values.
_HF_DEFAULTS: dict[str, Any] = {
    "image_size": 224,
    "patch_size": 16,
    "num_channels": 3,
    "num_frames": 16,
    "tubelet_size": 2,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-12,
    "qv_bias": True,
    "use_mean_pooling": True,
    "decoder_num_attention_heads": 6,
    "decoder_hidden_size": 384,
    "decoder_num_hidden_layers": 4,
    "decoder_intermediate_size": 1536,
}

# Inside one transformer layer: HF name -> mme name (q/k/v are merged separately).
_LAYER_NAMES = {
    "layernorm_before": "norm1",
    "attention.output.dense": "attn.proj",
    "layernorm_after": "norm2",
    "intermediate.dense": "mlp.fc1",
    "output.dense": "mlp.fc2",
}


def hf_value(config: dict[str, Any], key: str) -> Any:
    if key == "qv_bias" and "qv_bias" not in config and "qkv_bias" in config:
        return config["qkv_bias"]
    return config.get(key, _HF_DEFAULTS[key])


def hf_encoder_fields(config: dict[str, Any], source: str) -> dict[str, Any]:
    """mme ViT settings from an HF VideoMAE config.json."""
    if hf_value(config, "hidden_act") != "gelu":
        raise CheckpointError(
            f"{source}: hidden_act={hf_value(config, 'hidden_act')!r} is not supported "
            "(mme's MLP uses exact GELU)"
        )
    hidden = int(hf_value(config, "hidden_size"))
    return {
        "embed_dim": hidden,
        "depth": int(hf_value(config, "num_hidden_layers")),
        "num_heads": int(hf_value(config, "num_attention_heads")),
        "mlp_ratio": int(hf_value(config, "intermediate_size")) / hidden,
        "patch_size": _square(hf_value(config, "patch_size"), "patch_size", source),
        "tubelet_size": int(hf_value(config, "tubelet_size")),
        "img_size": _square(hf_value(config, "image_size"), "image_size", source),
        "num_frames": int(hf_value(config, "num_frames")),
        "in_chans": int(hf_value(config, "num_channels")),
        "qkv_bias": bool(hf_value(config, "qv_bias")),
        "norm_eps": float(hf_value(config, "layer_norm_eps")),
    }


def hf_decoder_fields(config: dict[str, Any], source: str) -> dict[str, Any]:
    """mme decoder settings of an HF VideoMAEForPreTraining config (single-Linear pixel head)."""
    hidden = int(hf_value(config, "decoder_hidden_size"))
    ratio = int(hf_value(config, "decoder_intermediate_size")) / hidden
    encoder_ratio = int(hf_value(config, "intermediate_size")) / int(hf_value(config, "hidden_size"))
    if ratio != encoder_ratio:
        raise CheckpointError(
            f"{source}: decoder MLP ratio {ratio} differs from the encoder's {encoder_ratio}; mme's decoder "
            "shares the encoder's ratio"
        )
    return {
        "decoder_embed_dim": hidden,
        "decoder_depth": int(hf_value(config, "decoder_num_hidden_layers")),
        "decoder_num_heads": int(hf_value(config, "decoder_num_attention_heads")),
        "head_hidden_dim": 0,
    }


def hf_class_names(config: dict[str, Any], source: str) -> list[str] | None:
    """Class names from ``id2label`` in label order; None without it or with HF's ``LABEL_i`` placeholders."""
    id2label = config.get("id2label")
    if not id2label:
        return None
    if not isinstance(id2label, dict):
        raise CheckpointError(f"{source}: id2label must map label ids to names, got {id2label!r}")
    try:
        labels = {int(key): value for key, value in id2label.items()}
    except ValueError as error:
        raise CheckpointError(f"{source}: id2label has a key that is not a label id ({error})") from error
    if sorted(labels) != list(range(len(labels))):
        raise CheckpointError(f"{source}: id2label's ids are {sorted(labels)}, expected 0..{len(labels) - 1}")
    names = [labels[i] for i in range(len(labels))]
    return None if names == _placeholder_labels(len(names)) else names


def _placeholder_labels(count: int) -> list[str]:
    return [f"LABEL_{i}" for i in range(count)]


def is_hf_pretraining(config: dict[str, Any]) -> bool:
    return "VideoMAEForPreTraining" in (config.get("architectures") or [])


def canonical_from_hf(state: dict[str, torch.Tensor], config: dict[str, Any], source: str) -> Canonical:
    """HF names -> mme's canonical names (``encoder.*``, ``fc_norm``, ``head``, decoder, ``heads.#0``)."""
    result = Canonical({})
    layers: dict[tuple[str, int], dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        match = re.fullmatch(r"(videomae\.encoder\.layer|decoder\.decoder_layers)\.(\d+)\.(.+)", key)
        if match:
            stack, index, rest = match.groups()
            layers.setdefault(
                ("encoder.blocks" if stack.startswith("videomae") else "decoder.blocks", int(index)), {}
            )[rest] = value
            continue
        name = _rename_outer(key)
        if name is None:
            result.dropped.append(key)
        else:
            result.state[name] = value
    for (stack, index), tensors in sorted(layers.items()):
        prefix = f"{stack}.{index}."
        result.state.update({prefix + k: v for k, v in _merge_layer(tensors, source, prefix).items()})
        used = set(_LAYER_INPUTS) | {f"{n}.{p}" for n in _LAYER_NAMES for p in ("weight", "bias")}
        result.dropped.extend(f"{key_prefix(stack)}.{index}.{k}" for k in tensors if k not in used)
    if not hf_value(config, "use_mean_pooling") and not is_hf_pretraining(config):
        raise CheckpointError(
            f"{source}: use_mean_pooling=false (first-token pooling after a final LayerNorm) is not "
            "supported; mme's classifier mean-pools all tokens"
        )
    return result


def key_prefix(stack: str) -> str:
    return "videomae.encoder.layer" if stack == "encoder.blocks" else "decoder.decoder_layers"


_LAYER_INPUTS = (
    "attention.attention.query.weight",
    "attention.attention.key.weight",
    "attention.attention.value.weight",
    "attention.attention.q_bias",
    "attention.attention.v_bias",
    "attention.attention.query.bias",
    "attention.attention.value.bias",
)


def _merge_layer(tensors: dict[str, torch.Tensor], source: str, prefix: str) -> dict[str, torch.Tensor]:
    out = {}
    parts = [tensors.get(f"attention.attention.{n}.weight") for n in ("query", "key", "value")]
    if any(p is None for p in parts):
        raise CheckpointError(
            f"{source}: layer {prefix[:-1]} lacks one of attention.attention.query/key/value.weight"
        )
    out["attn.qkv.weight"] = torch.cat(parts, dim=0)
    q_bias = tensors.get("attention.attention.q_bias", tensors.get("attention.attention.query.bias"))
    v_bias = tensors.get("attention.attention.v_bias", tensors.get("attention.attention.value.bias"))
    if q_bias is not None:
        out["attn.q_bias"] = q_bias
    if v_bias is not None:
        out["attn.v_bias"] = v_bias
    for hf_name, name in _LAYER_NAMES.items():
        for kind in ("weight", "bias"):
            if f"{hf_name}.{kind}" in tensors:
                out[f"{name}.{kind}"] = tensors[f"{hf_name}.{kind}"]
    return out


def _rename_outer(key: str) -> str | None:
    fixed = {
        "videomae.embeddings.patch_embeddings.projection.weight": "encoder.patch_embed.proj.weight",
        "videomae.embeddings.patch_embeddings.projection.bias": "encoder.patch_embed.proj.bias",
        "videomae.layernorm.weight": "encoder.norm.weight",
        "videomae.layernorm.bias": "encoder.norm.bias",
        "fc_norm.weight": "fc_norm.weight",
        "fc_norm.bias": "fc_norm.bias",
        "classifier.weight": "head.weight",
        "classifier.bias": "head.bias",
        "encoder_to_decoder.weight": "encoder_to_decoder.weight",
        "mask_token": "mask_token",
        "decoder.norm.weight": "decoder.norm.weight",
        "decoder.norm.bias": "decoder.norm.bias",
        "decoder.head.weight": "heads.#0.out.weight",
        "decoder.head.bias": "heads.#0.out.bias",
    }
    return fixed.get(key)


def _square(value: Any, name: str, source: str) -> int:
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or value[0] != value[1]:
            raise CheckpointError(f"{source}: {name}={value} is not square; mme's models take square sizes")
        value = value[0]
    return int(value)


def classifier_to_hf(
    state: dict[str, torch.Tensor], config: ClassifierConfig, class_names: list[str] | None = None
) -> tuple[dict[str, torch.Tensor], dict]:
    """An mme classifier as an HF VideoMAEForVideoClassification state dict and config.

    Layer scale is folded exactly into the Linear it scales: ``gamma * (W x + b) = (gamma W) x + gamma b``.
    """
    out: dict[str, torch.Tensor] = {
        "videomae.embeddings.patch_embeddings.projection.weight": state["patch_embed.proj.weight"],
        "videomae.embeddings.patch_embeddings.projection.bias": state["patch_embed.proj.bias"],
    }
    dim = config.embed_dim
    for i in range(config.depth):
        src, dst = f"blocks.{i}.", f"videomae.encoder.layer.{i}."
        q, k, v = state[src + "attn.qkv.weight"].split(dim, dim=0)
        out[dst + "attention.attention.query.weight"] = q
        out[dst + "attention.attention.key.weight"] = k
        out[dst + "attention.attention.value.weight"] = v
        if config.qkv_bias:
            out[dst + "attention.attention.q_bias"] = state[src + "attn.q_bias"]
            out[dst + "attention.attention.v_bias"] = state[src + "attn.v_bias"]
        for hf_name, name in _LAYER_NAMES.items():
            weight, bias = state[f"{src}{name}.weight"], state[f"{src}{name}.bias"]
            gamma = {"attn.proj": "gamma_1", "mlp.fc2": "gamma_2"}.get(name)
            if gamma is not None and src + gamma in state:
                scale = state[src + gamma]
                weight, bias = weight * scale[:, None], bias * scale
            out[f"{dst}{hf_name}.weight"] = weight
            out[f"{dst}{hf_name}.bias"] = bias
    out["fc_norm.weight"] = state["fc_norm.weight"]
    out["fc_norm.bias"] = state["fc_norm.bias"]
    if config.num_classes > 0:
        out["classifier.weight"] = state["head.weight"]
        out["classifier.bias"] = state["head.bias"]
    out = {key: value.detach().contiguous().clone() for key, value in out.items()}
    names = class_names if class_names is not None else _placeholder_labels(config.num_classes)
    labels = {str(i): name for i, name in enumerate(names)}
    hf_config = {
        "architectures": ["VideoMAEForVideoClassification"],
        "model_type": "videomae",
        "image_size": config.img_size,
        "patch_size": config.patch_size,
        "num_channels": config.in_chans,
        "num_frames": config.num_frames,
        "tubelet_size": config.tubelet_size,
        "hidden_size": dim,
        "num_hidden_layers": config.depth,
        "num_attention_heads": config.num_heads,
        "intermediate_size": int(dim * config.mlp_ratio),
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "initializer_range": 0.02,
        "layer_norm_eps": config.norm_eps,
        "qv_bias": config.qkv_bias,
        "use_mean_pooling": True,
        "id2label": labels,
        "label2id": {name: int(i) for i, name in labels.items()},
        "torch_dtype": "float32",
        "mme_fc_norm_eps": config.fc_norm_eps,
    }
    return out, hf_config


def hf_preprocessor_config(config: ClassifierConfig) -> dict[str, Any]:
    """``preprocessor_config.json`` describing mme's evaluation input (short side, centre crop, ImageNet)."""
    side = config.img_size
    return {
        "image_processor_type": "VideoMAEImageProcessor",
        "do_resize": True,
        "size": {"shortest_edge": side},
        "resample": _PIL_BILINEAR,
        "do_center_crop": True,
        "crop_size": {"height": side, "width": side},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": list(IMAGENET_MEAN),
        "image_std": list(IMAGENET_STD),
        "num_frames": config.num_frames,
    }
