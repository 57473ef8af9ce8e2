"""The causal transformer VQ-BeT runs over its token sequence, in the shape of Karpathy's nanoGPT.

Tokens are continuous vectors (not vocabulary ids), so the token embedding ``wte`` is a linear layer.
Parameter names follow nanoGPT (``transformer.h.<i>.attn.c_attn`` ...), which is also what LeRobot's
checkpoints hold; each attention layer keeps its causal mask as the ``bias`` buffer they carry.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn


class CausalSelfAttention(nn.Module):
    def __init__(self, dim: int, n_head: int, block_size: int, dropout: float):
        super().__init__()
        self.n_head, self.dropout = n_head, dropout
        self.c_attn = nn.Linear(dim, 3 * dim)
        self.c_proj = nn.Linear(dim, dim)
        self.resid_dropout = nn.Dropout(dropout)
        self.register_buffer(
            "bias", torch.tril(torch.ones(block_size, block_size)).view(1, 1, block_size, block_size)
        )

    def forward(self, x: Tensor) -> Tensor:
        b, t, c = x.shape
        q, k, v = (
            z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2)
            for z in self.c_attn(x).split(c, dim=2)
        )
        mask = self.bias[:, :, :t, :t] != 0
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(b, t, c)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, dim: int, n_head: int, block_size: int, dropout: float):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, n_head, block_size, dropout)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), nn.Dropout(dropout)
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """(B, T, input_dim) tokens -> (B, T, output_dim) features, each seeing only the tokens before it."""

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        dim: int,
        n_layer: int,
        n_head: int,
        block_size: int,
        dropout: float,
    ):
        super().__init__()
        self.block_size = block_size
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Linear(input_dim, dim),
                "wpe": nn.Embedding(block_size, dim),
                "drop": nn.Dropout(dropout),
                "h": nn.ModuleList([Block(dim, n_head, block_size, dropout) for _ in range(n_layer)]),
                "ln_f": nn.LayerNorm(dim),
            }
        )
        self.lm_head = nn.Linear(dim, output_dim, bias=False)
        self.apply(_init_weights)
        for name, param in self.named_parameters():  # GPT-2: residual projections scaled by depth
            if name.endswith("c_proj.weight"):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

    def forward(self, tokens: Tensor) -> Tensor:
        t = tokens.shape[1]
        if t > self.block_size:
            raise ValueError(f"{t} tokens exceed the GPT's block size {self.block_size}.")
        positions = self.transformer.wpe(torch.arange(t, device=tokens.device))
        x = self.transformer.drop(self.transformer.wte(tokens) + positions)
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))

    def decay_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(weight matrices of linear layers, everything else): only the first get weight decay."""
        decay = {id(m.weight) for m in self.modules() if isinstance(m, nn.Linear)}
        params = list(self.parameters())
        return [p for p in params if id(p) in decay], [p for p in params if id(p) not in decay]


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
