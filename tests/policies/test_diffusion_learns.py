"""Diffusion Policy end to end on problems with a known answer: the sampler, normalisation and history.

Two checks, both on one thread:

* an oracle denoiser (the exact noise / clean sequence for a known target, computed from the time step
  the policy passes to the U-Net) must make the DDPM/DDIM loop return that target: any mismatch between
  the training noise schedule and the inference loop (time steps, prediction type, clipping) breaks it;
* a tiny state-only policy trained for a few hundred steps on a deterministic, history-dependent mapping
  (actions extrapolate the velocity between the two observed frames, in pixel-like units with
  non-trivial statistics) must sample actions close to the truth. A wrong normalisation, a swapped or
  repeated history, a wrong action window (``generate_actions``) or a broken sampler all miss by far.
  (A deterministic target lets a ``sample``-predicting U-Net ignore x_t and the time step, so time-step
  mix-ups in the sampling loop are the oracle test's job, through its ``epsilon`` cases.)
"""

from __future__ import annotations

import pytest
import torch
from tests.policies.conftest import diffusion_config
from torch import Tensor, nn

from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy

STATE = "observation.state"
DIM = 2


def _config(**overrides):
    return diffusion_config(
        image=False,
        input_features={STATE: PolicyFeature(FeatureType.STATE, (DIM,))},
        output_features={"action": PolicyFeature(FeatureType.ACTION, (DIM,))},
        **overrides,
    )


def _problem(n: int, horizon: int, seed: int) -> tuple[Tensor, Tensor]:
    """History (n, 2, DIM) = (s_{t-1}, s_t) and actions (n, horizon, DIM) from step t-1: a[j] = s_t + (j-1) v."""
    gen = torch.Generator().manual_seed(seed)
    s_t = 100 + 300 * torch.rand(n, DIM, generator=gen)
    v = 30 * (2 * torch.rand(n, DIM, generator=gen) - 1)
    history = torch.stack([s_t - v, s_t], dim=1)
    k = torch.arange(horizon, dtype=torch.float32)[None, :, None] - 1
    return history, s_t[:, None] + k * v[:, None]


def _min_max(x: Tensor) -> dict[str, Tensor]:
    flat = x.flatten(0, 1)
    return {"min": flat.min(0).values, "max": flat.max(0).values}


class _Oracle(nn.Module):
    """Stands in for the U-Net: the exact answer for the clean sequence ``x0`` at the given time step."""

    def __init__(self, x0: Tensor, alphas_cumprod: Tensor, prediction_type: str):
        super().__init__()
        self.x0, self.alphas_cumprod, self.prediction_type = x0, alphas_cumprod, prediction_type

    def film(self, timestep: Tensor, global_cond: Tensor) -> list[Tensor]:
        return [timestep]  # the sampler's per-step conditioning: here just the time step

    def forward(self, x: Tensor, film: list[Tensor]) -> Tensor:
        if self.prediction_type == "sample":
            return self.x0.expand_as(x)
        abar = self.alphas_cumprod[film[0]].view(-1, 1, 1)
        return (x - abar.sqrt() * self.x0) / (1 - abar).sqrt()


@pytest.mark.parametrize("prediction_type", ["epsilon", "sample"])
@pytest.mark.parametrize(("scheduler", "num_inference_steps"), [("DDIM", 4), ("DDIM", 100), ("DDPM", 100)])
def test_sampler_recovers_the_oracle_target(scheduler, num_inference_steps, prediction_type):
    cfg = _config(
        noise_scheduler_type=scheduler,
        num_inference_steps=num_inference_steps,
        prediction_type=prediction_type,
    )
    stats = {STATE: {"min": torch.zeros(DIM), "max": torch.ones(DIM)},
             "action": {"min": torch.full((DIM,), 10.0), "max": torch.full((DIM,), 500.0)}}  # fmt: skip
    torch.manual_seed(0)
    policy = DiffusionPolicy(cfg, dataset_stats=stats)
    x0 = torch.linspace(-0.9, 0.9, cfg.horizon)[None, :, None] * torch.tensor([1.0, -0.5])
    x0 = x0.repeat(3, 1, 1)  # normalised target in [-1, 1], (B, horizon, DIM)
    alphas_cumprod = policy.diffusion.noise_scheduler.alphas_cumprod
    policy.diffusion.unet = _Oracle(x0, alphas_cumprod, prediction_type)
    actions = policy.predict_action_chunk({STATE: torch.rand(3, cfg.n_obs_steps, DIM)})
    start = cfg.n_obs_steps - 1
    expected = policy.unnormalize_outputs({"action": x0[:, start : start + cfg.n_action_steps]})["action"]
    torch.testing.assert_close(actions, expected, atol=1e-2, rtol=0)  # 1e-2 of a 490-unit range


def test_tiny_policy_learns_a_history_dependent_mapping():
    cfg = _config(num_inference_steps=10, prediction_type="sample")  # horizon 8, 4 actions, U-Net (16, 32)
    history, actions = _problem(4096, cfg.horizon, seed=0)
    stats = {STATE: _min_max(history), "action": _min_max(actions)}
    torch.manual_seed(0)
    policy = DiffusionPolicy(cfg, dataset_stats=stats)
    policy.train()
    optimizer = torch.optim.Adam(policy.parameters(), lr=3e-3)
    steps = 300  # ~10 s on one thread
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        idx = torch.randint(0, len(history), (64,), generator=gen)
        loss = policy({STATE: history[idx], "action": actions[idx]})["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    assert loss.item() < 0.01

    test_history, test_actions = _problem(128, cfg.horizon, seed=2)
    start = cfg.n_obs_steps - 1
    truth = test_actions[:, start : start + cfg.n_action_steps]  # a[t .. t+3]
    hold = (truth - test_history[:, -1:]).norm(dim=-1).mean()  # "stay where you are": ~35 units

    torch.manual_seed(3)
    chunk = policy.predict_action_chunk({STATE: test_history})  # full history at once
    chunk_error = (chunk - truth).norm(dim=-1).mean()

    policy.reset()  # the same through the streaming interface: frame t-1, then frame t
    policy.select_action({STATE: test_history[:, 0]})
    policy._action_queue.clear()
    streamed = [
        policy.select_action({STATE: test_history[:, 1]})["action"] for _ in range(cfg.n_action_steps)
    ]
    stream_error = (torch.stack(streamed, dim=1) - truth).norm(dim=-1).mean()

    swapped = policy.predict_action_chunk({STATE: test_history.flip(1)})
    swapped_error = (swapped - truth).norm(dim=-1).mean()

    # ~9-11 units when everything works (0.27-0.32 of hold over three seeds); history order swapped: ~90.
    assert chunk_error < 0.5 * hold, (chunk_error, hold)
    assert stream_error < 0.5 * hold, (stream_error, hold)
    assert swapped_error > 2 * chunk_error, (swapped_error, chunk_error)  # the history order matters
