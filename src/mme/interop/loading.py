"""Load a classifier or pre-training model from any supported layout, with a LoadReport."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import torch
from torch import nn

from mme.errors import CheckpointError, ConfigError
from mme.interop.adapters.hf import (
    HF_FC_NORM_EPS,
    canonical_from_hf,
    hf_class_names,
    hf_decoder_fields,
    hf_encoder_fields,
    is_hf_pretraining,
)
from mme.interop.adapters.videomae import (
    Canonical,
    block_count,
    canonical_from_original,
    heads_to_mme_layout,
    infer_encoder_fields,
    name_heads,
)
from mme.interop.reading import RawCheckpoint, read_checkpoint
from mme.interop.report import LoadReport, group_names
from mme.models.config import (
    ClassifierConfig,
    MMEPretrainConfig,
    ModelConfig,
    ViTConfig,
    apply_overrides,
    config_to_dict,
    parse_heads,
)
from mme.models.pretrain import MMEPretrainModel
from mme.models.registry import decoder_heads_for_width
from mme.models.saving import config_from_payload
from mme.models.vit import VideoClassifier
from mme.utils.logging import get_logger


def load_classifier(
    path: str | os.PathLike[str],
    num_classes: int | None = None,
    *,
    trust_pickle: bool = False,
    **overrides: Any,
) -> VideoClassifier:
    """A :class:`VideoClassifier` from any supported checkpoint; logs the load report."""
    model, report = load_classifier_with_report(path, num_classes, trust_pickle=trust_pickle, **overrides)
    get_logger("mme.interop").info(report.summary())
    return model


def load_classifier_with_report(
    path: str | os.PathLike[str],
    num_classes: int | None = None,
    *,
    trust_pickle: bool = False,
    **overrides: Any,
) -> tuple[VideoClassifier, LoadReport]:
    """A classifier (checkpoint's head if ``num_classes`` is None, else a new one) and its LoadReport."""
    raw = read_checkpoint(path, trust_pickle=trust_pickle)
    source = str(raw.source)
    canon, base = _canonical(raw)
    notes = list(canon.notes)

    fields = _encoder_fields(raw, canon, base, overrides, notes)
    if isinstance(base, ClassifierConfig):
        fields.update(
            num_classes=base.num_classes,
            head_drop_rate=base.head_drop_rate,
            init_scale=base.init_scale,
            fc_norm_eps=base.fc_norm_eps,
        )
    if raw.layout == "hf":
        fields["fc_norm_eps"] = float(raw.hf_config.get("mme_fc_norm_eps", HF_FC_NORM_EPS))

    head = canon.state.get("head.weight")
    checkpoint_classes = None if head is None else int(head.shape[0])
    if num_classes is None:
        if checkpoint_classes is not None:
            num_classes = checkpoint_classes
        elif isinstance(base, ClassifierConfig):
            num_classes = base.num_classes
        else:
            num_classes = 0
            notes.append(
                "the checkpoint has no classification head: num_classes=0 (the model returns pooled "
                "features); pass num_classes=N for a new head"
            )
    fields["num_classes"] = num_classes
    config = apply_overrides(ClassifierConfig(**fields), overrides)

    state: dict[str, torch.Tensor] = {}
    dropped = list(canon.dropped)
    for key, value in canon.state.items():
        if key.startswith("encoder.") and not key.startswith("encoder.norm."):
            state[key.removeprefix("encoder.")] = value
        elif key.startswith(("fc_norm.", "head.")):
            state[key] = value
        else:
            dropped.append(key)
    if any(key.startswith("encoder.norm.") for key in canon.state):
        notes.append(
            "the pre-training encoder's final norm is not used: the classifier normalises after pooling"
        )
    if checkpoint_classes is not None and checkpoint_classes != config.num_classes:
        for key in ("head.weight", "head.bias"):
            if key in state:
                dropped.append(key)
                del state[key]
        notes.append(
            f"new classification head: {config.num_classes} classes "
            f"(the checkpoint's head has {checkpoint_classes})"
        )
    elif checkpoint_classes is None and config.num_classes > 0:
        notes.append(f"new classification head: {config.num_classes} classes (the checkpoint has none)")

    model = VideoClassifier(config)
    if isinstance(base, ClassifierConfig):
        model.model_name = (raw.mme_config or {}).get("name")
    names = _class_names(raw)
    if names is not None and checkpoint_classes == config.num_classes:
        try:
            model.class_names = names
        except ConfigError as error:
            raise CheckpointError(f"{source}: {error}") from error
    elif names is not None:
        notes.append("the checkpoint's class names are dropped with its head")
    report = LoadReport(
        source, raw.layout, "classifier", notes=notes, dropped=dropped, config=config_to_dict(config)
    )
    _assign(model, state, report, required=("patch_embed.", "blocks."))
    return model, report


def load_pretrain_model(
    path: str | os.PathLike[str], *, trust_pickle: bool = False, **overrides: Any
) -> MMEPretrainModel:
    """An :class:`MMEPretrainModel` for continued pre-training; logs the load report."""
    model, report = load_pretrain_model_with_report(path, trust_pickle=trust_pickle, **overrides)
    get_logger("mme.interop").info(report.summary())
    return model


def load_pretrain_model_with_report(
    path: str | os.PathLike[str], *, trust_pickle: bool = False, **overrides: Any
) -> tuple[MMEPretrainModel, LoadReport]:
    """A pre-training model from any layout (heads by target name) and its :class:`LoadReport`."""
    raw = read_checkpoint(path, trust_pickle=trust_pickle)
    source = str(raw.source)
    canon, base = _canonical(raw)
    notes = list(canon.notes)
    if canon.extra_decoders:
        raise CheckpointError(
            f"{source}: this checkpoint has several decoders (original --decoder_num > 1: "
            f"{group_names(canon.extra_decoders)}); mme's pre-training model has one shared decoder. "
            "Load it with load_classifier to use its encoder."
        )
    wanted = parse_heads(overrides["heads"]) if "heads" in overrides else None
    state, found_heads, head_notes = name_heads(canon.state, wanted, source)
    notes.extend(head_notes)
    if raw.layout in ("original", "deepspeed"):
        # The original code flattens some targets in another order than ours (docs/models.md).
        state, layout_notes = heads_to_mme_layout(state, found_heads, source)
        notes.extend(layout_notes)

    if isinstance(base, MMEPretrainConfig):
        config = apply_overrides(base, overrides)
    else:
        encoder = _encoder_fields(raw, canon, base, overrides, notes)
        decoder = _decoder_fields(raw, state, encoder, notes, source)
        if found_heads and (wanted is None or [h.name for h in wanted] == [h.name for h in found_heads]):
            decoder["heads"] = found_heads  # with the activations the checkpoint was trained with
            overrides = {key: value for key, value in overrides.items() if key != "heads"}
        elif wanted is not None:
            # The checkpoint's head width says nothing about newly requested heads.
            decoder.pop("head_hidden_dim", None)
        config = apply_overrides(MMEPretrainConfig(encoder=ViTConfig(**encoder), **decoder), overrides)

    dropped = list(canon.dropped)
    kept = {}
    for key, value in state.items():
        if key.startswith(("fc_norm.", "head.")):
            dropped.append(key)
        else:
            kept[key] = value
    model = MMEPretrainModel(config)
    if isinstance(base, MMEPretrainConfig):
        model.model_name = (raw.mme_config or {}).get("name")
    report = LoadReport(
        source, raw.layout, "pretrain", notes=notes, dropped=dropped, config=config_to_dict(config)
    )
    _assign(model, kept, report, required=("encoder.patch_embed.", "encoder.blocks."))
    return model, report


def _class_names(raw: RawCheckpoint) -> list[str] | None:
    """The class names a checkpoint stores: ours beside the config, or HF's ``id2label``."""
    if raw.layout == "hf":
        return hf_class_names(raw.hf_config or {}, str(raw.source))
    return (raw.mme_config or {}).get("class_names")


def _canonical(raw: RawCheckpoint) -> tuple[Canonical, ModelConfig | None]:
    source = str(raw.source)
    if raw.layout == "hf":
        return canonical_from_hf(raw.state, raw.hf_config or {}, source), None
    canon = canonical_from_original(raw.state, source)
    base = config_from_payload(raw.mme_config, source) if raw.mme_config is not None else None
    return canon, base


def _encoder_fields(
    raw: RawCheckpoint,
    canon: Canonical,
    base: ModelConfig | None,
    overrides: dict[str, Any],
    notes: list[str],
) -> dict[str, Any]:
    """Encoder settings from our config, HF's config, or the shapes of an original state dict."""
    source = str(raw.source)
    if isinstance(base, ClassifierConfig):
        return dataclasses.asdict(base.encoder_config())
    if isinstance(base, MMEPretrainConfig):
        return dataclasses.asdict(base.encoder)
    if raw.layout == "hf":
        return hf_encoder_fields(raw.hf_config or {}, source)
    fields, more = infer_encoder_fields(canon.state, source)
    notes.extend(more)
    if "num_heads" not in overrides:
        if "num_heads" not in fields:
            raise CheckpointError(
                f"{source}: width {fields['embed_dim']} is not a registered size, so the number of attention "
                "heads is unknown (checkpoints do not store it); pass num_heads=N"
            )
        notes.append(
            f"num_heads={fields['num_heads']} taken from the registered size of width {fields['embed_dim']} "
            "(checkpoints do not store it)"
        )
    unset = [name for name in ("num_frames", "img_size") if name not in overrides]
    if unset:
        defaults = ViTConfig()
        notes.append(
            ", ".join(f"{name}={getattr(defaults, name)}" for name in unset)
            + " assumed (original checkpoints do not store the clip size; the position table follows it)"
        )
    return fields


def _decoder_fields(
    raw: RawCheckpoint,
    state: dict[str, torch.Tensor],
    encoder: dict[str, Any],
    notes: list[str],
    source: str,
) -> dict[str, Any]:
    """Decoder settings: HF's config, the shapes of an original decoder, or the registry's defaults."""
    width = int(encoder["embed_dim"])
    default_heads = decoder_heads_for_width(width) or MMEPretrainConfig().decoder_num_heads
    if raw.layout == "hf" and is_hf_pretraining(raw.hf_config or {}):
        notes.append(
            f"Hugging Face's decoder norm uses LayerNorm eps 1e-5; mme's uses norm_eps={encoder['norm_eps']}"
        )
        return hf_decoder_fields(raw.hf_config or {}, source)
    if "encoder_to_decoder.weight" not in state:
        notes.append("no decoder in the checkpoint: decoder, mask token and heads are newly initialised")
        return {"decoder_num_heads": default_heads}
    fields: dict[str, Any] = {
        "decoder_embed_dim": int(state["encoder_to_decoder.weight"].shape[0]),
        "decoder_depth": block_count(state, "decoder.blocks."),
        "decoder_num_heads": default_heads,
    }
    notes.append(
        f"decoder_num_heads={default_heads} assumed (the registered default for encoder width {width}; "
        "checkpoints do not store it)"
    )
    hidden = [value.shape[0] for key, value in state.items() if key.endswith(".hidden.0.weight")]
    outs = [key for key in state if key.startswith("heads.") and key.endswith(".out.weight")]
    if hidden:
        fields["head_hidden_dim"] = int(hidden[0])
    elif outs:
        fields["head_hidden_dim"] = 0
    return fields


def _assign(
    model: nn.Module, state: dict[str, torch.Tensor], report: LoadReport, required: tuple[str, ...]
) -> None:
    """Copy ``state`` into ``model`` by name and fill ``report``; missing encoder tensors raise."""
    own = model.state_dict()
    for key, expected in own.items():
        value = state.get(key)
        if value is not None and tuple(value.shape) != tuple(expected.shape):
            raise CheckpointError(
                f"{report.source}: parameter {key}: the checkpoint has shape {tuple(value.shape)}, "
                f"the model expects {tuple(expected.shape)}"
            )
    missing = [key for key in own if key not in state]
    required_missing = [key for key in missing if key.startswith(required)]
    if required_missing:
        raise CheckpointError(
            f"{report.source}: encoder weights missing from the checkpoint: {group_names(required_missing)}"
        )
    matched = {key: state[key] for key in own if key in state}
    dtypes = {
        str(value.dtype).removeprefix("torch.")
        for key, value in matched.items()
        if value.dtype != own[key].dtype
    }
    model.load_state_dict(matched, strict=False)
    report.loaded = len(matched)
    report.new = missing
    report.dropped.extend(key for key in state if key not in own)
    if dtypes:
        report.notes.append(
            f"checkpoint tensors stored as {', '.join(sorted(dtypes))} were cast to the model's dtype"
        )
