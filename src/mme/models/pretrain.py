"""The MME pre-training model (docs/method.md §2–3): encoder on visible tokens, decoder, heads."""

from __future__ import annotations

import torch
from torch import nn

from mme.models.config import HeadConfig, MMEPretrainConfig
from mme.models.layers import Block, sincos_table
from mme.models.params import layer_id
from mme.models.vit import VisionTransformer

_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "identity": nn.Identity}


class PredictionHead(nn.Module):
    """``Linear -> GELU -> Linear -> activation``; ``hidden=0`` keeps only the last Linear (VideoMAE)."""

    def __init__(self, in_dim: int, hidden_dim: int, spec: HeadConfig) -> None:
        super().__init__()
        if hidden_dim > 0:
            self.hidden = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU())
            in_dim = hidden_dim
        else:
            self.hidden = nn.Identity()
        self.out = nn.Linear(in_dim, spec.dim)
        self.activation = _ACTIVATIONS[spec.activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.out(self.hidden(x)))


class Decoder(nn.Module):
    """Transformer blocks at decoder width, then a final LayerNorm on the masked positions only."""

    def __init__(self, config: MMEPretrainConfig) -> None:
        super().__init__()
        enc = config.encoder
        self.blocks = nn.ModuleList(
            Block(
                config.decoder_embed_dim,
                config.decoder_num_heads,
                mlp_ratio=enc.mlp_ratio,
                qkv_bias=enc.qkv_bias,
                norm_eps=enc.norm_eps,
                init_values=enc.init_values,
            )
            for _ in range(config.decoder_depth)
        )
        self.norm = nn.LayerNorm(config.decoder_embed_dim, eps=enc.norm_eps)

    def forward(self, x: torch.Tensor, num_masked: int) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.norm(x[:, x.shape[1] - num_masked :])


class MMEPretrainModel(nn.Module):
    """``forward(clip, mask (B, N)) -> {head: (B, M, C)}``, masked tokens in ascending order."""

    def __init__(self, config: MMEPretrainConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.model_name: str | None = None  # the registry name, when built by create_model
        self.encoder = VisionTransformer(config.encoder, final_norm=True)
        dim = config.decoder_embed_dim
        self.encoder_to_decoder = nn.Linear(config.encoder.embed_dim, dim, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_buffer(
            "decoder_pos_embed", sincos_table(config.encoder.num_patches, dim), persistent=False
        )
        self.decoder = Decoder(config)
        self.heads = nn.ModuleDict(
            {spec.name: PredictionHead(dim, config.head_hidden_dim, spec) for spec in config.heads}
        )
        self._init_weights()

    @property
    def num_layers(self) -> int:
        return self.encoder.num_layers

    @property
    def head_names(self) -> list[str]:
        return list(self.heads.keys())

    def _init_weights(self) -> None:
        """The original init: xavier-uniform Linears, zero biases, N(0, .02) mask token."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def check_mask(self, mask: torch.Tensor, batch: int, num_tokens: int) -> int:
        """Validate the mask against the clip; return the number ``M`` of masked tokens per row."""
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            kind = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(f"mask must be a bool tensor (True = masked), got {kind}")
        if mask.shape != (batch, num_tokens):
            raise ValueError(
                f"mask must have shape (B, N) = ({batch}, {num_tokens}) for this clip, "
                f"got {tuple(mask.shape)}"
            )
        counts = mask.sum(dim=1)
        low, high = int(counts.min()), int(counts.max())
        if low != high:
            raise ValueError(
                f"every mask row must hide the same number of tokens, got between {low} and {high}"
            )
        if low in (0, num_tokens):
            raise ValueError(
                f"the mask must hide some but not all of the {num_tokens} tokens, it hides {low}"
            )
        return low

    def forward_encoder(self, clip: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Encode the visible tokens: ``(B, N - M, D_enc)``, ascending token order."""
        return self.encoder(clip, mask)

    def forward_decoder(self, visible: torch.Tensor, mask: torch.Tensor, num_masked: int) -> torch.Tensor:
        """Decoder features of the masked tokens: ``(B, M, D_dec)``, ascending token order."""
        batch, num_tokens = mask.shape
        x = self.encoder_to_decoder(visible)
        pos = self.decoder_pos_embed
        if pos.shape[1] != num_tokens:
            pos = sincos_table(num_tokens, x.shape[-1], device=x.device)
        pos = pos.to(device=x.device, dtype=x.dtype).expand(batch, -1, -1)
        pos_visible = pos[~mask].reshape(batch, -1, x.shape[-1])
        pos_masked = pos[mask].reshape(batch, num_masked, x.shape[-1])
        x = torch.cat([x + pos_visible, self.mask_token.to(x.dtype) + pos_masked], dim=1)
        return self.decoder(x, num_masked)

    def forward_heads(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: head(features) for name, head in self.heads.items()}

    def forward(self, clip: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        grid = self.encoder.patch_embed.grid(clip.shape)
        num_masked = self.check_mask(mask, clip.shape[0], grid[0] * grid[1] * grid[2])
        visible = self.forward_encoder(clip, mask)
        return self.forward_heads(self.forward_decoder(visible, mask, num_masked))

    def no_weight_decay(self) -> set[str]:
        """Token-like parameters not to decay (biases and norms are the optimiser's own rule)."""
        return {"mask_token"}

    def layer_id(self, param_name: str) -> int:
        return layer_id(param_name, self.num_layers)
