"""Original MME / VideoMAE checkpoints: names to mme's, architecture from shapes (docs/models.md)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import torch

from mme.errors import CheckpointError
from mme.models.config import HeadConfig
from mme.models.layers import sincos_table
from mme.models.registry import heads_for_width

_TRUNK = ("patch_embed.", "blocks.", "norm.")
_DROP = object()
_POSITIONS = object()


@dataclass
class Canonical:
    """A state dict under mme's canonical names: :class:`MMEPretrainModel`'s plus ``fc_norm``/``head``."""

    state: dict[str, torch.Tensor]
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Original --decoder_num > 1: several decoders, which mme's pre-training model cannot hold.
    extra_decoders: list[str] = field(default_factory=list)


def canonical_from_original(state: dict[str, torch.Tensor], source: str) -> Canonical:
    # DDP wraps names in "module.", torch.compile in "_orig_mod." (in either order).
    for prefix in ("module.", "_orig_mod.", "module."):
        state = _strip_common_prefix(state, prefix)
    result = Canonical({})
    for key, value in state.items():
        name = _rename(key)
        if name is _POSITIONS:
            _check_sincos(value, source, key)
            result.notes.append(
                f"{key}: a fixed sine-cosine table; not needed (rebuilt from the token count)"
            )
        elif name is _DROP:
            result.dropped.append(key)
        elif isinstance(name, tuple):
            result.extra_decoders.append(key)
            result.dropped.append(key)
        else:
            if name in result.state:
                raise CheckpointError(
                    f"{source}: two checkpoint keys map to the same parameter {name} (one is {key})"
                )
            result.state[name] = value
    return result


def _rename(key: str) -> object:
    if key in ("pos_embed", "encoder.pos_embed", "backbone.pos_embed"):
        return _POSITIONS
    for prefix in ("encoder.", "backbone."):
        if key.startswith(prefix):
            rest = key[len(prefix) :]
            return f"encoder.{rest}" if rest.startswith(_TRUNK) else _DROP
    if key.startswith(_TRUNK):
        return f"encoder.{key}"
    if key.startswith(("fc_norm.", "head.", "heads.")) or key == "mask_token":
        return key
    if key.startswith("fc."):
        return "head." + key[3:]
    match = re.fullmatch(r"encoder_to_decoder(?:\.(\d+))?\.weight", key)
    if match:
        return "encoder_to_decoder.weight" if match.group(1) in (None, "0") else ("extra", key)
    match = re.fullmatch(r"decoder\.(?:(\d+)\.)?(.+)", key)
    if match:
        index, rest = match.groups()
        if index not in (None, "0"):
            return ("extra", key)
        if rest.startswith(("blocks.", "norm.")):
            return f"decoder.{rest}"
        head = re.fullmatch(r"head\.(\d+)\.([02])\.(weight|bias)", rest)
        if head:
            number, layer, kind = head.groups()
            return f"heads.#{number}." + ("hidden.0." if layer == "0" else "out.") + kind
        if rest in ("head.weight", "head.bias"):
            return "heads.#0.out." + rest.split(".")[1]
    return _DROP


def _strip_common_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    if state and all(key.startswith(prefix) for key in state):
        return {key[len(prefix) :]: value for key, value in state.items()}
    return state


def _check_sincos(value: torch.Tensor, source: str, key: str) -> None:
    """Accept a stored position table only if it is the fixed sine-cosine one (then it is rebuilt)."""
    if value.ndim == 3 and value.shape[0] == 1:
        expected = sincos_table(value.shape[1], value.shape[2])
        if torch.allclose(value.float(), expected, atol=1e-4):
            return
    raise CheckpointError(
        f"{source}: {key} (shape {tuple(value.shape)}) is a learned position embedding; mme's models use "
        "the fixed sine-cosine table of MME/VideoMAE and cannot hold a learned one"
    )


def block_count(state: dict[str, torch.Tensor], prefix: str) -> int:
    """Number of blocks ``<prefix>N.`` in a state dict (0 if none)."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    indices = {int(m.group(1)) for key in state if (m := pattern.match(key))}
    if indices and indices != set(range(len(indices))):
        raise CheckpointError(f"blocks {sorted(indices)} under {prefix!r} are not numbered 0..N-1")
    return len(indices)


