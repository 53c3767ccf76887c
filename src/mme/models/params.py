"""Parameter helpers for the trainer: which layer a parameter belongs to (layer-wise lr decay)."""

from __future__ import annotations

_EMBEDDING_PREFIXES = ("patch_embed.", "pos_embed", "cls_token")


def layer_id(param_name: str, num_layers: int) -> int:
    """Depth index of a parameter: 0 = tubelet embedding / positions, ``i + 1`` = block ``i``,
    ``num_layers + 1`` = everything after the encoder blocks (final norms, ``fc_norm``, ``head``,
    and for the pre-training model the decoder, mask token and prediction heads).

    Accepts classifier names (``blocks.3.attn.qkv.weight``) and pre-training names
    (``encoder.blocks.3.attn.qkv.weight``). With lr decay ``d``, a parameter's lr scale is
    ``d ** (num_layers + 1 - layer_id)``.
    """
    name = param_name.removeprefix("module.")
    name = name.removeprefix("encoder.")
    if name.startswith(_EMBEDDING_PREFIXES):
        return 0
    if name.startswith("blocks."):
        index = name.split(".", 2)[1]
        if not index.isdigit():
            raise ValueError(f"cannot read the block index of parameter {param_name!r}")
        block = int(index)
        if block >= num_layers:
            raise ValueError(
                f"parameter {param_name!r} is in block {block}, but the model has {num_layers} blocks"
            )
        return block + 1
    return num_layers + 1
