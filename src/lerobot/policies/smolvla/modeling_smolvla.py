"""SmolVLA, readable top to bottom (Shukor et al. 2025, https://arxiv.org/abs/2506.01844).

A small vision-language model (SmolVLM2, its text stack cut to ``num_vlm_layers``) reads the
cameras, the task and the robot state; a narrower "action expert" (the same Llama layer type at
``expert_width_multiplier`` of the width) turns noisy actions into a flow-matching velocity while
attending to the VLM's keys and values. Acting integrates that velocity from noise to an action
chunk (:func:`~lerobot.policies.vla_common.euler_sample`).

Token sequence and who sees whom (one row per query block)::

    prefix = [cam_1 tokens ... cam_k tokens, task tokens] [state]      suffix = [a_1] [a_2] ... [a_T]
    images + task: see each other (one block)
    state:         sees images, task, itself
    action a_i:    sees the whole prefix and a_1..a_i (``new_block`` flags 1 on every action)

Layer by layer (``attention_mode="cross_attn"``), VLM layer i and expert layer i run together:
in every ``self_attn_every_n_layers``-th layer the prefix and the suffix attend jointly (one
attention over the concatenated queries/keys/values of both stacks); in the others the prefix
self-attends and the expert's queries cross-attend to the VLM's keys/values, which the expert
re-projects with its own ``k_proj``/``v_proj`` (VLM kv width -> expert kv width). At inference the
prefix's keys/values are computed once per chunk and cached; each Euler step runs the expert only.

Parameter names are LeRobot's (``model.vlm_with_expert.vlm.model.text_model.layers.0...``,
``model.vlm_with_expert.lm_expert.layers.0...``, ``model.state_proj``, ``model.action_in_proj``...),
so LeRobot's SmolVLA checkpoints load here and act alike. The VLM is ``transformers``'
``SmolVLMForConditionalGeneration``, the expert its ``LlamaModel``; this module composes their
layers (norms, projections, MLPs) with its own attention, masks and RoPE.
"""

from __future__ import annotations

import copy
import math
import shutil
import warnings
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
import torch.utils.checkpoint
from torch import Tensor, nn

from lerobot.configs.types import ACTION, OBS_STATE, is_empty_camera_slot
from lerobot.policies.pretrained import PolicyAction, PreTrainedPolicy, inference_step, loading_checkpoint_dir
from lerobot.policies.rtc.modeling_rtc import RTCGuide
from lerobot.policies.smolvla.configuration_smolvla import SmolVLAConfig
from lerobot.policies.vla_common import (
    LANG_MASK,
    LANG_TOKENS,
    VLAGraph,
    block_attention_mask,
    checkpoint_dir_of,
    flow_matching_target,
    flow_sample_with_guide,
    instruction_metadata,
    load_backbone_config,
    load_pretrained_model,
    load_tokenizer,
    pad_vector,
    resize_with_pad,
    resolve_pretrained_source,
    sample_flow_time,
    scale_to_symmetric,
    sinusoidal_time_embedding,
    tokenize_tasks,
    vla_rtc_guide,
)

TASK = "task"
ROPE_WAVELENGTH = 10_000
KVCache = dict[int, tuple[Tensor, Tensor]]
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf")
CHECKPOINT_FILES = ("config.json", "model.safetensors", "train_config.json")


class UnknownBackboneError(ValueError):
    """``vlm_model_name`` names a model that is not a SmolVLM."""