def infer_encoder_fields(state: dict[str, torch.Tensor], source: str) -> tuple[dict[str, object], list[str]]:
    """ViT settings readable from a canonical state dict's shapes (num_heads only for known widths)."""
    key = "encoder.patch_embed.proj.weight"
    if key not in state:
        raise CheckpointError(
            f"{source}: no video ViT encoder in this checkpoint "
            "(no patch_embed.proj.weight under any known prefix)"
        )
    weight = state[key]
    if weight.ndim != 5 or weight.shape[3] != weight.shape[4]:
        raise CheckpointError(
            f"{source}: {key} has shape {tuple(weight.shape)}; expected a Conv3d tubelet embedding "
            "(D, C, tubelet, patch, patch)"
        )
    embed_dim, in_chans, tubelet, patch, _ = weight.shape
    depth = block_count(state, "encoder.blocks.")
    if depth == 0:
        raise CheckpointError(f"{source}: no encoder blocks (blocks.0.*) in this checkpoint")
    fields: dict[str, object] = {
        "embed_dim": embed_dim,
        "depth": depth,
        "patch_size": patch,
        "tubelet_size": tubelet,
        "in_chans": in_chans,
        "qkv_bias": "encoder.blocks.0.attn.q_bias" in state,
    }
    fc1 = state.get("encoder.blocks.0.mlp.fc1.weight")
    if fc1 is not None:
        fields["mlp_ratio"] = fc1.shape[0] / embed_dim
    notes = []
    if "encoder.blocks.0.gamma_1" in state:
        fields["init_values"] = 0.1
        notes.append("layer scale (gamma_1/gamma_2) found: built with layer scale")
    heads = heads_for_width(embed_dim)
    if heads is not None:
        fields["num_heads"] = heads
    return fields, notes


# What the original code put on each head's output (mme's defaults are identity: docs/motion.md).
ORIGINAL_ACTIVATIONS = {"hog": "sigmoid", "traj": "tanh", "traj_hog": "sigmoid", "pixel": "identity"}
# Widths the original recipes' HOG and pixel heads always had (a trajectory head's depends on L).
ORIGINAL_WIDTHS = {"hog": 108, "pixel": 1536}


def name_heads(
    state: dict[str, torch.Tensor], wanted: list[HeadConfig] | None, source: str
) -> tuple[dict[str, torch.Tensor], list[HeadConfig], list[str]]:
    """Name the numbered heads ``heads.#i``: as ``wanted`` when it fits, else by width and place.

    108 = HOG (sigmoid), 1536 = pixels (identity), a later head of width 8*L = trajectory (tanh).
    Returns the renamed state, the heads found (checkpoint order) and notes.
    """
    numbered = sorted(
        {int(m.group(1)) for key in state if (m := re.match(r"heads\.#(\d+)\.out\.weight", key))}
    )
    if not numbered:
        return state, [], []
    widths = [state[f"heads.#{i}.out.weight"].shape[0] for i in numbered]
    notes = []
    if wanted is not None and [h.dim for h in wanted] == widths:
        # The checkpoint's heads were trained with the original code's activations, whatever
        # mme's defaults are (docs/models.md, "Head layouts").
        found = [HeadConfig(h.name, h.dim, ORIGINAL_ACTIVATIONS.get(h.name, h.activation)) for h in wanted]
    else:
        found = []
        for place, width in zip(numbered, widths, strict=True):
            if width == ORIGINAL_WIDTHS["hog"] and place == 0:
                spec = HeadConfig("hog", width, ORIGINAL_ACTIVATIONS["hog"])
            elif width == ORIGINAL_WIDTHS["pixel"]:
                spec = HeadConfig("pixel", width, ORIGINAL_ACTIVATIONS["pixel"])
            elif place > 0 and width % 8 == 0:
                spec = HeadConfig("traj", width, ORIGINAL_ACTIVATIONS["traj"])
            elif wanted is not None:
                spec = HeadConfig(f"unnamed{place}", width, "identity")
                notes.append(f"checkpoint head {place} (width {width}) matches no requested head; not used")
            else:
                raise CheckpointError(
                    f"{source}: cannot tell which target prediction head {place} (width {width}) was "
                    "trained on; pass heads=[...] naming the checkpoint's heads in order"
                )
            found.append(spec)
        notes.append(
            "prediction heads named from their widths: "
            + ", ".join(
                f"#{i} -> {h.name} ({h.dim}, {h.activation})" for i, h in zip(numbered, found, strict=True)
            )
        )
    renamed = {}
    for key, value in state.items():
        match = re.match(r"heads\.#(\d+)\.(.*)", key)
        if match:
            spec = found[numbered.index(int(match.group(1)))]
            renamed[f"heads.{spec.name}.{match.group(2)}"] = value
        else:
            renamed[key] = value
    return renamed, found, notes


