"""Real-time chunking: the weights, the guidance on a flow sampler and on Diffusion's DDPM/DDIM sampler.

The synthetic models are exact denoisers of a known action distribution (each action coordinate
i.i.d. N(MU, S^2)), so what guidance must do is known: the committed actions land on the previous
chunk's, and coordinates with weight 0 come out exactly as without guidance (they are independent
of the guided ones under that distribution).
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from tests.policies.conftest import diffusion_config, make_observation, make_stats
from torch import Tensor, nn

from lerobot.policies.config import PreTrainedConfig
from lerobot.policies.diffusion.modeling_diffusion import DiffusionModel, DiffusionPolicy
from lerobot.policies.rtc.configuration_rtc import RTCConfig
from lerobot.policies.rtc.modeling_rtc import (
    RTCGuide,
    flow_sample,
    guidance_weight,
    make_guide,
    outside_inference_mode,
    prefix_weights,
    rtc_enabled,
)

MU, S = 0.0, 0.5


def gaussian_velocity(x: Tensor, t: Tensor) -> Tensor:
    """Exact flow velocity E[noise - actions | x_t] for actions ~ N(MU, S^2), x_t = t noise + (1-t) actions."""
    t = t.view(-1, 1, 1)
    mean_actions = MU + (1 - t) * S**2 / (t**2 + (1 - t) ** 2 * S**2) * (x - (1 - t) * MU)
    return (x - mean_actions) / t


def test_prefix_weights_follow_the_schedules():
    # delay 2, overlap end min(6, 7) = 6: c_i = (6 - i) / 5 for i in 2..5
    assert prefix_weights("ZEROS", 2, 7, 6, 9).tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 0]
    assert prefix_weights("ONES", 2, 7, 6, 9).tolist() == [1, 1, 1, 1, 1, 1, 0, 0, 0]
    torch.testing.assert_close(
        prefix_weights("LINEAR", 2, 7, 6, 9), torch.tensor([1, 1, 0.8, 0.6, 0.4, 0.2, 0, 0, 0])
    )
    c = torch.tensor([0.8, 0.6, 0.4, 0.2])
    torch.testing.assert_close(prefix_weights("EXP", 2, 7, 6, 9)[2:6], c * torch.expm1(c) / (torch.e - 1))
    # The previous chunk ends first: nothing past its last action is weighted, even within the delay.
    assert prefix_weights("ONES", 4, 3, 10, 6).tolist() == [1, 1, 1, 0, 0, 0]
    assert guidance_weight(0.0, 1.0, 10.0) == 10.0  # pure noise: clipped at beta
    assert guidance_weight(0.6, 0.8, 10.0) == pytest.approx(1.0 / 0.48)
    with pytest.raises(ValueError, match="max_guidance_weight must be > 0"):
        RTCConfig(max_guidance_weight=0)


@pytest.mark.parametrize("schedule", ["LINEAR", "EXP", "ONES", "ZEROS"])
def test_flow_guidance_inpaints_the_committed_actions(schedule):
    """The hook a flow policy uses: only its velocity function and its noise go in."""
    noise = torch.randn(32, 12, 2, generator=torch.Generator().manual_seed(0))
    prefix = torch.full((8, 2), 1.5)
    guide = RTCGuide(RTCConfig(execution_horizon=6, prefix_attention_schedule=schedule), prefix, 3, 12)
    with torch.inference_mode():  # as inside a policy's predict_action_chunk
        plain = flow_sample(gaussian_velocity, noise, 10)
        guided = flow_sample(gaussian_velocity, noise, 10, guide)
    assert (plain[:, :3] - 1.5).abs().mean() > 0.5  # unguided: the prior's samples around 0
    torch.testing.assert_close(guided[:, :3], torch.full((32, 3, 2), 1.5), atol=0.05, rtol=0)
    torch.testing.assert_close(guided[:, 6:], plain[:, 6:])  # weight 0 and independent: untouched
    fade = guided[:, 3:6, 0].mean(0)
    if schedule == "ONES":
        torch.testing.assert_close(fade, torch.full((3,), 1.5), atol=0.05, rtol=0)
    elif schedule == "ZEROS":
        torch.testing.assert_close(guided[:, 3:6], plain[:, 3:6])
    else:  # fading towards the end of the overlap
        assert 1.5 > fade[0] > fade[1] > fade[2] > plain[:, 3:6, 0].mean() - 0.2


def test_guidance_weight_clipping_bounds_the_pull():
    noise = torch.randn(32, 6, 1, generator=torch.Generator().manual_seed(1))
    prefix = torch.full((6, 1), 1.5)
    errors = []
    for beta in (0.5, 2.0, 10.0):
        guide = RTCGuide(RTCConfig(execution_horizon=6, max_guidance_weight=beta, debug=True), prefix, 2, 6)
        out = flow_sample(gaussian_velocity, noise, 10, guide)
        errors.append(float((out[:, :2] - 1.5).abs().mean()))
        assert len(guide.trace) == 10 and max(step["guidance_weight"] for step in guide.trace) == beta
    assert errors[0] > errors[1] > errors[2]


class GaussianUnet(nn.Module):
    """Stands in for Diffusion's U-Net: the exact noise (or clean-action) estimate of N(MU, S^2) actions."""

    def __init__(self, alphas_cumprod: Tensor, prediction_type: str):
        super().__init__()
        self.alphas_cumprod, self.prediction_type = alphas_cumprod, prediction_type

    def film(self, timesteps: Tensor, global_cond: Tensor) -> list[Tensor]:
        return [timesteps.float().unsqueeze(-1)]  # the time step travels as the "FiLM" input

    def forward(self, x: Tensor, film: list[Tensor]) -> Tensor:
        alpha_bar = self.alphas_cumprod[film[0].long()].view(-1, 1, 1)
        a, b = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
        gain = (x - a * MU) / (a**2 * S**2 + b**2)
        return b * gain if self.prediction_type == "epsilon" else MU + a * S**2 * gain


