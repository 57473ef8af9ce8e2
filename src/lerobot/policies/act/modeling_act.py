"""Action Chunking Transformer (ACT), readable top to bottom.

Zhao et al. 2023, "Learning Fine-Grained Bimanual Manipulation with Low-Cost Hardware"
(https://arxiv.org/abs/2304.13705). Same computation and parameter names as LeRobot's ACT, so
LeRobot checkpoints load here and give the same actions.

Shapes (B batch, T = chunk_size, A action dim, D = dim_model)::

    observation.state           (B, state_dim)
    observation.images.<cam>    (B, 3, H, W) floats in [0, 1]      (one or more cameras)
    observation.environment_state (B, env_dim)                      (optional)
    action                      (B, T, A)      training target
    action_is_pad               (B, T) bool    padded steps past the episode end (optional)

Model::

    [cls, state, action_1..T] --VAE encoder--> (mu, log sigma^2) --sample--> z  (training; z = 0 at inference)
    [z, state, env, ResNet features of each camera] + position embeddings --encoder--> memory
    T learned queries --decoder(memory)--> action_head --> (B, T, A)

Loss = L1(actions, predicted) over non-padded steps + kl_weight * KL(N(mu, sigma) || N(0, 1)).
At run time ``select_action`` executes ``n_action_steps`` actions of each chunk from a queue, or --
with ``temporal_ensemble_coeff`` -- predicts every step and averages the overlapping chunks.
"""

from __future__ import annotations

import math
from collections import deque
from itertools import chain
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from lerobot.configs.types import ACTION, OBS_ENV_STATE, OBS_STATE
from lerobot.policies.act.configuration_act import ACTConfig
from lerobot.policies.backbones import make_resnet_feature_extractor
from lerobot.policies.layers import Dropout, Linear, inference_layout
from lerobot.policies.pretrained import PolicyAction, PreTrainedPolicy, inference_step


class ACTPolicy(PreTrainedPolicy):
    """ACT with its normalisation and action queue: raw observations in, robot-unit actions out."""

    config_class = ACTConfig
    name = "act"

    def __init__(self, config: ACTConfig, dataset_stats: dict[str, dict[str, Any]] | None = None):
        super().__init__(config, dataset_stats)
        self.model = ACT(config)
        self.temporal_ensembler = (
            ACTTemporalEnsembler(config.temporal_ensemble_coeff, config.chunk_size)
            if config.temporal_ensemble_coeff is not None
            else None
        )
        self.reset()

    def get_optim_params(self) -> list[dict[str, Any]]:
        """Two parameter groups: the backbone gets ``optimizer_lr_backbone``."""
        backbone, rest = [], []
        for name, param in self.named_parameters():
            if param.requires_grad:
                (backbone if name.startswith("model.backbone") else rest).append(param)
        return [{"params": rest}, {"params": backbone, "lr": self.config.optimizer_lr_backbone}]

    def reset(self) -> None:
        self._action_queue: deque[Tensor] = deque(maxlen=self.config.n_action_steps)
        if self.temporal_ensembler is not None:
            self.temporal_ensembler.reset()

    @inference_step
    def predict_action_chunk(self, observation: dict[str, Any]) -> Tensor:
        """Raw observation -> (B, chunk_size, A) actions in robot units."""
        batch = self.normalize_inputs(self._checked_observation(observation))
        actions = self.model(batch)[0]
        return self.unnormalize_outputs({ACTION: actions})[ACTION]

    @inference_step
    def select_action(self, observation: dict[str, Any]) -> PolicyAction:
        """Raw observation -> ``{"action": (B, A)}`` in robot units for this control step."""
        batch = self.normalize_inputs(self._checked_observation(observation))
        if self.temporal_ensembler is not None:
            action = self.temporal_ensembler.update(self.model(batch)[0])
        else:
            if not self._action_queue:
                chunk = self.model(batch)[0][:, : self.config.n_action_steps]  # (B, n, A), normalised
                self._action_queue.extend(chunk.transpose(0, 1))
            action = self._action_queue.popleft()
        return PolicyAction(action=self.unnormalize_outputs({ACTION: action})[ACTION])

    def _checked_observation(self, observation: dict[str, Any]) -> dict[str, Tensor]:
        obs = self.prepare_observation(observation)
        self.check_features(obs, self.config.input_features)
        return obs

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        """Raw training batch -> ``{"loss": scalar, "l1_loss": float, "kld_loss": float}``."""
        batch = self.single_action_as_chunk(batch, self.config.chunk_size)
        self.check_features(batch, self.config.input_features)
        self.check_features(batch, self.config.output_features, time_steps=self.config.chunk_size)
        batch = self.normalize_targets(self.normalize_inputs(batch))
        actions_hat, (mu, log_sigma_x2) = self.model(batch)
        is_pad = batch.get("action_is_pad")
        if is_pad is None:
            is_pad = torch.zeros(actions_hat.shape[:2], dtype=torch.bool, device=actions_hat.device)
        l1 = F.l1_loss(batch[ACTION], actions_hat, reduction="none") * ~is_pad.unsqueeze(-1)
        l1_loss = l1.mean()
        output: dict[str, Any] = {"l1_loss": l1_loss.item()}
        loss = l1_loss
        if mu is not None:
            # KL(N(mu, sigma^2) || N(0, 1)), summed over latent dims, averaged over the batch.
            kld = (-0.5 * (1 + log_sigma_x2 - mu.pow(2) - log_sigma_x2.exp())).sum(-1).mean()
            output["kld_loss"] = kld.item()
            loss = l1_loss + self.config.kl_weight * kld
        output["loss"] = loss
        return output


