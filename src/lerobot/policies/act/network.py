"""ACT's network: CVAE encoder, ResNet features, transformer encoder-decoder, action head.

Same computation and parameter names as LeRobot's ACT (``model.*`` in a checkpoint), so its
checkpoints load here; :class:`~lerobot.policies.act.modeling_act.ACTPolicy` wraps it with
normalisation and the action queue.
"""

from __future__ import annotations

import math
from itertools import chain
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from lerobot.configs.types import ACTION, OBS_ENV_STATE, OBS_STATE
from lerobot.policies.act.configuration_act import ACTConfig
from lerobot.policies.backbones import make_resnet_feature_extractor


class ACT(nn.Module):
    """The network: normalised batch -> (actions (B, T, A), (mu, log_sigma_x2) or (None, None))."""

    def __init__(self, config: ACTConfig):
        super().__init__()
        self.config = config
        dim = config.dim_model
        state_dim = config.robot_state_feature.shape[0] if config.robot_state_feature else None
        action_dim = config.action_feature.shape[0]

        # CVAE encoder: [cls, state?, action_1..T] -> latent distribution parameters.
        if config.use_vae:
            self.vae_encoder = ACTEncoder(config, n_layers=config.n_vae_encoder_layers)
            self.vae_encoder_cls_embed = nn.Embedding(1, dim)
            if state_dim is not None:
                self.vae_encoder_robot_state_input_proj = nn.Linear(state_dim, dim)
            self.vae_encoder_action_input_proj = nn.Linear(action_dim, dim)
            self.vae_encoder_latent_output_proj = nn.Linear(dim, config.latent_dim * 2)
            n_tokens = 1 + config.chunk_size + (1 if state_dim is not None else 0)
            self.register_buffer(
                "vae_encoder_pos_enc", sinusoidal_position_embedding_1d(n_tokens, dim).unsqueeze(0)
            )

        # Vision backbone: ResNet up to layer4 (frozen batch norm), then a 1x1 projection to dim.
        if config.image_features:
            self.backbone, backbone_channels = make_resnet_feature_extractor(
                config.vision_backbone,
                config.pretrained_backbone_weights,
                config.replace_final_stride_with_dilation,
            )

        self.encoder = ACTEncoder(config, n_layers=config.n_encoder_layers)
        self.decoder = ACTDecoder(config)

        # Projections of the encoder's input tokens, and their position embeddings.
        if state_dim is not None:
            self.encoder_robot_state_input_proj = nn.Linear(state_dim, dim)
        if config.env_state_feature:
            self.encoder_env_state_input_proj = nn.Linear(config.env_state_feature.shape[0], dim)
        self.encoder_latent_input_proj = nn.Linear(config.latent_dim, dim)
        if config.image_features:
            self.encoder_img_feat_input_proj = nn.Conv2d(backbone_channels, dim, kernel_size=1)
        n_1d_tokens = 1 + (state_dim is not None) + (config.env_state_feature is not None)
        self.encoder_1d_feature_pos_embed = nn.Embedding(n_1d_tokens, dim)
        if config.image_features:
            self.encoder_cam_feat_pos_embed = ACTSinusoidalPositionEmbedding2d(dim // 2)

        # Decoder queries' position embeddings and the action head.
        self.decoder_pos_embed = nn.Embedding(config.chunk_size, dim)
        self.action_head = nn.Linear(dim, action_dim)

        for p in chain(self.encoder.parameters(), self.decoder.parameters()):
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, tuple[Tensor | None, Tensor | None]]:
        cfg = self.config
        images = [batch[key] for key in cfg.image_features]
        batch_size = images[0].shape[0] if images else batch[OBS_ENV_STATE].shape[0]

        # 1. Latent: sampled from the VAE encoder while training, zero otherwise.
        if cfg.use_vae and self.training:
            if ACTION not in batch:
                raise KeyError("Training ACT with use_vae=True needs 'action' in the batch.")
            mu, log_sigma_x2 = self._encode_latent(batch, batch_size)
            latent = mu + log_sigma_x2.div(2).exp() * torch.randn_like(mu)
        else:
            mu = log_sigma_x2 = None
            # dtype and device of the model from an embedding: quantize_dynamic turns Linear weights into methods
            weight = self.decoder_pos_embed.weight
            latent = torch.zeros(batch_size, cfg.latent_dim, dtype=weight.dtype, device=weight.device)

        # 2. Encoder tokens, sequence-first (S, B, D): latent, state, env state, camera features.
        tokens = [self.encoder_latent_input_proj(latent)]
        if cfg.robot_state_feature:
            tokens.append(self.encoder_robot_state_input_proj(batch[OBS_STATE]))
        if cfg.env_state_feature:
            tokens.append(self.encoder_env_state_input_proj(batch[OBS_ENV_STATE]))
        tokens = [torch.stack(tokens, dim=0)]  # (n_1d, B, D)
        pos_embeds = [self.encoder_1d_feature_pos_embed.weight.unsqueeze(1)]  # (n_1d, 1, D)
        for image in images:
            feature_map = self.backbone(image)["feature_map"]  # (B, C, h, w)
            cam_pos = self.encoder_cam_feat_pos_embed(feature_map).to(dtype=feature_map.dtype)  # (1, D, h, w)
            cam_tokens = self.encoder_img_feat_input_proj(feature_map)  # (B, D, h, w)
            tokens.append(cam_tokens.flatten(2).permute(2, 0, 1))  # (h*w, B, D)
            pos_embeds.append(cam_pos.flatten(2).permute(2, 0, 1))  # (h*w, 1, D)
        tokens = torch.cat(tokens, dim=0)
        pos_embeds = torch.cat(pos_embeds, dim=0)
        memory = self.encoder(tokens, pos_embed=pos_embeds)

        # 3. Decoder: T zero queries with learned position embeddings attend to the memory.
        queries = torch.zeros(
            (cfg.chunk_size, batch_size, cfg.dim_model), dtype=pos_embeds.dtype, device=pos_embeds.device
        )
        decoded = self.decoder(
            queries,
            memory,
            encoder_pos_embed=pos_embeds,
            decoder_pos_embed=self.decoder_pos_embed.weight.unsqueeze(1),
        )
        actions = self.action_head(decoded.transpose(0, 1))  # (B, T, A)
        return actions, (mu, log_sigma_x2)

    def _encode_latent(self, batch: dict[str, Tensor], batch_size: int) -> tuple[Tensor, Tensor]:
        """[cls, state, actions] through the VAE encoder; the cls output gives (mu, log sigma^2)."""
        cls_token = self.vae_encoder_cls_embed.weight.expand(batch_size, 1, -1)  # (B, 1, D)
        parts = [cls_token]
        if self.config.robot_state_feature:
            parts.append(self.vae_encoder_robot_state_input_proj(batch[OBS_STATE]).unsqueeze(1))
        parts.append(self.vae_encoder_action_input_proj(batch[ACTION]))  # (B, T, D)
        tokens = torch.cat(parts, dim=1)
        # cls and state are never padding; actions past the episode end are.
        is_pad = batch.get("action_is_pad")
        if is_pad is None:
            is_pad = torch.zeros(batch[ACTION].shape[:2], dtype=torch.bool, device=tokens.device)
        prefix_pad = torch.zeros(batch_size, len(parts) - 1, dtype=torch.bool, device=tokens.device)
        key_padding_mask = torch.cat([prefix_pad, is_pad], dim=1)
        out = self.vae_encoder(
            tokens.permute(1, 0, 2),
            pos_embed=self.vae_encoder_pos_enc.clone().detach().permute(1, 0, 2),
            key_padding_mask=key_padding_mask,
            first_token_only=True,
        )
        params = self.vae_encoder_latent_output_proj(out[0])  # cls token
        return params[:, : self.config.latent_dim], params[:, self.config.latent_dim :]


