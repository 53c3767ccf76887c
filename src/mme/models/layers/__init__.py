"""Building blocks of the video ViT: one module per job."""

from mme.models.layers.attention import Attention
from mme.models.layers.block import Block
from mme.models.layers.drop_path import DropPath
from mme.models.layers.mlp import Mlp
from mme.models.layers.patch_embed import PatchEmbed
from mme.models.layers.pos_embed import sincos_table

__all__ = ["Attention", "Block", "DropPath", "Mlp", "PatchEmbed", "sincos_table"]
