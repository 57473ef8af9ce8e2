"""Diffusion Policy's denoising loop as fixed tensor arithmetic, every draw an input: what its export runs.

The eager policy calls diffusers' scheduler (``set_timesteps``, then ``step`` per time step), whose DDPM
``step`` draws its noise from a generator inside. An exported model must take every draw as an input,
so :class:`UnrolledSampler` reads the scheduler's own time steps and cumulative alphas once and does
the arithmetic of its ``step`` with the coefficients fixed (epsilon or sample prediction, clipping,
DDPM's fixed-small variance, DDIM with eta = 0)::

    x0  = (x - sqrt(1 - a_t) * out) / sqrt(a_t)   (epsilon)      or out        (sample), then clipped
    DDPM: x <- c0_t * x0 + c1_t * x + sigma_t * noise_t          (noise only for t > 0)
    DDIM: x <- sqrt(a_prev) * x0 + sqrt(1 - a_prev) * eps        (deterministic)

Given the same draws -- the initial noise, then one per DDPM step with t > 0, in that order, which is
how a seeded generator hands them to :meth:`DiffusionModel.conditional_sample` -- it gives the same
actions. DDIM (eta = 0) draws only the initial noise.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lerobot.policies.diffusion.unet import DiffusionConditionalUnet1d


def _f(x: Any) -> float:
    """A float32 0-d tensor as the Python float holding exactly its value."""
    return float(torch.as_tensor(x, dtype=torch.float32))


class UnrolledSampler:
    """``num_inference_steps`` scheduler steps with fixed coefficients; draws are arguments."""

    def __init__(self, scheduler: Any, num_inference_steps: int):
        kind = type(scheduler).__name__
        cfg = scheduler.config
        if kind not in ("DDPMScheduler", "DDIMScheduler"):
            raise ValueError(f"Diffusion export knows DDPM and DDIM schedulers, not {kind}.")
        if cfg.prediction_type not in ("epsilon", "sample") or getattr(cfg, "thresholding", False):
            raise ValueError(
                f"Diffusion export needs epsilon or sample prediction without thresholding ({kind})."
            )
        if kind == "DDPMScheduler" and cfg.variance_type != "fixed_small":
            raise ValueError(
                f"Diffusion export knows DDPM's fixed_small variance, not {cfg.variance_type!r}."
            )
        self.ddpm = kind == "DDPMScheduler"
        self.epsilon = cfg.prediction_type == "epsilon"
        self.clip = float(cfg.clip_sample_range) if cfg.clip_sample else None
        scheduler.set_timesteps(num_inference_steps)
        self.timesteps = [int(t) for t in scheduler.timesteps]
        alphas = scheduler.alphas_cumprod
        self.steps: list[dict[str, float]] = []
        for t in self.timesteps:
            a_t = alphas[t]
            if self.ddpm:
                prev_t = int(scheduler.previous_timestep(t))
                a_prev = alphas[prev_t] if prev_t >= 0 else scheduler.one
                beta_t, beta_prev = 1 - a_t, 1 - a_prev
                alpha_now = a_t / a_prev
                coeffs = {
                    "c0": _f(a_prev**0.5 * (1 - alpha_now) / beta_t),
                    "c1": _f(alpha_now**0.5 * beta_prev / beta_t),
                    "sigma": _f(scheduler._get_variance(t) ** 0.5) if t > 0 else 0.0,
                }
            else:
                prev_t = t - cfg.num_train_timesteps // scheduler.num_inference_steps
                a_prev = alphas[prev_t] if prev_t >= 0 else scheduler.final_alpha_cumprod
                coeffs = {"c0": _f(a_prev**0.5), "c1": _f((1 - a_prev) ** 0.5), "sigma": 0.0}
            coeffs.update(sqrt_a=_f(a_t**0.5), sqrt_b=_f((1 - a_t) ** 0.5))
            self.steps.append(coeffs)
        self.n_step_draws = sum(1 for s in self.steps if s["sigma"] != 0.0) if self.ddpm else 0

    def __call__(
        self, unet: DiffusionConditionalUnet1d, global_cond: Tensor, noise: Tensor, step_noise: Tensor | None
    ) -> Tensor:
        """noise (B, T, A), step_noise (B, n_step_draws, T, A) or None, global_cond (B, G) -> (B, T, A)."""
        (n, (batch, cond_dim)) = len(self.timesteps), global_cond.shape
        timesteps = torch.tensor(self.timesteps, dtype=torch.long, device=noise.device)
        # The FiLM inputs do not depend on the sample: one batch for all steps (as conditional_sample).
        film_table = unet.film(
            timesteps[:, None].expand(n, batch).reshape(n * batch),
            global_cond[None].expand(n, batch, cond_dim).reshape(n * batch, cond_dim),
        )
        film_table = [f.unflatten(0, (n, batch)) for f in film_table]
        sample, draw = noise, 0
        for i, c in enumerate(self.steps):
            out = unet(sample, film=[f[i] for f in film_table])
            if self.epsilon:
                x0 = (sample - c["sqrt_b"] * out) / c["sqrt_a"]
                eps = out
            else:
                x0 = out
                eps = (sample - c["sqrt_a"] * x0) / c["sqrt_b"]
            if self.clip is not None:
                x0 = x0.clamp(-self.clip, self.clip)
            if self.ddpm:
                sample = c["c0"] * x0 + c["c1"] * sample
                if c["sigma"] != 0.0:
                    sample = sample + c["sigma"] * step_noise[:, draw]
                    draw += 1
            else:
                sample = c["c0"] * x0 + c["c1"] * eps
        return sample