class ACTEncoder(nn.Module):
    """A stack of encoder layers (used both as the main encoder and as the VAE encoder)."""

    def __init__(self, config: ACTConfig, n_layers: int):
        super().__init__()
        self.layers = nn.ModuleList([ACTEncoderLayer(config) for _ in range(n_layers)])
        self.norm = nn.LayerNorm(config.dim_model) if config.pre_norm else nn.Identity()

    def forward(
        self,
        x: Tensor,
        pos_embed: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        first_token_only: bool = False,
    ) -> Tensor:
        """(S, B, D) -> (S, B, D); ``first_token_only`` -> (1, B, D), the first token's output only.

        The VAE encoder needs only its cls token's output, so its last layer skips the other
        tokens' queries and feed-forward (about a twelfth of an ACT training step); the cls output
        is the same.
        """
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            only_first = first_token_only and i == last
            x = layer(x, pos_embed=pos_embed, key_padding_mask=key_padding_mask, first_token_only=only_first)
        return self.norm(x)


class ACTEncoderLayer(nn.Module):
    """Self-attention + feed-forward; position embeddings are added to queries and keys only (DETR).

    The averaged attention weights are never used. Not asking for them at inference lets PyTorch
    take its fused attention kernel; training asks, which keeps the math path and its attention
    dropout draws (so training runs are reproduced exactly as before).
    """

    def __init__(self, config: ACTConfig):
        super().__init__()
        dim = config.dim_model
        self.self_attn = nn.MultiheadAttention(dim, config.n_heads, dropout=config.dropout)
        self.linear1 = nn.Linear(dim, config.dim_feedforward)
        self.dropout = nn.Dropout(config.dropout)
        self.linear2 = nn.Linear(config.dim_feedforward, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.dropout1 = nn.Dropout(config.dropout)
        self.dropout2 = nn.Dropout(config.dropout)
        self.activation = get_activation_fn(config.feedforward_activation)
        self.pre_norm = config.pre_norm

    def forward(
        self,
        x: Tensor,
        pos_embed: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        first_token_only: bool = False,
    ) -> Tensor:
        skip = x
        if self.pre_norm:
            x = self.norm1(x)
        q = k = x if pos_embed is None else x + pos_embed
        if first_token_only:  # every token is still a key and value; only the first one asks
            q, skip = q[:1], skip[:1]
        attended = self.self_attn(
            q, k, value=x, key_padding_mask=key_padding_mask, need_weights=self.training
        )
        x = skip + self.dropout1(attended[0])
        if self.pre_norm:
            skip, x = x, self.norm2(x)
        else:
            x = skip = self.norm1(x)
        x = skip + self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))
        return x if self.pre_norm else self.norm2(x)