# ---- attention helpers ------------------------------------------------------------------------------
def apply_rope(x: Tensor, positions: Tensor) -> Tensor:
    """Rotary position embedding of ``x`` (B, L, H, D) at integer ``positions`` (B, L), rotate-half layout."""
    half = x.shape[-1] // 2
    exponents = torch.arange(half, dtype=torch.float32, device=x.device) * (2.0 / x.shape[-1])
    angle = positions[..., None].float() / (ROPE_WAVELENGTH**exponents)  # (B, L, D/2)
    sin, cos = angle.sin()[:, :, None, :], angle.cos()[:, :, None, :]
    x1, x2 = x.float().split(half, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(x.dtype)


def attend(query: Tensor, key: Tensor, value: Tensor, mask: Tensor) -> Tensor:
    """Grouped-query attention: ``query`` (B, Lq, Hq, D), ``key``/``value`` (B, Lk, Hkv, D), ``mask``
    (B, Lq, Lk) bool -> (B, Lq, Hq * D).

    Masked scores get float32's lowest value rather than -inf, so a query that may see nothing (a
    padded token) averages uniformly instead of producing NaN; its output is never used.
    """
    groups = query.shape[2] // key.shape[2]
    q = query.transpose(1, 2).float()
    k = key.repeat_interleave(groups, dim=2).transpose(1, 2).float()
    v = value.repeat_interleave(groups, dim=2).transpose(1, 2)
    bias = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
    bias = bias.masked_fill(~mask, torch.finfo(torch.float32).min)[:, None]
    out = F.scaled_dot_product_attention(q, k, v.float(), attn_mask=bias).to(value.dtype)
    return out.transpose(1, 2).reshape(query.shape[0], query.shape[1], -1)


def _project_qkv(layer: nn.Module, hidden: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """A Llama layer's pre-norm and q/k/v projections, split into heads: 3 x (B, L, heads, head_dim)."""
    attn = layer.self_attn
    x = layer.input_layernorm(hidden).to(attn.q_proj.weight.dtype)
    shape = (*x.shape[:-1], -1, attn.head_dim)
    return attn.q_proj(x).view(shape), attn.k_proj(x).view(shape), attn.v_proj(x).view(shape)


def _finish_layer(layer: nn.Module, hidden: Tensor, attention_out: Tensor) -> Tensor:
    """Output projection + residual, then the post-norm MLP + residual, of a Llama layer."""
    attn = layer.self_attn
    hidden = hidden + attn.o_proj(attention_out.to(attn.o_proj.weight.dtype))
    return hidden + layer.mlp(layer.post_attention_layernorm(hidden))


def expert_intermediate_size(hidden: int, multiplier: int = 4, multiple_of: int = 256) -> int:
    """The expert MLP width: Llama's SwiGLU sizing (2/3 of ``multiplier x hidden``), rounded up to 256."""
    size = int(multiplier * int(2 * hidden / 3))
    return multiple_of * ((size + multiple_of - 1) // multiple_of)


# ---- the two transformer stacks ---------------------------------------------------------------------
class SmolVLMWithExpertModel(nn.Module):
    """The SmolVLM backbone (``vlm``) and the action expert (``lm_expert``), run layer by layer together."""

    def __init__(self, config: SmolVLAConfig, backbone_source: str, load_weights: bool):
        super().__init__()
        from transformers import AutoModel, SmolVLMConfig, SmolVLMForConditionalGeneration

        vlm_config = load_backbone_config(backbone_source)
        if not isinstance(vlm_config, SmolVLMConfig):
            raise UnknownBackboneError(
                f"vlm_model_name={config.vlm_model_name!r} describes a {type(vlm_config).__name__} "
                f"(model_type {getattr(vlm_config, 'model_type', '?')!r}); SmolVLA needs a SmolVLM backbone "
                "(model_type 'smolvlm', e.g. HuggingFaceTB/SmolVLM2-500M-Video-Instruct)."
            )
        if load_weights and torch.get_default_device().type != "meta":  # the memory estimate needs no weights
            self.vlm = load_pretrained_model(
                SmolVLMForConditionalGeneration, backbone_source, dtype=torch.float32
            )
        else:
            self.vlm = SmolVLMForConditionalGeneration(vlm_config)
        text = self.vlm.model.text_model
        if config.num_vlm_layers > 0:
            text.layers = text.layers[: config.num_vlm_layers]
        self.num_vlm_layers = len(text.layers)

        text_config = vlm_config.text_config
        expert_config = copy.deepcopy(text_config)
        expert_config.hidden_size = int(text_config.hidden_size * config.expert_width_multiplier)
        expert_config.intermediate_size = expert_intermediate_size(expert_config.hidden_size)
        expert_config.num_hidden_layers = self.num_vlm_layers
        if config.num_expert_layers > 0:
            if self.num_vlm_layers % config.num_expert_layers:
                raise ValueError(
                    f"num_expert_layers={config.num_expert_layers} must divide the {self.num_vlm_layers} VLM layers."
                )
            expert_config.num_hidden_layers = config.num_expert_layers
        expert_config.head_dim = text_config.head_dim
        self.lm_expert = AutoModel.from_config(expert_config)
        self.lm_expert.embed_tokens = None  # the expert reads embeddings, never token ids
        self.cross_attention = config.attention_mode == "cross_attn"
        self.self_attn_every_n_layers = config.self_attn_every_n_layers
        if self.cross_attention:
            # Cross-attention layers read the VLM's keys/values (kv heads x head_dim wide).
            vlm_kv = text_config.num_key_value_heads * text_config.head_dim
            expert_kv = expert_config.num_key_value_heads * expert_config.head_dim
            for i, layer in enumerate(self.lm_expert.layers):
                if not self._joint_layer(i):
                    bias = getattr(expert_config, "attention_bias", False)
                    layer.self_attn.k_proj = nn.Linear(vlm_kv, expert_kv, bias=bias)
                    layer.self_attn.v_proj = nn.Linear(vlm_kv, expert_kv, bias=bias)
        self.expert_every = self.num_vlm_layers // len(self.lm_expert.layers)
        self.freeze_vision_encoder = config.freeze_vision_encoder
        self.train_expert_only = config.train_expert_only
        self.gradient_checkpointing = (
            False  # recompute each layer in backward: less memory, ~30% more compute
        )
        self._set_requires_grad()

    @property
    def vlm_hidden_size(self) -> int:
        return self.vlm.config.text_config.hidden_size

    @property
    def expert_hidden_size(self) -> int:
        return self.lm_expert.config.hidden_size

    def _joint_layer(self, i: int) -> bool:
        """Whether layer i attends jointly (prefix + suffix) rather than cross-attending."""
        every = self.self_attn_every_n_layers
        return not self.cross_attention or (every > 0 and i % every == 0)

    def _expert_layer(self, i: int) -> nn.Module | None:
        """The expert layer paired with VLM layer i (with fewer expert layers, only every k-th VLM layer has one)."""
        if i % self.expert_every:
            return None
        return self.lm_expert.layers[i // self.expert_every]

    def _set_requires_grad(self) -> None:
        if self.freeze_vision_encoder:
            self.vlm.model.vision_model.requires_grad_(False)
        if self.train_expert_only:
            self.vlm.requires_grad_(False)

    def train(self, mode: bool = True) -> SmolVLMWithExpertModel:
        """Frozen parts stay in eval mode (no dropout) while the rest trains."""
        super().train(mode)
        if self.freeze_vision_encoder:
            self.vlm.model.vision_model.eval()
        if self.train_expert_only:
            self.vlm.eval()
        return self

    def embed_image(self, image: Tensor) -> Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, image tokens, VLM hidden): vision tower, pixel shuffle, projection."""
        vision = self.vlm.model.vision_model
        hidden = vision(
            pixel_values=image.to(vision.embeddings.patch_embedding.weight.dtype)
        ).last_hidden_state
        return self.vlm.model.connector(hidden)

    def embed_language_tokens(self, tokens: Tensor) -> Tensor:
        return self.vlm.model.text_model.get_input_embeddings()(tokens)

    def forward(
        self,
        mask: Tensor,
        positions: Tensor,
        prefix: Tensor | None,
        suffix: Tensor | None,
        cache: KVCache | None = None,
        fill_cache: bool = False,
    ) -> tuple[Tensor | None, Tensor | None, KVCache | None]:
        """Run both stacks over ``prefix`` (VLM) and ``suffix`` (expert) embeddings.

        ``mask`` (B, Lq, Lk) and ``positions`` (B, Lq) cover the queries present. Three uses:
        training (both given, no cache), filling the cache (prefix only, ``fill_cache``: returns the
        per-layer keys/values) and a denoising step (suffix only, ``cache`` from the prefix pass).
        Returns the final-normed prefix and suffix outputs and the cache.
        """
        if fill_cache:
            cache = {}
        for i in range(self.num_vlm_layers):
            if self.gradient_checkpointing and self.training and cache is None and torch.is_grad_enabled():
                prefix, suffix = torch.utils.checkpoint.checkpoint(
                    self._layer, i, mask, positions, prefix, suffix, None, False, use_reentrant=False
                )
            else:
                prefix, suffix = self._layer(i, mask, positions, prefix, suffix, cache, fill_cache)
        prefix = self.vlm.model.text_model.norm(prefix) if prefix is not None else None
        suffix = self.lm_expert.norm(suffix) if suffix is not None else None
        return prefix, suffix, cache

    def _layer(
        self,
        i: int,
        mask: Tensor,
        positions: Tensor,
        prefix: Tensor | None,
        suffix: Tensor | None,
        cache: KVCache | None,
        fill_cache: bool,
    ) -> tuple[Tensor | None, Tensor | None]:
        """VLM layer i and its expert partner: attention (joint or cross), then each stack's MLP."""
        vlm_layer, expert_layer = self.vlm.model.text_model.layers[i], self._expert_layer(i)
        if fill_cache or self._joint_layer(i):
            prefix_out, suffix_out = self._joint_attention(
                i, vlm_layer, expert_layer, prefix, suffix, mask, positions, cache, fill_cache
            )
        else:
            prefix_out, suffix_out = self._cross_attention(
                i, vlm_layer, expert_layer, prefix, suffix, mask, positions, cache
            )
        if prefix is not None:
            prefix = _finish_layer(vlm_layer, prefix, prefix_out)
        if suffix is not None and expert_layer is not None:
            suffix = _finish_layer(expert_layer, suffix, suffix_out)
        return prefix, suffix

    def _joint_attention(
        self,
        i: int,
        vlm_layer: nn.Module,
        expert_layer: nn.Module | None,
        prefix: Tensor | None,
        suffix: Tensor | None,
        mask: Tensor,
        positions: Tensor,
        cache: KVCache | None,
        fill_cache: bool,
    ) -> tuple[Tensor | None, Tensor | None]:
        """One attention over the prefix and suffix tokens together (cached prefix keys prepended)."""
        parts = []
        if prefix is not None:
            parts.append(_project_qkv(vlm_layer, prefix))
        if suffix is not None and expert_layer is not None:
            parts.append(_project_qkv(expert_layer, suffix))
        if not parts:  # a denoising step through a VLM layer that has no expert partner
            return None, None
        q, k, v = (torch.cat(x, dim=1) for x in zip(*parts, strict=True))
        n = q.shape[1]
        q, k = apply_rope(q, positions[:, :n]), apply_rope(k, positions[:, :n])
        if fill_cache:
            cache[i] = (k, v)
        elif cache is not None:
            k, v = torch.cat([cache[i][0], k], dim=1), torch.cat([cache[i][1], v], dim=1)
        out = attend(q, k, v, mask[:, :n, : k.shape[1]])
        split = prefix.shape[1] if prefix is not None else 0
        return (out[:, :split] if prefix is not None else None), (
            out[:, split:] if suffix is not None else None
        )

    def _cross_attention(
        self,
        i: int,
        vlm_layer: nn.Module,
        expert_layer: nn.Module | None,
        prefix: Tensor | None,
        suffix: Tensor | None,
        mask: Tensor,
        positions: Tensor,
        cache: KVCache | None,
    ) -> tuple[Tensor | None, Tensor | None]:
        """The prefix self-attends; the expert's queries attend to the VLM's (re-projected) keys/values."""
        prefix_out = None
        if prefix is not None:
            n = prefix.shape[1]
            q, k, v = _project_qkv(vlm_layer, prefix)
            q, k = apply_rope(q, positions[:, :n]), apply_rope(k, positions[:, :n])
            prefix_out = attend(q, k, v, mask[:, :n, :n])
            suffix_positions = positions[:, n:]
        else:
            k, v = cache[i]
            suffix_positions = positions
        if suffix is None or expert_layer is None:
            return prefix_out, None
        attn = expert_layer.self_attn
        x = expert_layer.input_layernorm(suffix).to(attn.q_proj.weight.dtype)
        q = attn.q_proj(x).view(*x.shape[:-1], -1, attn.head_dim)
        dtype = attn.k_proj.weight.dtype
        k = attn.k_proj(k.flatten(2).to(dtype)).view(*k.shape[:2], -1, attn.head_dim)
        v = attn.v_proj(v.flatten(2).to(dtype)).view(*v.shape[:2], -1, attn.head_dim)
        # The action tokens' own positions count from 0 in cross-attention.
        q = apply_rope(q, suffix_positions - suffix_positions.min(dim=1, keepdim=True).values)
        suffix_mask = mask[:, -suffix.shape[1] :, : k.shape[1]]
        return prefix_out, attend(q, k, v, suffix_mask)


# ---- flow matching over the two stacks --------------------------------------------------------------
class VLAFlowMatching(nn.Module):
    """Embeddings in and out of the two stacks, the training loss and the sampler."""

    def __init__(
        self,
        config: SmolVLAConfig,
        backbone_source: str,
        image_token_ids: tuple[int, int] | None,
        load_vlm_weights: bool = False,
    ):
        super().__init__()
        self.config = config
        self.vlm_with_expert = SmolVLMWithExpertModel(config, backbone_source, load_vlm_weights)
        vlm_width, expert_width = (
            self.vlm_with_expert.vlm_hidden_size,
            self.vlm_with_expert.expert_hidden_size,
        )
        self.state_proj = nn.Linear(config.max_state_dim, vlm_width)
        self.action_in_proj = nn.Linear(config.max_action_dim, expert_width)
        self.action_out_proj = nn.Linear(expert_width, config.max_action_dim)
        self.action_time_mlp_in = nn.Linear(2 * expert_width, expert_width)
        self.action_time_mlp_out = nn.Linear(expert_width, expert_width)
        self.state_proj.requires_grad_(config.train_state_proj)
        # <fake_token_around_image>, <global-img>: the markers around each camera's tokens (optional).
        self.image_token_ids = image_token_ids

    def embed_prefix(
        self,
        images: Sequence[Tensor],
        image_masks: Sequence[Tensor],
        tokens: Tensor,
        token_mask: Tensor,
        state: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``(embeddings (B, P, W), pad mask (B, P), new-block flags (B, P))`` of cameras, task and state.

        Image and text embeddings are scaled by sqrt(width), as the VLM's own text embeddings are
        in pretraining; the state is one projected token that opens its own attention block.
        """
        vlm = self.vlm_with_expert
        batch = state.shape[0]
        embs, pads = [], []
        for image, image_mask in zip(images, image_masks, strict=True):
            img = vlm.embed_image(image)
            img = img * math.sqrt(img.shape[-1])
            parts = [img]
            if self.image_token_ids is not None:
                start = vlm.embed_language_tokens(torch.tensor(self.image_token_ids, device=state.device))
                end = vlm.embed_language_tokens(torch.tensor(self.image_token_ids[:1], device=state.device))
                parts = [start.expand(batch, -1, -1), img, end.expand(batch, -1, -1)]
            for part in parts:
                embs.append(part.to(img.dtype))
                pads.append(image_mask[:, None].expand(batch, part.shape[1]))
        lang = vlm.embed_language_tokens(tokens)
        embs.append(lang * math.sqrt(lang.shape[-1]))
        pads.append(token_mask)
        state_emb = self.state_proj(state)
        embs.append(state_emb[:, None].to(embs[0].dtype))
        pads.append(torch.ones(batch, 1, dtype=torch.bool, device=state.device))
        emb, pad = torch.cat(embs, dim=1), torch.cat(pads, dim=1)
        new_block = torch.zeros_like(pad)
        new_block[:, -1] = True
        if self.config.prefix_length > 0 and emb.shape[1] < self.config.prefix_length:
            extra = self.config.prefix_length - emb.shape[1]
            emb = F.pad(emb, (0, 0, 0, extra))
            pad, new_block = F.pad(pad, (0, extra)), F.pad(new_block, (0, extra))
        return emb, pad, new_block

    def embed_suffix(self, noisy_actions: Tensor, time: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Noisy actions mixed with the flow time: ``[action_in_proj(x_t), emb(t)] -> MLP (SiLU)`` per step."""
        action = self.action_in_proj(noisy_actions)
        time_emb = sinusoidal_time_embedding(
            time, action.shape[-1], self.config.min_period, self.config.max_period
        ).to(action.dtype)
        x = torch.cat([action, time_emb[:, None].expand_as(action)], dim=-1)
        x = self.action_time_mlp_out(F.silu(self.action_time_mlp_in(x)))
        ones = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        return x, ones, ones  # every action token opens a block: causal over the chunk

    def forward(
        self,
        images: Sequence[Tensor],
        image_masks: Sequence[Tensor],
        tokens: Tensor,
        token_mask: Tensor,
        state: Tensor,
        actions: Tensor,
        noise: Tensor | None = None,
        time: Tensor | None = None,
    ) -> Tensor:
        """Element-wise squared error (B, T, max_action_dim) between predicted and true velocity."""
        if noise is None:
            noise = torch.randn_like(actions)
        if time is None:
            time = sample_flow_time(actions.shape[0], actions.device)
        x_t, u_t = flow_matching_target(actions, noise, time)
        prefix, prefix_pad, prefix_blocks = self.embed_prefix(images, image_masks, tokens, token_mask, state)
        suffix, suffix_pad, suffix_blocks = self.embed_suffix(x_t, time)
        pad = torch.cat([prefix_pad, suffix_pad], dim=1)
        mask = block_attention_mask(pad, torch.cat([prefix_blocks, suffix_blocks], dim=1))
        positions = torch.cumsum(pad.long(), dim=1) - 1
        _, out, _ = self.vlm_with_expert(mask, positions, prefix, suffix)
        v_t = self.action_out_proj(out[:, -self.config.chunk_size :].float())
        return F.mse_loss(u_t, v_t, reduction="none")

    def sample_actions(
        self,
        images: Sequence[Tensor],
        image_masks: Sequence[Tensor],
        tokens: Tensor,
        token_mask: Tensor,
        state: Tensor,
        noise: Tensor | None = None,
        guide: RTCGuide | None = None,
    ) -> Tensor:
        """Normalised, padded action chunk (B, chunk_size, max_action_dim) integrated from ``noise``.

        ``guide``: real-time chunking towards the previous chunk (:mod:`lerobot.policies.rtc`); the
        prefix (and its key/value cache) is still computed once per chunk.
        """
        batch = state.shape[0]
        if noise is None:
            shape = (batch, self.config.chunk_size, self.config.max_action_dim)
            noise = torch.randn(shape, device=state.device, dtype=torch.float32)
        prefix, prefix_pad, prefix_blocks = self.embed_prefix(images, image_masks, tokens, token_mask, state)
        prefix_mask = block_attention_mask(prefix_pad, prefix_blocks)
        prefix_positions = torch.cumsum(prefix_pad.long(), dim=1) - 1
        use_cache = self.config.use_cache
        conditioning: dict[str, Any] = {"pad": prefix_pad, "len": prefix_pad.sum(dim=1, keepdim=True)}
        if use_cache:
            _, _, conditioning["cache"] = self.vlm_with_expert(
                prefix_mask, prefix_positions, prefix, None, fill_cache=True
            )
        else:
            conditioning.update(prefix=prefix, blocks=prefix_blocks)

        def velocity(x_t: Tensor, t: Tensor, cond: dict[str, Any]) -> Tensor:
            suffix, suffix_pad, suffix_blocks = self.embed_suffix(x_t, t)
            suffix_mask = block_attention_mask(suffix_pad, suffix_blocks)
            if use_cache:
                seen = cond["pad"][:, None, :].expand(-1, suffix.shape[1], -1)
                mask = torch.cat([seen, suffix_mask], dim=2)
                positions = cond["len"] + torch.cumsum(suffix_pad.long(), dim=1) - 1
                _, out, _ = self.vlm_with_expert(mask, positions, None, suffix, cache=cond["cache"])
            else:
                pad = torch.cat([cond["pad"], suffix_pad], dim=1)
                mask = block_attention_mask(pad, torch.cat([cond["blocks"], suffix_blocks], dim=1))
                positions = torch.cumsum(pad.long(), dim=1) - 1
                _, out, _ = self.vlm_with_expert(mask, positions, cond["prefix"], suffix)
            return self.action_out_proj(out[:, -self.config.chunk_size :].float())

        return flow_sample_with_guide(velocity, noise, self.config.num_steps, guide, conditioning)


# ---- the policy --------------------------------------------------------------------------------------
class SmolVLAPolicy(PreTrainedPolicy):
    """SmolVLA with its tokenizer, normalisation and action queue: raw observations + task in, robot units out.

    Observations and batches carry the instruction as ``"task"`` (a string or one per sample, as
    ``LeRobotDataset`` items do); ``"observation.language.tokens"`` / ``".attention_mask"``, when
    present, are used as already tokenised.
    """

    config_class = SmolVLAConfig
    name = "smolvla"
    takes_instruction = True

    def __init__(self, config: SmolVLAConfig, dataset_stats: dict[str, dict[str, Any]] | None = None):
        super().__init__(config, dataset_stats)
        self.checkpoint_dir = checkpoint_dir_of(config)
        self.backbone_source = resolve_pretrained_source(config.vlm_model_name, self.checkpoint_dir)
        self.tokenizer = load_tokenizer(self.backbone_source)
        image_token_ids = None
        if config.add_image_special_tokens:
            markers = ("<fake_token_around_image>", "<global-img>")
            image_token_ids = tuple(self.tokenizer.convert_tokens_to_ids(t) for t in markers)
            if any(i is None or i == self.tokenizer.unk_token_id for i in image_token_ids):
                raise ValueError(
                    f"add_image_special_tokens=true needs the tokenizer of {config.vlm_model_name!r} to know "
                    f"{list(markers)} (SmolVLM's do); set it to false or use a SmolVLM tokenizer."
                )
        # A checkpoint's own weights replace the backbone's: read them only for a new policy.
        load_vlm_weights = config.load_vlm_weights and loading_checkpoint_dir() is None
        self.model = VLAFlowMatching(config, self.backbone_source, image_token_ids, load_vlm_weights)
        self.reset()

    def reset(self) -> None:
        self._action_queue: deque[Tensor] = deque(maxlen=self.config.n_action_steps)
        rtc = self.config.rtc_config
        self.rtc_debug: deque[dict[str, float]] = deque(maxlen=rtc.debug_maxlen if rtc else 1)
        """With ``rtc_config.debug``: each guided denoising step's weight and prefix error."""

    @classmethod
    def supports_rtc(cls) -> bool:
        return True

    def default_peft_targets(self) -> dict[str, Any]:
        """LoRA defaults for ``--peft.*``: adapters on the query/value projections of the VLM's text
        layers and of the action expert; the state/action projections (which a new robot's state and
        action spaces need re-learnt) train in full."""
        return {
            "target_modules": r"model\.vlm_with_expert\.(vlm\.model\.text_model|lm_expert)\.layers\.\d+\.self_attn\.(q_proj|v_proj)",
            "full_training_modules": [
                "model.state_proj",
                "model.action_in_proj",
                "model.action_out_proj",
                "model.action_time_mlp_in",
                "model.action_time_mlp_out",
            ],
        }

    def gradient_checkpointing_enable(self, enable: bool = True) -> None:
        """Recompute each transformer layer's activations during backward instead of storing them.

        Trades compute for memory when fine-tuning the whole VLM; results are unchanged. Not a
        config field (LeRobot's SmolVLA config has none): ``lerobot-train --gradient_checkpointing=true``
        or this call switches it on.
        """
        self.model.vlm_with_expert.gradient_checkpointing = enable

    # ---- inputs -----------------------------------------------------------------------------------
    def prepare_images(self, batch: dict[str, Any]) -> tuple[list[Tensor], list[Tensor]]:
        """Each camera (B, 3, H, W) in [0, 1] -> resized with padding, in [-1, 1]; plus its (B,) mask.

        Cameras the config lists but the batch lacks are left out, except that up to
        ``empty_cameras`` of them become padding: an all -1 image whose tokens are masked out (as
        LeRobot does, so checkpoints trained with more cameras act alike).
        """
        present = [k for k in self.config.image_features if k in batch]
        missing = [k for k in self.config.image_features if k not in batch]
        only_padding = self.config.empty_cameras > 0 and all(
            map(is_empty_camera_slot, self.config.image_features)
        )
        if not present and not only_padding:
            raise ValueError(
                f"SmolVLA: no camera in the batch; it expects one or more of {sorted(self.config.image_features)}, "
                f"got {sorted(k for k in batch if not k.startswith(LANG_TOKENS))}. Rename yours with --rename_map "
                "(or predict(..., rename_map=...))."
            )
        real_missing = [k for k in missing if not is_empty_camera_slot(k)]
        if real_missing and not getattr(self, "_warned_missing_cameras", False):
            self._warned_missing_cameras = True
            warnings.warn(
                f"SmolVLA: cameras {real_missing} are not in the batch (it has {present}); they are left out.",
                stacklevel=3,
            )
        images, masks = [], []
        for name in present:
            img = batch[name]
            img = img[:, -1] if img.dim() == 5 else img
            if self.config.resize_imgs_with_padding is not None:
                img = resize_with_pad(img, *self.config.resize_imgs_with_padding, pad="left_top")
            images.append(scale_to_symmetric(img))
            masks.append(torch.ones(img.shape[0], dtype=torch.bool, device=img.device))
        for _ in range(min(len(missing), self.config.empty_cameras)):
            images.append(torch.full_like(images[0], -1.0) if images else self._blank_camera(batch))
            masks.append(torch.zeros(images[-1].shape[0], dtype=torch.bool, device=images[-1].device))
        return images, masks

    def _blank_camera(self, batch: dict[str, Any]) -> Tensor:
        """An all -1 padding image at the resized size, for a policy without any real camera (e.g. one
        trained on the task and the state alone): its tokens are masked out like any padding camera's."""
        state = batch[OBS_STATE]
        size = (
            self.config.resize_imgs_with_padding or next(iter(self.config.image_features.values())).shape[1:]
        )
        return torch.full((state.shape[0], 3, *size), -1.0, dtype=state.dtype, device=state.device)

    def prepare_language(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """Token ids and mask of the batch's task strings (or its pre-tokenised ones)."""
        if LANG_TOKENS in batch and LANG_MASK in batch:
            return batch[LANG_TOKENS].to(self.device).long(), batch[LANG_MASK].to(self.device).bool()
        tasks = batch.get(TASK)
        if tasks is None:
            raise ValueError(
                "SmolVLA needs the instruction: put it in the observation/batch as 'task' (a string, or one per "
                "sample). LeRobotDataset items carry it; for a robot or env, add obs['task'] = 'pick up the cube'."
            )
        size = self._batch_size(batch)
        tasks = [tasks] * size if isinstance(tasks, str) else list(tasks)
        if len(tasks) != size:
            raise ValueError(f"SmolVLA: {len(tasks)} task strings for a batch of {size}.")
        return tokenize_tasks(
            self.tokenizer,
            tasks,
            self.config.tokenizer_max_length,
            padding=self.config.pad_language_to,
            padding_side="right",
            device=self.device,
        )

    def _batch_size(self, batch: dict[str, Any]) -> int:
        for name in (OBS_STATE, *self.config.image_features):
            if isinstance(batch.get(name), Tensor):
                return batch[name].shape[0]
        raise ValueError(f"SmolVLA: the batch holds no observation tensor; got {sorted(batch)}.")

    def _prepare(self, batch: dict[str, Any]) -> tuple[list[Tensor], list[Tensor], Tensor, Tensor, Tensor]:
        images, image_masks = self.prepare_images(batch)
        tokens, token_mask = self.prepare_language(batch)
        state = batch.get(OBS_STATE)
        if state is None:
            state = torch.zeros(images[0].shape[0], self.config.max_state_dim, device=images[0].device)
        state = state[:, -1] if state.dim() > 2 else state
        return images, image_masks, tokens, token_mask, pad_vector(state, self.config.max_state_dim)

    def _non_camera_features(self) -> dict[str, Any]:
        return {k: f for k, f in self.config.input_features.items() if k not in self.config.image_features}

    def _observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        obs = self.prepare_observation(observation)
        self._check_images(obs)
        self.check_features(obs, self._non_camera_features())
        return self.normalize_inputs(obs)

    def _check_images(self, batch: dict[str, Any]) -> None:
        """Cameras must have the configured channel count (any size: they are resized with padding)."""
        for name, ft in self.config.image_features.items():
            img = batch.get(name)
            if isinstance(img, Tensor) and (img.dim() not in (4, 5) or img.shape[-3] != ft.shape[0]):
                raise ValueError(
                    f"SmolVLA: camera {name!r} has shape {tuple(img.shape)}; expected (B, {ft.shape[0]}, H, W) "
                    "floats in [0, 1] (or H x W x C uint8 for one frame)."
                )

    # ---- acting ----------------------------------------------------------------------------------
    def _sample(self, batch: dict[str, Any], noise: Tensor | None, guide: RTCGuide | None = None) -> Tensor:
        images, image_masks, tokens, token_mask, state = self._prepare(batch)
        actions = self.model.sample_actions(
            images, image_masks, tokens, token_mask, state, noise=noise, guide=guide
        )
        if guide is not None and guide.trace is not None:
            self.rtc_debug.extend(guide.trace)
        return actions[..., : self.config.action_feature.shape[0]]

    @inference_step
    def predict_action_chunk(
        self,
        observation: dict[str, Any],
        noise: Tensor | None = None,
        inference_delay: int | None = None,
        prev_chunk_left_over: Any = None,
    ) -> Tensor:
        """Raw observation + task -> (B, chunk_size, A) actions in robot units.

        ``noise`` (B, chunk_size, max_action_dim) is the flow's starting sample in the normalised,
        padded action space (drawn when omitted). With ``config.rtc_config`` enabled,
        ``prev_chunk_left_over`` ``(P, A)`` (robot units: the previous chunk's actions from this
        observation's step on) and ``inference_delay`` (control steps this chunk takes) make it a
        real-time-chunking inpainting of those actions; otherwise plain sampling.
        """
        guide = vla_rtc_guide(self, prev_chunk_left_over, inference_delay)
        chunk = self._sample(self._observation(observation), noise, guide)
        return self.unnormalize_outputs({ACTION: chunk})[ACTION]

    @inference_step
    def select_action(self, observation: dict[str, Any], noise: Tensor | None = None) -> PolicyAction:
        """Raw observation + task -> ``{"action": (B, A)}`` in robot units; a new chunk every n_action_steps."""
        if not self._action_queue:
            chunk = self._sample(self._observation(observation), noise)[:, : self.config.n_action_steps]
            self._action_queue.extend(chunk.transpose(0, 1))
        action = self._action_queue.popleft()
        return PolicyAction(action=self.unnormalize_outputs({ACTION: action})[ACTION])

    # ---- export ----------------------------------------------------------------------------------
    def _export_graph(self, camera_images: bool, draws: str, history: bool) -> VLAGraph:
        """Cameras, state, the task's token ids and mask (``"<task>\\n"`` padded to
        ``tokenizer_max_length``: the same actions as the eager policy's padding to the longest task,
        padding being masked out) and the flow's noise -> the chunk (:class:`VLAGraph`)."""
        cfg = self.config
        embeddings = self.model.vlm_with_expert.vlm.model.text_model.get_input_embeddings()
        instruction = instruction_metadata(
            self.tokenizer, cfg.vlm_model_name, cfg.tokenizer_max_length, embeddings.num_embeddings
        )
        return VLAGraph(self, camera_images, draws, instruction, cfg.num_steps)

    def _chunk_from_tokens(
        self, batch: dict[str, Tensor], tokens: Tensor, mask: Tensor, noise: Tensor
    ) -> Tensor:
        """Raw cameras (float, [0, 1]) and state + the task's tokens + noise -> the chunk in robot units."""
        batch = {**self.normalize_inputs(batch), LANG_TOKENS: tokens, LANG_MASK: mask}
        return self.unnormalize_outputs({ACTION: self._sample(batch, noise)})[ACTION]

    # ---- training --------------------------------------------------------------------------------
    def forward(
        self,
        batch: dict[str, Any],
        noise: Tensor | None = None,
        time: Tensor | None = None,
        reduction: str = "mean",
    ) -> dict[str, Any]:
        """Raw batch (with ``task``) -> ``{"loss": ...}``: flow-matching MSE over the real action dims.

        Padded steps (``action_is_pad``) are excluded: the loss is the mean over the valid steps'
        elements. ``reduction="none"`` gives one loss per sample (B,). ``noise`` (B, T, max_action_dim)
        and ``time`` (B,) fix the flow's sample (drawn when omitted).
        """
        if reduction not in ("mean", "none"):
            raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}.")
        batch = self.single_action_as_chunk(batch, self.config.chunk_size)
        batch = self.rename_observation(batch)
        self._check_images(batch)
        self.check_features(batch, self._non_camera_features())
        self.check_features(batch, self.config.output_features, time_steps=self.config.chunk_size)
        batch = self.normalize_targets(self.normalize_inputs(batch))
        images, image_masks, tokens, token_mask, state = self._prepare(batch)
        actions = pad_vector(batch[ACTION], self.config.max_action_dim)
        losses = self.model(images, image_masks, tokens, token_mask, state, actions, noise=noise, time=time)
        action_dim = self.config.action_feature.shape[0]
        losses = losses[..., :action_dim]
        is_pad = batch.get("action_is_pad")
        valid = (
            torch.ones(losses.shape[:2], dtype=losses.dtype, device=losses.device)
            if is_pad is None
            else (~is_pad.bool()).to(losses.dtype)
        )
        per_sample = (losses * valid[..., None]).sum(dim=(1, 2)) / (valid.sum(dim=1) * action_dim).clamp(
            min=1
        )
        if reduction == "none":
            return {"loss": per_sample}
        loss = (losses * valid[..., None]).sum() / (valid.sum() * action_dim).clamp(min=1)
        return {"loss": loss}

    # ---- checkpoints -----------------------------------------------------------------------------
    def extra_preprocessor_steps(self) -> list[dict[str, Any]]:
        """LeRobot's newline and tokenizer steps, so LeRobot tokenises the task as this class does."""
        return [
            {"registry_name": "smolvla_new_line_processor", "config": {}},
            {
                "registry_name": "tokenizer_processor",
                "config": {
                    "max_length": self.config.tokenizer_max_length,
                    "task_key": TASK,
                    "padding_side": "right",
                    "padding": self.config.pad_language_to,
                    "truncation": True,
                    "tokenizer_name": self.config.vlm_model_name,
                },
            },
        ]

    def save_pretrained(self, save_directory: str | Path, **kwargs: Any) -> Path:
        """Also store a local backbone folder inside the checkpoint, named relatively in config.json.

        The backbone's config and tokenizer files (never its weight files: those are in
        ``model.safetensors``) are copied to ``<checkpoint>/<folder name>``, so the checkpoint is
        self-contained and loads on another machine; a Hub id is written as is.
        """
        source = Path(self.backbone_source)
        if not source.is_dir():
            return super().save_pretrained(save_directory, **kwargs)
        save_directory = Path(save_directory)
        name = source.name if source.name not in CHECKPOINT_FILES else "vlm_backbone"
        target = save_directory / name
        target.mkdir(parents=True, exist_ok=True)
        for file in source.iterdir():
            if (
                file.is_file()
                and file.suffix not in WEIGHT_SUFFIXES
                and file.resolve() != (target / file.name).resolve()
            ):
                shutil.copy2(file, target / file.name)
        written_name, self.config.vlm_model_name = self.config.vlm_model_name, name
        try:
            return super().save_pretrained(save_directory, **kwargs)
        finally:
            self.config.vlm_model_name = written_name
