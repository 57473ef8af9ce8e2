"""PaliGemma and a Gemma action expert that attend jointly, layer by layer (π0 / π0.5's "mixture of experts").

Both transformers are stock ``transformers`` models (:class:`PaliGemmaForConditionalGeneration` --
SigLIP, projector, Gemma -- and :class:`GemmaForCausalLM` without its token embedding); what is ours
is how they run together. Every layer ``i`` of the two models processes its own tokens with its own
weights, but attention is one softmax over the concatenated sequence::

    prefix (images + prompt) --VLM layer i-->  q_p k_p v_p  \
                                                             > attention([q_p; q_s], [k_p; k_s], [v_p; v_s], mask)
    suffix (state + actions) --expert layer i--> q_s k_s v_s /     -> each part back through its own o_proj / MLP

so the two need the same head count and head size (a 2B VLM of width 2048 and a 300M expert of width
1024 both use 8 heads of 256). The mask is a prefix-LM mask (:func:`block_attention_mask`): the prefix
sees only itself, so its keys and values can be computed once per observation and reused by every
denoising step (:class:`PrefixCache`).

π0.5 conditions the expert on the flow time through adaptive RMSNorm: each of its norms is
:class:`AdaptiveRMSNorm`, whose ``dense`` layer maps the time embedding to a scale, a shift and a
gate; the gate multiplies the sub-block's output before the residual sum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

# Additive mask value: finite, so that a padded query (whose row is all masked) gets a uniform
# softmax instead of NaNs that would spread through the values of later layers.
MASKED = -2.3819763e38


def gemma_text_config(sizes: dict[str, int], vocab_size: int) -> Any:
    """A ``GemmaConfig`` of the given width/depth/mlp_dim/heads/head_dim."""
    from transformers import GemmaConfig

    return GemmaConfig(
        vocab_size=vocab_size,
        hidden_size=sizes["width"],
        intermediate_size=sizes["mlp_dim"],
        num_hidden_layers=sizes["depth"],
        num_attention_heads=sizes["num_heads"],
        num_key_value_heads=sizes["num_kv_heads"],
        head_dim=sizes["head_dim"],
        hidden_activation="gelu_pytorch_tanh",
        rms_norm_eps=1e-6,
        pad_token_id=0,
        tie_word_embeddings=False,
    )


class AdaptiveRMSNorm(nn.Module):
    """RMSNorm whose scale, shift and residual gate come from a conditioning vector (π0.5's time).

    ``dense`` maps ``cond`` (B, cond_dim) to ``3 * dim`` values; the normalised ``x`` becomes
    ``x * (1 + scale) + shift`` and ``gate`` multiplies what the sub-block adds back to the residual.
    """

    def __init__(self, dim: int, cond_dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.dense = nn.Linear(cond_dim, 3 * dim)
        nn.init.zeros_(self.dense.weight)  # the time enters through training, from a time-independent start

    def forward(self, x: Tensor, cond: Tensor) -> tuple[Tensor, Tensor]:
        normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        scale, shift, gate = self.dense(cond.to(self.dense.weight.dtype)).unsqueeze(1).chunk(3, dim=-1)
        out = normed * (1 + scale.float()) + shift.float()
        return out.to(x.dtype), gate.to(x.dtype)


def _norm(module: nn.Module, x: Tensor, cond: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """(normalised x, residual gate or None) for a Gemma RMSNorm or an :class:`AdaptiveRMSNorm`."""
    if isinstance(module, AdaptiveRMSNorm):
        return module(x, cond)
    return module(x), None


def _gated(residual: Tensor, update: Tensor, gate: Tensor | None) -> Tensor:
    return residual + (update if gate is None else update * gate)


def rotary_cos_sin(positions: Tensor, head_dim: int, theta: float = 10_000.0) -> tuple[Tensor, Tensor]:
    """RoPE tables ``(B, L, head_dim)`` for integer ``positions`` (B, L), in float32."""
    inv_freq = 1.0 / theta ** (
        torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim
    )
    freqs = positions.float()[..., None] * inv_freq
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def _rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Apply RoPE to ``x`` (B, heads, L, D) with ``cos``/``sin`` (B, L, D)."""
    from transformers.models.gemma.modeling_gemma import rotate_half

    cos, sin = cos[:, None].to(x.dtype), sin[:, None].to(x.dtype)
    return x * cos + rotate_half(x) * sin


@dataclass
class PrefixCache:
    """Keys and values (after RoPE) of the prefix at every layer, and which prefix tokens are real."""

    kv: list[tuple[Tensor, Tensor]]
    pad_mask: Tensor


class PaliGemmaWithExpert(nn.Module):
    """``paligemma`` (SigLIP + projector + Gemma) and ``gemma_expert`` (a Gemma without token embedding).

    ``adarms_cond_dim`` (π0.5) replaces the expert's RMSNorms by :class:`AdaptiveRMSNorm`.
    """

    def __init__(
        self,
        sizes: dict[str, Any],
        adarms_cond_dim: int | None = None,
        gradient_checkpointing: bool = False,
    ):
        super().__init__()
        from transformers import (
            GemmaForCausalLM,
            PaliGemmaConfig,
            PaliGemmaForConditionalGeneration,
            SiglipVisionConfig,
        )

        vision = sizes["vision"]
        vision_config = SiglipVisionConfig(
            hidden_size=vision["hidden_size"],
            intermediate_size=vision["intermediate_size"],
            num_hidden_layers=vision["num_hidden_layers"],
            num_attention_heads=vision["num_attention_heads"],
            patch_size=vision["patch_size"],
            image_size=vision["image_size"],
            projection_dim=vision["projection_dim"],
            hidden_act="gelu_pytorch_tanh",
            vision_use_head=False,
        )
        vocab = sizes["vocab_size"]
        text_config = gemma_text_config(sizes["vlm"], vocab)
        num_image_tokens = (vision["image_size"] // vision["patch_size"]) ** 2
        config = PaliGemmaConfig(
            vision_config=vision_config.to_dict(),
            text_config=text_config.to_dict(),
            vocab_size=vocab,
            projection_dim=vision["projection_dim"],
            hidden_size=sizes["vlm"]["width"],
            image_token_index=min(256_000, vocab - 1),
            tie_word_embeddings=False,  # LeRobot's checkpoints hold a separate lm_head
        )
        config.text_config.num_image_tokens = num_image_tokens
        config._attn_implementation = "eager"
        config.vision_config._attn_implementation = "eager"
        self.paligemma = PaliGemmaForConditionalGeneration(config)
        expert_config = gemma_text_config(sizes["action_expert"], vocab)
        expert_config._attn_implementation = "eager"
        self.gemma_expert = GemmaForCausalLM(expert_config)
        self.gemma_expert.model.embed_tokens = None  # the expert reads continuous action tokens only
        if adarms_cond_dim is not None:
            width = sizes["action_expert"]["width"]
            model = self.gemma_expert.model
            for layer in model.layers:
                layer.input_layernorm = AdaptiveRMSNorm(width, adarms_cond_dim)
                layer.post_attention_layernorm = AdaptiveRMSNorm(width, adarms_cond_dim)
            model.norm = AdaptiveRMSNorm(width, adarms_cond_dim)
        self.num_heads = sizes["vlm"]["num_heads"]
        self.num_kv_heads = sizes["vlm"]["num_kv_heads"]
        self.head_dim = sizes["vlm"]["head_dim"]
        self.gradient_checkpointing = gradient_checkpointing

    @property
    def language_model(self) -> nn.Module:
        return self.paligemma.model.language_model

    def embed_image(self, pixels: Tensor) -> Tensor:
        """``(B, 3, S, S)`` pixels in [-1, 1] -> ``(B, tokens, vlm width)`` image tokens (SigLIP + projector)."""
        return self.paligemma.model.get_image_features(pixels).pooler_output

    def embed_language_tokens(self, ids: Tensor) -> Tensor:
        """Token ids -> Gemma's input embeddings, ``sqrt(width) * table[ids]`` as Gemma was trained.

        Computed from the table directly: whether ``embed_tokens`` itself scales depends on the
        transformers version.
        """
        table = self.language_model.embed_tokens.weight
        return F.embedding(ids, table) * math.sqrt(table.shape[1])

    # ---- the joint transformer -------------------------------------------------------------------
    def forward(
        self,
        prefix: Tensor | None,
        suffix: Tensor | None,
        attention_mask: Tensor,
        positions: Tensor,
        cache: PrefixCache | None = None,
        adarms_cond: Tensor | None = None,
        store_cache: bool = False,
    ) -> tuple[Tensor | None, Tensor | None, list[tuple[Tensor, Tensor]]]:
        """Run the prefix and/or suffix tokens through every layer of their model.

        ``attention_mask`` (B, Lq, Lk) bool over the tokens given (and, with ``cache``, the cached
        prefix keys first); ``positions`` (B, Lq) their RoPE positions. Returns both outputs (after each
        model's final norm) and, with ``store_cache``, the keys/values of every layer.
        """
        models = [self.language_model, self.gemma_expert.model]
        hidden = [prefix, suffix]
        conds = [None, adarms_cond]
        cos, sin = rotary_cos_sin(positions, self.head_dim)
        bias = torch.where(attention_mask, 0.0, MASKED)[:, None]  # (B, 1, Lq, Lk) float
        kvs = []
        for i in range(len(models[0].layers)):
            layers = [m.layers[i] for m in models]
            cached = cache.kv[i] if cache is not None else None
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                hidden, kv = checkpoint(
                    self._layer, layers, hidden, conds, bias, cos, sin, cached, use_reentrant=False
                )
            else:
                hidden, kv = self._layer(layers, hidden, conds, bias, cos, sin, cached)
            if store_cache:
                kvs.append(kv)
        outputs = [
            None if h is None else _norm(m.norm, h, c)[0]
            for m, h, c in zip(models, hidden, conds, strict=True)
        ]
        return outputs[0], outputs[1], kvs

    def _layer(
        self,
        layers: list[nn.Module],
        hidden: list[Tensor | None],
        conds: list[Tensor | None],
        bias: Tensor,
        cos: Tensor,
        sin: Tensor,
        cached: tuple[Tensor, Tensor] | None,
    ) -> tuple[list[Tensor | None], tuple[Tensor, Tensor]]:
        """One layer of both models; returns the new hidden states and this call's keys/values."""
        qs, ks, vs, gates, lengths = [], [], [], [], []
        for layer, h, cond in zip(layers, hidden, conds, strict=True):
            if h is None:
                gates.append(None)
                lengths.append(0)
                continue
            x, gate = _norm(layer.input_layernorm, h, cond)
            attn = layer.self_attn
            batch, length = x.shape[:2]
            qs.append(attn.q_proj(x).view(batch, length, -1, self.head_dim).transpose(1, 2))
            ks.append(attn.k_proj(x).view(batch, length, -1, self.head_dim).transpose(1, 2))
            vs.append(attn.v_proj(x).view(batch, length, -1, self.head_dim).transpose(1, 2))
            gates.append(gate)
            lengths.append(length)
        q, k, v = torch.cat(qs, dim=2), torch.cat(ks, dim=2), torch.cat(vs, dim=2)
        q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        kv = (k, v)
        if cached is not None:
            k, v = torch.cat([cached[0], k], dim=2), torch.cat([cached[1], v], dim=2)
        out = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=bias.to(q.dtype),
            scale=self.head_dim**-0.5,
            enable_gqa=self.num_heads != self.num_kv_heads,
        )
        out = out.transpose(1, 2).flatten(2)  # (B, Lq, heads * head_dim)
        parts = out.split([n for n in lengths if n], dim=1)
        new_hidden: list[Tensor | None] = []
        index = 0
        for layer, h, cond, gate in zip(layers, hidden, conds, gates, strict=True):
            if h is None:
                new_hidden.append(None)
                continue
            attn_out = layer.self_attn.o_proj(parts[index].to(layer.self_attn.o_proj.weight.dtype))
            index += 1
            h = _gated(h, attn_out, gate)
            x, gate = _norm(layer.post_attention_layernorm, h, cond)
            new_hidden.append(_gated(h, layer.mlp(x), gate))
        return new_hidden, kv