class ACTTemporalEnsembler:
    """Average every chunk's prediction for the current step, weighting chunk i by exp(-coeff * i).

    i = 0 is the *oldest* prediction (coeff > 0 favours older ones, as in the ACT paper). Kept as a
    running weighted mean so each step costs O(chunk_size).
    """

    def __init__(self, temporal_ensemble_coeff: float, chunk_size: int):
        self.chunk_size = chunk_size
        self.weights = torch.exp(-temporal_ensemble_coeff * torch.arange(chunk_size))
        self.weights_cumsum = torch.cumsum(self.weights, dim=0)
        self.reset()

    def reset(self) -> None:
        self.ensembled_actions: Tensor | None = None  # (B, T, A) running means for steps t..t+T-1
        self.counts: Tensor | None = None  # (T, 1) how many chunks contributed to each step

    def update(self, actions: Tensor) -> Tensor:
        """Fold in a new (B, T, A) chunk; return the ensembled action (B, A) for the current step."""
        weights = self.weights.to(actions.device)
        cumsum = self.weights_cumsum.to(actions.device)
        if self.ensembled_actions is None:
            self.ensembled_actions = actions.clone()
            self.counts = torch.ones((self.chunk_size, 1), dtype=torch.long, device=actions.device)
        else:
            # Steps already in the ensemble gain the new chunk's prediction with the next weight.
            running = self.ensembled_actions * cumsum[self.counts - 1]
            running = running + actions[:, :-1] * weights[self.counts]
            self.ensembled_actions = running / cumsum[self.counts]
            self.counts = torch.clamp(self.counts + 1, max=self.chunk_size)
            # The chunk's last step is new.
            self.ensembled_actions = torch.cat([self.ensembled_actions, actions[:, -1:]], dim=1)
            self.counts = torch.cat([self.counts, torch.ones_like(self.counts[-1:])])
        action = self.ensembled_actions[:, 0]
        self.ensembled_actions, self.counts = self.ensembled_actions[:, 1:], self.counts[1:]
        return action


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
            weight = self.encoder_latent_input_proj.weight
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
            feature_map = self.backbone(inference_layout(image, self.training))["feature_map"]  # (B, C, h, w)
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
            zero_queries=True,
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
        self.linear1 = Linear(dim, config.dim_feedforward)
        self.dropout = Dropout(config.dropout)
        self.linear2 = Linear(config.dim_feedforward, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.dropout1 = Dropout(config.dropout)
        self.dropout2 = Dropout(config.dropout)
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
        zero_queries: bool = False,
    ) -> Tensor:
        """``zero_queries``: ``x`` is all zeros (ACT's queries), which the first layer can exploit."""
        for i, layer in enumerate(self.layers):
            x = layer(
                x,
                memory,
                decoder_pos_embed=decoder_pos_embed,
                encoder_pos_embed=encoder_pos_embed,
                uniform_rows=zero_queries and i == 0,
            )
        return self.norm(x)


class ACTDecoderLayer(nn.Module):
    """Self-attention over the queries, cross-attention to the encoder memory, feed-forward."""

    def __init__(self, config: ACTConfig):
        super().__init__()
        dim = config.dim_model
        self.self_attn = nn.MultiheadAttention(dim, config.n_heads, dropout=config.dropout)
        self.multihead_attn = nn.MultiheadAttention(dim, config.n_heads, dropout=config.dropout)
        self.linear1 = Linear(dim, config.dim_feedforward)
        self.dropout = Dropout(config.dropout)
        self.linear2 = Linear(config.dim_feedforward, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)
        self.dropout1 = Dropout(config.dropout)
        self.dropout2 = Dropout(config.dropout)
        self.dropout3 = Dropout(config.dropout)
        self.activation = get_activation_fn(config.feedforward_activation)
        self.pre_norm = config.pre_norm

    def forward(
        self,
        x: Tensor,
        memory: Tensor,
        decoder_pos_embed: Tensor | None = None,
        encoder_pos_embed: Tensor | None = None,
        uniform_rows: bool = False,
    ) -> Tensor:
        """``uniform_rows``: every row of ``x`` (token and batch) is the same vector."""

        def with_pos(t: Tensor, pos: Tensor | None) -> Tensor:
            return t if pos is None else t + pos

        skip = x
        if self.pre_norm:
            x = self.norm1(x)
        if uniform_rows and not self.training:
            # Each softmax row sums to one over identical value rows, so without attention dropout
            # the output is out_proj(v_proj(row)) at every position, whatever the positions say.
            attended = self.self_attn.out_proj(_value_projection(self.self_attn, x[:1, :1])).expand_as(x)
        else:
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


def _value_projection(attention: nn.MultiheadAttention, x: Tensor) -> Tensor:
    """The value input projection of ``nn.MultiheadAttention`` on its own."""
    dim = attention.embed_dim
    weight = attention.in_proj_weight[2 * dim :] if attention._qkv_same_embed_dim else attention.v_proj_weight
    bias = None if attention.in_proj_bias is None else attention.in_proj_bias[2 * dim :]
    return F.linear(x, weight, bias)


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