class ACTDecoder(nn.Module):
    def __init__(self, config: ACTConfig):
        super().__init__()
        self.layers = nn.ModuleList([ACTDecoderLayer(config) for _ in range(config.n_decoder_layers)])
        self.norm = nn.LayerNorm(config.dim_model)

    def forward(
        self,
        x: Tensor,
        memory: Tensor,
        decoder_pos_embed: Tensor | None = None,
        encoder_pos_embed: Tensor | None = None,
    ) -> Tensor:
        for layer in self.layers:
            x = layer(x, memory, decoder_pos_embed=decoder_pos_embed, encoder_pos_embed=encoder_pos_embed)
        return self.norm(x)


class ACTDecoderLayer(nn.Module):
    """Self-attention over the queries, cross-attention to the encoder memory, feed-forward."""

    def __init__(self, config: ACTConfig):
        super().__init__()
        dim = config.dim_model
        self.self_attn = nn.MultiheadAttention(dim, config.n_heads, dropout=config.dropout)
        self.multihead_attn = nn.MultiheadAttention(dim, config.n_heads, dropout=config.dropout)
        self.linear1 = nn.Linear(dim, config.dim_feedforward)
        self.dropout = nn.Dropout(config.dropout)
        self.linear2 = nn.Linear(config.dim_feedforward, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)
        self.dropout1 = nn.Dropout(config.dropout)
        self.dropout2 = nn.Dropout(config.dropout)
        self.dropout3 = nn.Dropout(config.dropout)
        self.activation = get_activation_fn(config.feedforward_activation)
        self.pre_norm = config.pre_norm

    def forward(
        self,
        x: Tensor,
        memory: Tensor,
        decoder_pos_embed: Tensor | None = None,
        encoder_pos_embed: Tensor | None = None,
    ) -> Tensor:
        def with_pos(t: Tensor, pos: Tensor | None) -> Tensor:
            return t if pos is None else t + pos

        skip = x
        if self.pre_norm:
            x = self.norm1(x)
        q = k = with_pos(x, decoder_pos_embed)
        attended = self.self_attn(q, k, value=x, need_weights=self.training)[0]
        x = skip + self.dropout1(attended)
        if self.pre_norm:
            skip, x = x, self.norm2(x)
        else:
            x = skip = self.norm1(x)
        attended = self.multihead_attn(
            query=with_pos(x, decoder_pos_embed),
            key=with_pos(memory, encoder_pos_embed),
            value=memory,
            need_weights=self.training,
        )[0]
        x = skip + self.dropout2(attended)
        if self.pre_norm:
            skip, x = x, self.norm3(x)
        else:
            x = skip = self.norm2(x)
        x = skip + self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))
        return x if self.pre_norm else self.norm3(x)


