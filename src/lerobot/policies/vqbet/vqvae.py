"""VQ-BeT's action tokenizer: an MLP autoencoder over action chunks with a residual vector quantiser.

An action chunk (W steps of A) is encoded to a D-dimensional latent, quantised by two codebooks in
turn (the primary code, then the secondary code of what the first left over) and decoded back::

    chunk (N, W * A) --encoder--> z (N, D) --RVQ--> codes (N, 2), z_q = e1[c1] + e2[c2] --decoder--> (N, W, A)

Codebooks move by exponential moving averages of the latents assigned to each code (no gradient),
as in van den Oord et al. 2017 (appendix) and the ``vector-quantize-pytorch`` package LeRobot uses;
the encoder gets the straight-through gradient and a commitment loss. Buffer names
(``vq_layer.layers.<i>._codebook.embed`` ...) are those LeRobot's checkpoints hold.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

NUM_RVQ_LAYERS = 2  # the primary and the secondary code
VQ_LOSS_WEIGHT = 5.0  # commitment loss weight in the tokenizer's loss, next to the L1 reconstruction


def mlp(in_dim: int, widths: list[int]) -> nn.Sequential:
    """Linear layers of the given output widths with a ReLU between each two (none after the last)."""
    layers: list[nn.Module] = []
    for i, width in enumerate(widths):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(in_dim, width))
        in_dim = width
    return nn.Sequential(*layers)


class EuclideanCodebook(nn.Module):
    """One codebook: nearest-code assignment and the moving-average update of the codes.

    Buffers keep a leading codebook axis of size 1 (``embed`` is (1, K, D)), as the checkpoints do.
    """

    def __init__(self, dim: int, codebook_size: int, decay: float = 0.8, eps: float = 1e-5):
        super().__init__()
        self.decay, self.eps = decay, eps
        embed = nn.init.kaiming_uniform_(torch.empty(1, codebook_size, dim))
        self.register_buffer("initted", torch.ones(1))
        self.register_buffer("cluster_size", torch.zeros(1, codebook_size))
        self.register_buffer("embed", embed)
        self.register_buffer("embed_avg", embed.clone())

    def nearest(self, x: Tensor) -> Tensor:
        """(N, D) latents -> (N,) index of the closest code (Euclidean)."""
        return torch.cdist(x, self.embed[0]).argmin(dim=-1)

    @torch.no_grad()
    def update(self, x: Tensor, codes: Tensor) -> None:
        """Move each code towards the mean of the latents assigned to it (Laplace-smoothed counts)."""
        onehot = F.one_hot(codes, self.embed.shape[1]).to(x.dtype)  # (N, K)
        self.cluster_size.lerp_(onehot.sum(0)[None], 1 - self.decay)
        self.embed_avg.lerp_((onehot.t() @ x)[None], 1 - self.decay)
        n_codes = self.cluster_size.shape[-1]
        total = self.cluster_size.sum(dim=-1, keepdim=True)
        smoothed = (self.cluster_size + self.eps) / (total + n_codes * self.eps) * total
        self.embed.copy_(self.embed_avg / smoothed[..., None])


class VectorQuantizer(nn.Module):
    """Quantise to the nearest code; straight-through gradient and commitment loss while training."""

    def __init__(self, dim: int, codebook_size: int):
        super().__init__()
        self._codebook = EuclideanCodebook(dim, codebook_size)

    def forward(self, x: Tensor, update_codebook: bool) -> tuple[Tensor, Tensor, Tensor]:
        """(N, D) -> quantised (N, D), codes (N,), commitment loss (scalar)."""
        codes = self._codebook.nearest(x.detach())
        quantized = self._codebook.embed[0][codes]
        if update_codebook:
            self._codebook.update(x.detach(), codes)
        if not self.training:
            return quantized, codes, x.new_zeros(())
        loss = F.mse_loss(quantized.detach(), x)
        return x + (quantized - x).detach(), codes, loss


class ResidualVQ(nn.Module):
    """Each layer quantises what the layers before it left over; the quantised latent is their sum."""

    def __init__(self, dim: int, num_quantizers: int, codebook_size: int):
        super().__init__()
        self.layers = nn.ModuleList([VectorQuantizer(dim, codebook_size) for _ in range(num_quantizers)])
        self.register_buffer("freeze_codebook", torch.tensor(False))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(N, D) -> quantised (N, D), codes (N, layers), summed commitment loss."""
        update = self.training and not bool(self.freeze_codebook)
        residual, out, codes, loss = x, torch.zeros_like(x), [], x.new_zeros(())
        for layer in self.layers:
            quantized, code, layer_loss = layer(residual, update)
            residual = residual - quantized.detach()
            out = out + quantized
            codes.append(code)
            loss = loss + layer_loss
        return out, torch.stack(codes, dim=-1), loss

    def embedding(self, codes: Tensor) -> Tensor:
        """(N, layers) codes -> (N, D) sum of their code vectors."""
        return sum(layer._codebook.embed[0][codes[:, i]] for i, layer in enumerate(self.layers))


class VqVae(nn.Module):
    """Action-chunk autoencoder with the residual VQ in the middle (see the module docstring).

    ``discretized`` says the first training phase is over (the tokenizer is frozen);
    ``optimized_steps`` counts its training steps so that a resumed run ends the phase on time.
    """

    def __init__(self, action_dim: int, chunk_size: int, embedding_dim: int, hidden_dim: int, n_embed: int):
        super().__init__()
        self.action_dim, self.chunk_size = action_dim, chunk_size
        self.register_buffer("discretized", torch.tensor(False))
        self.register_buffer("optimized_steps", torch.tensor(0))
        self.vq_layer = ResidualVQ(embedding_dim, NUM_RVQ_LAYERS, n_embed)
        flat = action_dim * chunk_size
        self.encoder = mlp(flat, [hidden_dim, hidden_dim, embedding_dim])
        self.decoder = mlp(embedding_dim, [hidden_dim, hidden_dim, flat])

    def get_code(self, chunks: Tensor) -> Tensor:
        """(N, W, A) action chunks -> (N, layers) codes."""
        return self.vq_layer(self.encoder(chunks.flatten(1)))[1]

    def decode_codes(self, codes: Tensor) -> Tensor:
        """(N, layers) codes -> (N, W, A) action chunks."""
        return self.decoder(self.vq_layer.embedding(codes)).unflatten(1, (self.chunk_size, self.action_dim))

    def loss(self, chunks: Tensor) -> tuple[Tensor, dict[str, float]]:
        """Phase-1 loss of (N, W, A) chunks: L1 reconstruction + VQ_LOSS_WEIGHT * commitment."""
        flat = chunks.flatten(1)
        quantized, codes, vq_loss = self.vq_layer(self.encoder(flat))
        recon = (flat - self.decoder(quantized)).abs().mean()
        loss = recon + VQ_LOSS_WEIGHT * vq_loss
        n_codes = [len(torch.unique(codes[:, i])) for i in range(codes.shape[1])]
        return loss, {
            "recon_l1_error": recon.item(),
            "vq_loss": vq_loss.item(),
            "n_different_codes": float(max(n_codes)),
            "n_different_combinations": float(len(torch.unique(codes, dim=0))),
        }
