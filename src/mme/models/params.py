"""Which layer a parameter belongs to, for layer-wise lr decay."""

from __future__ import annotations

_EMBEDDING_PREFIXES = ("patch_embed.", "pos_embed", "cls_token")


def layer_id(param_name: str, num_layers: int) -> int:
    """Depth of a parameter: 0 embeddings, ``i + 1`` block ``i``, ``num_layers + 1`` all after the blocks."""
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