def sinusoidal_position_embedding_1d(num_positions: int, dim: int) -> Tensor:
    """(num_positions, dim): sin on even, cos on odd channels, wavelength 10000^(2i/dim) (Vaswani et al.)."""
    position = torch.arange(num_positions, dtype=torch.float64).unsqueeze(1)
    exponent = 2 * (torch.arange(dim) // 2).to(torch.float64) / dim
    angles = position / torch.pow(10000.0, exponent)
    table = torch.empty(num_positions, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angles[:, 0::2])
    table[:, 1::2] = torch.cos(angles[:, 1::2])
    return table.float()


class ACTSinusoidalPositionEmbedding2d(nn.Module):
    """2-D sine embedding of a (B, C, H, W) feature map -> (1, 2 * dim, H, W): y channels, then x (DETR).

    A function of the map's size only, so it is kept per (H, W, device) -- and per inference mode,
    whose tensors must not leak out of it: two dozen small ops less per control step.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self._two_pi = 2 * math.pi
        self._eps = 1e-6
        self._temperature = 10000
        self._tables: dict[tuple[Any, ...], Tensor] = {}

    def forward(self, x: Tensor) -> Tensor:
        if torch.jit.is_tracing() or torch.compiler.is_compiling():  # recorded as ops, never cached
            return self._table(x)
        key = (x.shape[-2], x.shape[-1], x.device, torch.is_inference_mode_enabled())
        if key not in self._tables:
            self._tables[key] = self._table(x)
        return self._tables[key]

    def _table(self, x: Tensor) -> Tensor:
        not_mask = torch.ones_like(x[0, :1])  # (1, H, W)
        y = not_mask.cumsum(1, dtype=torch.float32)  # 1..H down the rows
        x_ = not_mask.cumsum(2, dtype=torch.float32)  # 1..W along the columns
        y = y / (y[:, -1:, :] + self._eps) * self._two_pi  # normalised to (0, 2 pi]
        x_ = x_ / (x_[:, :, -1:] + self._eps) * self._two_pi
        freq = self._temperature ** (
            2 * (torch.arange(self.dim, dtype=torch.float32, device=x.device) // 2) / self.dim
        )
        x_ = x_.unsqueeze(-1) / freq  # (1, H, W, dim)
        y = y.unsqueeze(-1) / freq
        # Interleave sin/cos: channel 2i is sin, 2i+1 is cos of the same frequency.
        pos_x = torch.stack((x_[..., 0::2].sin(), x_[..., 1::2].cos()), dim=-1).flatten(3)
        pos_y = torch.stack((y[..., 0::2].sin(), y[..., 1::2].cos()), dim=-1).flatten(3)
        return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)  # (1, 2 * dim, H, W)


def get_activation_fn(name: str):
    return {"relu": F.relu, "gelu": F.gelu, "glu": F.glu}[name]
