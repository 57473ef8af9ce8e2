"""Diffusion Policy's noise-prediction network: a 1-D U-Net over time, FiLM-conditioned per block.

Down: per level two residual blocks then a stride-2 conv (not after the last level); middle: two
blocks; up: concatenate the matching skip, two blocks, a transposed conv back up. Every residual
block gets [time-step embedding, observation conditioning] as a per-channel scale and bias (FiLM).
Parameter names are LeRobot's, so its checkpoints load.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig


class DiffusionSinusoidalPosEmb(nn.Module):
    """Diffusion time step (B,) -> (B, dim) sinusoidal embedding (sin half, then cos half)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        half = self.dim // 2
        freqs = torch.exp(torch.arange(half, device=x.device) * -(math.log(10000) / (half - 1)))
        angles = x[:, None].float() * freqs[None, :]
        return torch.cat((angles.sin(), angles.cos()), dim=-1)


class DiffusionConv1dBlock(nn.Module):
    """Conv1d -> GroupNorm -> Mish."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, n_groups: int = 8):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
            nn.GroupNorm(n_groups, out_channels),
            nn.Mish(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)


class DiffusionConditionalResidualBlock1d(nn.Module):
    """Two conv blocks with FiLM in between: ``out = scale(c) * conv1(x) + bias(c)``, plus a skip."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        cond_dim: int,
        kernel_size: int = 3,
        n_groups: int = 8,
        use_film_scale_modulation: bool = False,
    ):
        super().__init__()
        self.use_film_scale_modulation = use_film_scale_modulation
        self.out_channels = out_channels
        self.conv1 = DiffusionConv1dBlock(in_channels, out_channels, kernel_size, n_groups=n_groups)
        cond_channels = out_channels * 2 if use_film_scale_modulation else out_channels
        self.cond_encoder = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, cond_channels))
        self.conv2 = DiffusionConv1dBlock(out_channels, out_channels, kernel_size, n_groups=n_groups)
        self.residual_conv = (
            nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        )

    def forward(self, x: Tensor, film: Tensor) -> Tensor:
        """x (B, in_channels, T), film = ``cond_encoder(cond)`` as (B, cond_channels, 1) -> (B, out_channels, T)."""
        out = self.conv1(x)
        if self.use_film_scale_modulation:
            out = film[:, : self.out_channels] * out + film[:, self.out_channels :]
        else:
            out = out + film
        return self.conv2(out) + self.residual_conv(x)


class DiffusionConditionalUnet1d(nn.Module):
    """1-D U-Net over the time axis of an action sequence, FiLM-conditioned on (time step, observations).

    Down: per level two residual blocks then a stride-2 conv (not after the last level); middle: two
    blocks; up: concatenate the matching skip, two blocks, a transposed conv back up.
    """

    def __init__(self, config: DiffusionConfig, global_cond_dim: int):
        super().__init__()
        embed_dim = config.diffusion_step_embed_dim
        self.diffusion_step_encoder = nn.Sequential(
            DiffusionSinusoidalPosEmb(embed_dim),
            nn.Linear(embed_dim, embed_dim * 4),
            nn.Mish(),
            nn.Linear(embed_dim * 4, embed_dim),
        )
        common = {
            "cond_dim": embed_dim + global_cond_dim,
            "kernel_size": config.kernel_size,
            "n_groups": config.n_groups,
            "use_film_scale_modulation": config.use_film_scale_modulation,
        }
        dims = [config.action_feature.shape[0], *config.down_dims]
        in_out = list(zip(dims[:-1], dims[1:], strict=True))

        self.down_modules = nn.ModuleList()
        for level, (dim_in, dim_out) in enumerate(in_out):
            is_last = level == len(in_out) - 1
            self.down_modules.append(
                nn.ModuleList(
                    [
                        DiffusionConditionalResidualBlock1d(dim_in, dim_out, **common),
                        DiffusionConditionalResidualBlock1d(dim_out, dim_out, **common),
                        nn.Conv1d(dim_out, dim_out, 3, 2, 1) if not is_last else nn.Identity(),
                    ]
                )
            )
        mid = config.down_dims[-1]
        self.mid_modules = nn.ModuleList(
            [
                DiffusionConditionalResidualBlock1d(mid, mid, **common),
                DiffusionConditionalResidualBlock1d(mid, mid, **common),
            ]
        )
        self.up_modules = nn.ModuleList()
        for dim_out, dim_in in reversed(in_out[1:]):
            self.up_modules.append(
                nn.ModuleList(
                    [
                        DiffusionConditionalResidualBlock1d(dim_in * 2, dim_out, **common),
                        DiffusionConditionalResidualBlock1d(dim_out, dim_out, **common),
                        nn.ConvTranspose1d(dim_out, dim_out, 4, 2, 1),
                    ]
                )
            )
        self.final_conv = nn.Sequential(
            DiffusionConv1dBlock(config.down_dims[0], config.down_dims[0], kernel_size=config.kernel_size),
            nn.Conv1d(config.down_dims[0], config.action_feature.shape[0], 1),
        )

    def residual_blocks(self) -> list[DiffusionConditionalResidualBlock1d]:
        """The FiLM-conditioned blocks in the order ``forward`` runs them."""
        levels = [*self.down_modules, self.mid_modules, *self.up_modules]
        return [m for level in levels for m in level if isinstance(m, DiffusionConditionalResidualBlock1d)]

    def film(self, timestep: Tensor, global_cond: Tensor) -> list[Tensor]:
        """Each residual block's FiLM input (N, cond_channels, 1) for N rows of (time step, conditioning).

        Independent of the noisy actions, so a sampler computes it once for all its denoising steps
        instead of 12 small matrix products per step (a sixth of a batch-1 U-Net call).
        """
        cond = torch.cat([self.diffusion_step_encoder(timestep), global_cond], dim=-1)
        return [block.cond_encoder(cond).unsqueeze(-1) for block in self.residual_blocks()]

    def forward(
        self,
        x: Tensor,
        timestep: Tensor | None = None,
        global_cond: Tensor | None = None,
        film: list[Tensor] | None = None,
    ) -> Tensor:
        """x (B, T, A) noisy actions, timestep (B,), global_cond (B, G) -> (B, T, A).

        ``film`` (from :meth:`film`) replaces ``timestep`` and ``global_cond`` when already computed.
        """
        films = iter(film if film is not None else self.film(timestep, global_cond))
        x = x.transpose(1, 2)  # convolve over time: (B, A, T)
        skips = []
        for block1, block2, downsample in self.down_modules:
            x = block1(x, next(films))
            x = block2(x, next(films))
            skips.append(x)
            x = downsample(x)
        for block in self.mid_modules:
            x = block(x, next(films))
        for block1, block2, upsample in self.up_modules:
            x = torch.cat([x, skips.pop()], dim=1)
            x = block1(x, next(films))
            x = upsample(block2(x, next(films)))
        return self.final_conv(x).transpose(1, 2)