# ----------------------------------------------------------------------------- head layouts
# Per-token layouts of the prediction heads, as axes listed outermost first. The original MME
# release flattens its targets with einops in pretrain/engine.py: HOG as ``(c h2 w2)`` where its
# channel axis ``c`` is ``rgb_channel * 9 + bin`` (m3video/feat.py, ``(cr ch)``); the VolumeHOG
# variant as ``(c t2 h2 w2)``; trajectories as ``(c t2 h2 w2)`` / ``(c t2) (h2 w2)`` with
# ``c`` = x/y. mme's are in mme.objectives.targets (docs/motion.md). ``traj`` (coordinate, step,
# point) and ``pixel`` ("(p0 p1 p2) c") are the same in both, so only these two differ.
# Reordering makes the layouts agree, not the meanings: the original VolumeHOG takes the HOG of the
# cell under the point after 0..L-1 steps, mme's traj_hog after 1..L steps, interpolated.
_ORIGINAL_HEAD_AXES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # name: (original axes, mme's axes)
    "hog": (("channel", "bin", "cell"), ("cell", "channel", "bin")),
    "traj_hog": (("channel", "bin", "step", "point"), ("step", "point", "channel", "bin")),
}
# The sizes the original release fixes (RGB HOG with 9 bins, 2x2 points per token); the one axis
# left (cells of a HOG head, steps of a traj_hog head) follows from the head's width.
_ORIGINAL_AXIS_SIZES = {"channel": 3, "bin": 9, "point": 4}


def original_head_rows(name: str, dim: int) -> torch.Tensor | None:
    """``rows`` with ``mme_rows = original_rows[rows]`` for head ``name``; None when the layouts agree.

    - ``hog``: original ``(c * 9 + b) * 4 + p``; mme ``p * 27 + c * 9 + b``.
    - ``traj_hog``: original ``((c * 9 + b) * L + t) * 4 + p``; mme ``((t * 4 + p) * 3 + c) * 9 + b``.
    """
    axes = _ORIGINAL_HEAD_AXES.get(name)
    if axes is None:
        return None
    original, ours = axes
    fixed = [axis for axis in original if axis in _ORIGINAL_AXIS_SIZES]
    known = math.prod(_ORIGINAL_AXIS_SIZES[axis] for axis in fixed)
    if dim % known:
        raise CheckpointError(
            f"head {name!r} of width {dim}: the original release's {name} layout has "
            f"{' x '.join(f'{_ORIGINAL_AXIS_SIZES[a]} {a}s' for a in fixed)} per token, which does not "
            f"divide {dim}; cannot reorder its rows into mme's layout"
        )
    sizes = {**_ORIGINAL_AXIS_SIZES, **{axis: dim // known for axis in original if axis not in fixed}}
    # Entry at each original position = its original flat index; moving the axes into mme's order
    # and flattening lists, for each mme row, the original row it comes from.
    positions = torch.arange(dim).reshape([sizes[axis] for axis in original])
    return positions.permute([original.index(axis) for axis in ours]).flatten()


def heads_to_mme_layout(
    state: dict[str, torch.Tensor], heads: list[HeadConfig], source: str
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Permute each named head's last Linear rows from the original layouts to mme's; returns notes too."""
    state = dict(state)
    notes = []
    for head in heads:
        weight_key, bias_key = f"heads.{head.name}.out.weight", f"heads.{head.name}.out.bias"
        if weight_key not in state:
            continue
        try:
            rows = original_head_rows(head.name, int(state[weight_key].shape[0]))
        except CheckpointError as error:
            raise CheckpointError(f"{source}: {error}") from error
        if rows is None:
            continue
        state[weight_key] = state[weight_key][rows]
        if bias_key in state:
            state[bias_key] = state[bias_key][rows]
        original, ours = _ORIGINAL_HEAD_AXES[head.name]
        note = (
            f"head {head.name!r}: output rows reordered from the original layout ({', '.join(original)}) "
            f"to mme's ({', '.join(ours)})"
        )
        if head.name == "traj_hog":
            note += (
                "; the original VolumeHOG target samples steps 0..L-1 at the nearest cell, mme's "
                "steps 1..L interpolated, so this head is a starting point, not an equivalent"
            )
        notes.append(note)
    return state, notes
