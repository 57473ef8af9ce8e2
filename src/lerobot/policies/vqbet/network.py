"""VQ-BeT's network: observation tokens -> GPT -> code and offset heads -> action chunks.

Shapes (B batch, S = n_obs_steps, N cameras, P = n_action_pred_token, W = action_chunk_size,
A action dim, D = gpt_input_dim, Q = S + P - 1 query tokens)::

    per step s: [camera_1 .. camera_N, state, ACT]     camera: ResNet -> spatial softmax -> linear -> D
                                                       state: [state, env state] -> linear -> D
                                                       ACT: the learned action-query token
    sequence: the S steps one after another, then P - 1 more ACT tokens         (B, S * (N + 2) + P - 1, D)
    GPT (causal) -> features at the ACT tokens                                  (B, Q, gpt_output_dim)
    head: per query token, logits of the primary and secondary code (2, K) and an offset (W * A) per code;
          codes drawn from softmax(logits / temperature); action chunk = decoder(e1[c1] + e2[c2])
          + offset[c1] + offset[c2]                                             (B, Q, W * A)
    executed: the chunk of the current step's ACT token, query S - 1            (B, W, A)

Training (phase 2; the tokenizer is frozen): query q's target is the chunk starting at action
q of the sample; loss = focal(primary code) * primary_code_loss_weight + focal(secondary code) *
secondary_code_loss_weight + L1(chunk) * offset_loss_weight, the true codes coming from the
tokenizer. Attribute names are LeRobot's, so its checkpoints load.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from lerobot.configs.types import ACTION, OBS_ENV_STATE, OBS_STATE
from lerobot.policies.diffusion.vision_encoder import DiffusionRgbEncoder
from lerobot.policies.vqbet.configuration_vqbet import VQBeTConfig
from lerobot.policies.vqbet.gpt import GPT
from lerobot.policies.vqbet.vqvae import NUM_RVQ_LAYERS, VqVae, mlp


class VQBeTHead(nn.Module):
    """GPT features -> code logits, drawn codes and action chunks (decoded codes plus offsets)."""

    def __init__(self, config: VQBeTConfig):
        super().__init__()
        self.config = config
        action_dim = config.action_feature.shape[0]
        n_codes, width = config.vqvae_n_embed, config.gpt_output_dim
        if config.sequentially_select:
            self.map_to_cbet_preds_primary_bin = mlp(width, [n_codes])
            self.map_to_cbet_preds_secondary_bin = mlp(width + n_codes, [n_codes])
        else:
            self.map_to_cbet_preds_bin = mlp(width, [NUM_RVQ_LAYERS * n_codes])
        chunk = config.action_chunk_size * action_dim
        self.map_to_cbet_preds_offset = mlp(width, [NUM_RVQ_LAYERS * n_codes * chunk])
        self.vqvae_model = VqVae(
            action_dim,
            config.action_chunk_size,
            config.vqvae_embedding_dim,
            config.vqvae_enc_hidden_dim,
            n_codes,
        )

    def forward(self, features: Tensor, uniforms: Tensor | None = None) -> dict[str, Tensor]:
        """(B, Q, F) features -> ``cbet_logits`` (B*Q, 2, K), ``sampled_centers`` (B*Q, 2),
        ``decoded_action`` (B*Q, W, A) and ``predicted_action`` (B, Q, W*A).

        ``uniforms`` (B, Q, 2) in [0, 1): the code draws given (inverse CDF, see ``draw_codes``) rather
        than made here: what an export takes as its input."""
        cfg = self.config
        b, q = features.shape[:2]
        x = features.flatten(0, 1)
        n_codes = cfg.vqvae_n_embed
        offsets = self.map_to_cbet_preds_offset(x).view(b * q, NUM_RVQ_LAYERS, n_codes, -1)
        if cfg.sequentially_select:
            primary_logits = self.map_to_cbet_preds_primary_bin(x)
            u = None if uniforms is None else uniforms.reshape(b * q, NUM_RVQ_LAYERS)
            primary = self.draw_codes(primary_logits, None if u is None else u[:, 0])
            secondary_logits = self._secondary_logits(x, primary)
            logits = torch.stack([primary_logits, secondary_logits], dim=1)
            codes = torch.stack(
                [primary, self.draw_codes(secondary_logits, None if u is None else u[:, 1])], -1
            )
        else:
            logits = self.map_to_cbet_preds_bin(x).view(b * q, NUM_RVQ_LAYERS, n_codes)
            u = None if uniforms is None else uniforms.reshape(-1)
            codes = self.draw_codes(logits.reshape(-1, n_codes), u).view(b * q, NUM_RVQ_LAYERS)
        rows = torch.arange(b * q, device=x.device)[:, None]
        layers = torch.arange(NUM_RVQ_LAYERS, device=x.device)[None]
        chosen_offsets = offsets[rows, layers, codes].sum(dim=1)  # (B*Q, W*A)
        with torch.no_grad():
            decoded = self.vqvae_model.decode_codes(codes)
        predicted = decoded + chosen_offsets.view_as(decoded)
        return {
            "cbet_logits": logits,
            "sampled_centers": codes,
            "decoded_action": decoded,
            "predicted_action": predicted.view(b, q, -1),
        }

    def draw_codes(self, logits: Tensor, uniform: Tensor | None = None) -> Tensor:
        """(M, K) logits -> (M,) codes from softmax(logits / temperature); greedy: the most probable.

        Sampling is one ``torch.multinomial`` call over all rows, as LeRobot's draw (so a seeded run
        on the same torch build draws the same codes). Given ``uniform`` (M,) in [0, 1), each row's
        code is the inverse CDF at it instead: the same distribution, from a draw made elsewhere
        (an exported graph has no random state; ONNX has no multinomial).
        """
        probs = torch.softmax(logits / self.config.bet_softmax_temperature, dim=-1)
        if self.config.greedy_decoding:
            return probs.argmax(dim=-1)
        if uniform is not None:
            below = (probs.cumsum(-1) <= uniform.unsqueeze(-1)).sum(-1)
            return below.clamp(max=probs.shape[-1] - 1)  # rounding can leave the last cumsum below u
        return torch.multinomial(probs, num_samples=1).squeeze(-1)

    def _secondary_logits(self, x: Tensor, primary: Tensor) -> Tensor:
        onehot = F.one_hot(primary, self.config.vqvae_n_embed).to(x.dtype)
        return self.map_to_cbet_preds_secondary_bin(torch.cat([x, onehot], dim=-1))

    def loss(
        self, features: Tensor, out: dict[str, Tensor], target: Tensor
    ) -> tuple[Tensor, dict[str, float]]:
        """Phase-2 loss for (B, Q, W, A) target chunks (see the module docstring)."""
        cfg = self.config
        target = target.flatten(0, 1)
        with torch.no_grad():
            codes = self.vqvae_model.get_code(target)  # (B*Q, 2) the tokenizer's codes of the targets
        predicted = out["predicted_action"].view_as(target)
        offset_loss = F.l1_loss(predicted, target)
        logits = out["cbet_logits"]
        secondary_logits = logits[:, 1]
        if cfg.sequentially_select:  # the secondary head is conditioned on the true primary code
            secondary_logits = self._secondary_logits(features.flatten(0, 1), codes[:, 0])
        primary_loss = focal_loss(logits[:, 0], codes[:, 0])
        secondary_loss = focal_loss(secondary_logits, codes[:, 1])
        loss = (
            cfg.primary_code_loss_weight * primary_loss
            + cfg.secondary_code_loss_weight * secondary_loss
            + cfg.offset_loss_weight * offset_loss
        )
        drawn = out["sampled_centers"]
        return loss, {
            "primary_code_loss": primary_loss.item(),
            "secondary_code_loss": secondary_loss.item(),
            "offset_loss": offset_loss.item(),
            "equal_primary_code_rate": (drawn[:, 0] == codes[:, 0]).float().mean().item(),
            "equal_secondary_code_rate": (drawn[:, 1] == codes[:, 1]).float().mean().item(),
            "vq_action_error": F.l1_loss(out["decoded_action"], target).item(),
        }


def focal_loss(logits: Tensor, target: Tensor, gamma: float = 2.0) -> Tensor:
    """Cross-entropy down-weighting well-classified samples by (1 - p)^gamma (Lin et al. 2017)."""
    log_p = F.log_softmax(logits, dim=-1).gather(1, target[:, None]).squeeze(1)
    return -((1 - log_p.exp()) ** gamma * log_p).mean()


class VQBeTModel(nn.Module):
    """Normalised observations -> tokens -> GPT -> head; see the module docstring for the layout."""

    def __init__(self, config: VQBeTConfig):
        super().__init__()
        self.config = config
        dim = config.gpt_input_dim
        if config.image_features:
            # Diffusion Policy's encoder (crop, ResNet, spatial softmax, linear + ReLU) is LeRobot's VQ-BeT
            # encoder layer for layer; it reads the vision fields and crop_size / image_size / resize_shape,
            # which VQBeTConfig provides. One encoder is shared by all cameras.
            self.rgb_encoder = DiffusionRgbEncoder(config)
            self.rgb_feature_projector = mlp(self.rgb_encoder.feature_dim, [dim])
        state_dim = config.robot_state_feature.shape[0]
        if config.env_state_feature is not None:
            state_dim += config.env_state_feature.shape[0]
        self.state_projector = mlp(state_dim, [dim])
        self.action_token = nn.Parameter(torch.randn(1, 1, dim))
        self.policy = GPT(
            config.gpt_input_dim,
            config.gpt_output_dim,
            config.gpt_hidden_dim,
            config.gpt_n_layer,
            config.gpt_n_head,
            config.gpt_block_size,
            config.dropout,
        )
        self.action_head = VQBeTHead(config)
        starts = torch.arange(config.n_query_tokens)[:, None]
        self.register_buffer("select_target_actions_indices", starts + torch.arange(config.action_chunk_size))

    def observation_tokens(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, S, ...) observations -> (B, S, N + 1, D): each step's camera tokens, then its state token."""
        cfg = self.config
        tokens = []
        state = batch[OBS_STATE]
        if cfg.image_features:
            images = torch.stack([batch[key] for key in cfg.image_features], dim=2)  # (B, S, N, C, H, W)
            features = self.rgb_encoder(images.flatten(0, 2)).unflatten(0, images.shape[:3])
            tokens.append(self.rgb_feature_projector(features))
        if cfg.env_state_feature is not None:
            state = torch.cat([state, batch[OBS_ENV_STATE]], dim=-1)
        tokens.append(self.state_projector(state).unsqueeze(2))
        return torch.cat(tokens, dim=2)

    def gpt_features(self, observation_tokens: Tensor) -> Tensor:
        """(B, S, N + 1, D) -> (B, Q, gpt_output_dim): GPT outputs at the action-query tokens."""
        b, s, per_step, dim = observation_tokens.shape
        queries = self.action_token.expand(b, s, dim).unsqueeze(2)
        steps = torch.cat([observation_tokens, queries], dim=2).flatten(1, 2)
        future = self.action_token.expand(b, self.config.n_action_pred_token - 1, dim)
        out = self.policy(torch.cat([steps, future], dim=1))
        at_steps = out[:, : s * (per_step + 1)].unflatten(1, (s, per_step + 1))[:, :, -1]
        return torch.cat([at_steps, out[:, s * (per_step + 1) :]], dim=1)

    def rollout(self, observation_tokens: Tensor, uniforms: Tensor | None = None) -> Tensor:
        """(B, S, N + 1, D) -> (B, W, A): the chunk predicted at the current step's action token.

        ``uniforms`` (B, Q, 2): the code draws given (see ``VQBeTHead.forward``)."""
        out = self.action_head(self.gpt_features(observation_tokens), uniforms)
        current = out["predicted_action"][:, self.config.n_obs_steps - 1]
        return current.view(current.shape[0], self.config.action_chunk_size, -1)

    def compute_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Any]]:
        """Phase-2 loss of a normalised batch: observations (B, S, ...), actions (B, S + P + W - 2, A)."""
        features = self.gpt_features(self.observation_tokens(batch))
        out = self.action_head(features)
        target = batch[ACTION][:, self.select_target_actions_indices]  # (B, Q, W, A)
        return self.action_head.loss(features, out, target)