@pytest.mark.parametrize("scheduler", ["DDIM", "DDPM"])
@pytest.mark.parametrize("prediction_type", ["epsilon", "sample"])
def test_diffusion_sampler_guidance(scheduler, prediction_type):
    cfg = diffusion_config(
        image=False, noise_scheduler_type=scheduler, prediction_type=prediction_type, num_inference_steps=10
    )
    model = DiffusionModel(cfg)
    model.unet = GaussianUnet(model.noise_scheduler.alphas_cumprod, prediction_type)
    prefix = torch.full((6, 2), 0.8)  # the previous chunk's remaining actions, normalised
    guide = RTCGuide(RTCConfig(execution_horizon=4), prefix, 2, cfg.horizon, offset=cfg.n_obs_steps - 1)

    def sample(guide):
        with torch.inference_mode():
            return model.conditional_sample(64, torch.zeros(64, 1), torch.Generator().manual_seed(3), guide)

    plain, guided = sample(None), sample(guide)
    committed = guided[:, 1:3]  # sequence index offset + 0, offset + 1: the 2 steps of delay
    gap_plain, gap_guided = (plain[:, 1:3] - 0.8).abs().mean(), (committed - 0.8).abs().mean()
    assert gap_plain > 0.3 and gap_guided < 0.1 * gap_plain, (gap_plain, gap_guided)
    torch.testing.assert_close(guided[:, 0], plain[:, 0])  # the past step is not guided
    torch.testing.assert_close(guided[:, 5:], plain[:, 5:])  # past the overlap (index 1 + 4)


def test_diffusion_policy_rtc_config_round_trip_and_inpainting(tmp_path):
    """rtc_config: absent from config.json when unset (LeRobot's Diffusion has none), read when null or set."""
    plain_cfg = diffusion_config(image=False)
    assert "rtc_config" not in plain_cfg.to_dict() and plain_cfg.rtc_config is None
    data = {**plain_cfg.to_dict(), "rtc_config": None}  # as the wave-2 checkpoints write it
    assert PreTrainedConfig.from_dict(data).rtc_config is None

    cfg = diffusion_config(
        image=False, rtc_config={"execution_horizon": 3, "prefix_attention_schedule": "ONES"}
    )
    features = {**cfg.input_features, **cfg.output_features}
    policy = DiffusionPolicy(cfg, dataset_stats=make_stats(features))
    assert DiffusionPolicy.supports_rtc() and rtc_enabled(policy)
    policy.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())["rtc_config"]
    assert saved == {
        "enabled": True, "prefix_attention_schedule": "ONES", "max_guidance_weight": 10.0,
        "execution_horizon": 3, "debug": False, "debug_maxlen": 100,
    }  # fmt: skip
    loaded = DiffusionPolicy.from_pretrained(tmp_path)
    assert loaded.config.rtc_config == cfg.rtc_config

    obs = make_observation(cfg, batch_size=1)
    torch.manual_seed(0)
    chunk = policy.predict_action_chunk(obs, inference_delay=1, prev_chunk_left_over=torch.zeros(3, 2))
    assert chunk.shape == (1, cfg.n_action_steps, 2) and torch.isfinite(chunk).all()
    policy.config.rtc_config = RTCConfig(enabled=False)
    assert not rtc_enabled(policy) and make_guide(policy.config, torch.zeros(1, 3, 2), 1, 8) is None
    torch.manual_seed(0)
    off = policy.predict_action_chunk(obs, inference_delay=1, prev_chunk_left_over=torch.zeros(3, 2))
    torch.manual_seed(0)
    torch.testing.assert_close(off, policy.predict_action_chunk(obs))  # RTC off: the prefix is ignored


def test_a_network_flow_policy_with_a_cached_conditioning():
    """A flow policy's usual shape: a network reading a conditioning computed once, in inference mode.

    The guidance differentiates through the network; the cache must leave inference mode first
    (outside_inference_mode), as the hook's docstring says.
    """
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2 + 1, 32), nn.Tanh(), nn.Linear(32, 2))
    encoder = nn.Linear(3, 4)
    prefix = torch.full((1, 5, 2), 0.5)

    def sample(cache, guide):
        def velocity(x, t):  # (B, T, A), (B,) -> (B, T, A), FiLM-conditioned on the cache
            h = net(torch.cat([x, t.view(-1, 1, 1).expand(*x.shape[:2], 1)], -1))
            return h * cache[..., :2] + cache[..., 2:]  # the cache is saved for backward

        return flow_sample(
            velocity, torch.randn(1, 8, 2, generator=torch.Generator().manual_seed(1)), 10, guide
        )

    with torch.inference_mode():
        cache = encoder(torch.ones(1, 1, 3))  # an inference tensor, as a policy's encoder would make it
        guide = make_guide(SimpleNamespace(rtc_config=RTCConfig(execution_horizon=5)), prefix, 2, 8)
        with pytest.raises(RuntimeError, match="Inference tensors cannot be saved for backward"):
            sample(cache, guide)
        guided = sample(outside_inference_mode(cache), guide)
        plain = sample(cache, None)
    assert (guided[0, :2] - 0.5).abs().max() < (plain[0, :2] - 0.5).abs().max()
    assert torch.isfinite(guided).all()
