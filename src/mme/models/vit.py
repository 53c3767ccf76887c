"""The video ViT encoder and the classifier on it (docs/method.md §2), with the original names."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from mme.models.config import ClassifierConfig, ViTConfig, check_class_names
from mme.models.layers import Block, PatchEmbed, sincos_table
from mme.models.params import layer_id


class VisionTransformer(nn.Module):
    """Tubelets + sine-cosine positions + pre-norm blocks; with a mask, visible tokens only (B, N - M, D)."""

    def __init__(self, config: ViTConfig, final_norm: bool = True) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.model_name: str | None = None  # the registry name, when built by create_model
        self.embed_dim = config.embed_dim
        self.patch_embed = PatchEmbed(
            config.in_chans, config.embed_dim, config.tubelet_size, config.patch_size
        )
        # Not a parameter and not saved: rebuilt from the token count (see docs/models.md).
        self.register_buffer(
            "pos_embed", sincos_table(config.num_patches, config.embed_dim), persistent=False
        )
        rates = torch.linspace(0, config.drop_path_rate, config.depth).tolist()
        self.blocks = nn.ModuleList(
            Block(
                config.embed_dim,
                config.num_heads,
                mlp_ratio=config.mlp_ratio,
                qkv_bias=config.qkv_bias,
                norm_eps=config.norm_eps,
                drop_path=rate,
                init_values=config.init_values,
            )
            for rate in rates
        )
        self.norm = nn.LayerNorm(config.embed_dim, eps=config.norm_eps) if final_norm else nn.Identity()
        self.use_checkpoint = config.use_checkpoint
        self.apply(_init_vit_weights)

    @property
    def num_layers(self) -> int:
        return len(self.blocks)

    def position_table(self, num_tokens: int, like: torch.Tensor) -> torch.Tensor:
        """The ``(1, N, D)`` table for ``num_tokens`` tokens, in ``like``'s dtype and device."""
        table = self.pos_embed
        if table.shape[1] != num_tokens:
            table = sincos_table(num_tokens, self.embed_dim, device=like.device)
        return table.to(device=like.device, dtype=like.dtype)

    def embed(self, clip: torch.Tensor) -> torch.Tensor:
        """All tokens of a clip with their positions added: ``(B, N, D)``."""
        tokens = self.patch_embed(clip)
        return tokens + self.position_table(tokens.shape[1], tokens)

    def forward_blocks(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            if self.use_checkpoint and self.training and torch.is_grad_enabled():
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return self.norm(x)

    def forward(self, clip: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.embed(clip)
        if mask is not None:
            x = x[~mask].reshape(x.shape[0], -1, x.shape[2])
        return self.forward_blocks(x)

    def no_weight_decay(self) -> set[str]:
        """None: the position table is a buffer, and 1-D parameters are the optimiser's rule."""
        return set()

    def layer_id(self, param_name: str) -> int:
        return layer_id(param_name, self.num_layers)


class VideoClassifier(VisionTransformer):
    """Encoder -> mean pool -> ``fc_norm`` -> dropout -> ``head``; ``class_names`` travel with it."""

    def __init__(self, config: ClassifierConfig) -> None:
        config.validate()
        super().__init__(config, final_norm=False)
        self.config: ClassifierConfig = config
        self.fc_norm = nn.LayerNorm(config.embed_dim, eps=config.fc_norm_eps)
        self.head_drop = nn.Dropout(config.head_drop_rate)
        self.head = (
            nn.Linear(config.embed_dim, config.num_classes) if config.num_classes > 0 else nn.Identity()
        )
        self._class_names: list[str] | None = None
        self.reset_head()

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def class_names(self) -> list[str] | None:
        """The name of every output (label order), or None when unknown."""
        return None if self._class_names is None else list(self._class_names)

    @class_names.setter
    def class_names(self, names: list[str] | None) -> None:
        self._class_names = check_class_names(names, self.num_classes)

    def reset_head(self, num_classes: int | None = None) -> None:
        """(Re)initialise ``head`` (optionally for a new class count): N(0, 0.02), times ``init_scale``."""
        if num_classes is not None and num_classes != self.config.num_classes:
            self.config = dataclasses.replace(self.config, num_classes=num_classes)
            self.config.validate()
            self._class_names = None  # they named the old head's outputs
            self.head = nn.Linear(self.embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        if isinstance(self.head, nn.Linear):
            self.head.to(device=self.fc_norm.weight.device, dtype=self.fc_norm.weight.dtype)
            nn.init.trunc_normal_(self.head.weight, std=0.02)
            nn.init.zeros_(self.head.bias)
            with torch.no_grad():
                self.head.weight.mul_(self.config.init_scale)
                self.head.bias.mul_(self.config.init_scale)

    def forward_features(self, clip: torch.Tensor) -> torch.Tensor:
        tokens = self.forward_blocks(self.embed(clip))
        return self.fc_norm(tokens.mean(dim=1))

    def forward(self, clip: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.head(self.head_drop(self.forward_features(clip)))


def _init_vit_weights(module: nn.Module) -> None:
    """VideoMAE fine-tuning init: Linear ~ N(0, 0.02) truncated, zero bias; LayerNorm 1/0."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
