"""Real-time chunking: the weights, the guidance on a flow sampler and on Diffusion's DDPM/DDIM sampler,
and on the flow-matching VLAs (SmolVLA, π0, π0.5) at tiny sizes; the config section of each policy.

The synthetic models are exact denoisers of a known action distribution (each action coordinate
i.i.d. N(MU, S^2)), so what guidance must do is known: the committed actions land on the previous
chunk's, and coordinates with weight 0 come out exactly as without guidance (they are independent
of the guided ones under that distribution). The VLA tests skip where transformers is not installed.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from tests.policies.conftest import (
    diffusion_config,
    make_observation,
    make_stats,
    pi_config,
    pi_tokenizer_folder,
    smolvla_config,
)
from torch import Tensor, nn

from lerobot.configs.types import FeatureType
from lerobot.policies.config import PreTrainedConfig
from lerobot.policies.diffusion.modeling_diffusion import DiffusionModel, DiffusionPolicy
from lerobot.policies.factory import get_policy_class
from lerobot.policies.pretrained import PreTrainedPolicy
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
from lerobot.policies.vla_common import load_tokenizer

MU, S = 0.0, 0.5
FLOW_VLAS = ["smolvla", "pi0", "pi05"]
STEPS_FIELD = {"smolvla": "num_steps", "pi0": "num_inference_steps", "pi05": "num_inference_steps"}
DELAY = 2  # the steps the robot executes while the next chunk is computed


def gaussian_velocity(x: Tensor, t: Tensor) -> Tensor:
    """Exact flow velocity E[noise - actions | x_t] for actions ~ N(MU, S^2), x_t = t noise + (1-t) actions."""
    t = t.view(-1, 1, 1)
    mean_actions = MU + (1 - t) * S**2 / (t**2 + (1 - t) ** 2 * S**2) * (x - (1 - t) * MU)
    return (x - mean_actions) / t


def assert_pulled_onto(
    plain: Tensor, guided: Tensor, target: Tensor | float, floor: float, ratio: float
) -> None:
    """The guided committed actions are ``ratio`` times nearer ``target`` (mean absolute gap) than the plain
    ones, which are at least ``floor`` away from it (so the pull is the guidance's doing)."""
    gap_plain, gap_guided = (plain - target).abs().mean(), (guided - target).abs().mean()
    assert gap_plain > floor and gap_guided < ratio * gap_plain, (gap_plain, gap_guided)


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
    # sequence index offset + 0, offset + 1: the 2 steps of delay
    assert_pulled_onto(plain[:, 1:3], guided[:, 1:3], 0.8, floor=0.3, ratio=0.1)
    torch.testing.assert_close(guided[:, 0], plain[:, 0])  # the past step is not guided
    torch.testing.assert_close(guided[:, 5:], plain[:, 5:])  # past the overlap (index 1 + 4)


def rtc_policy(kind: str, **overrides) -> PreTrainedPolicy:
    """A tiny state-only Diffusion Policy, or a tiny SmolVLA / π0 / π0.5 (the session's backbone or tokenizer).

    The VLAs skip where transformers is not installed.
    """
    if kind == "diffusion":
        cfg = diffusion_config(image=False, **overrides)
        return DiffusionPolicy(cfg, dataset_stats=make_stats({**cfg.input_features, **cfg.output_features}))
    pytest.importorskip("transformers")
    torch.manual_seed(0)
    if kind == "smolvla":
        stats = {
            "observation.state": {
                "mean": torch.tensor([0.1, -0.2, 0.3]),
                "std": torch.tensor([1.5, 0.5, 2.0]),
            },
            "action": {"mean": torch.tensor([1.0, -1.0]), "std": torch.tensor([0.5, 3.0])},
        }
        return get_policy_class(kind)(smolvla_config(**overrides), dataset_stats=stats)
    from tests.policies.pi0.conftest import tiny_stats  # imports transformers

    policy = get_policy_class(kind)(pi_config(kind, **overrides), dataset_stats=tiny_stats())
    policy.set_tokenizer(load_tokenizer(pi_tokenizer_folder()))
    return policy


def vla_observation(config: PreTrainedConfig) -> dict:
    """One raw observation: the state standard normal, the cameras uniform in [0, 1], and the task."""
    gen = torch.Generator().manual_seed(1)
    obs = {
        name: (torch.rand if ft.type is FeatureType.VISUAL else torch.randn)(1, *ft.shape, generator=gen)
        for name, ft in config.input_features.items()
    }
    return {**obs, "task": "pick up the red cube"}


def vla_noise(config: PreTrainedConfig, seed: int) -> Tensor:
    """The flow's initial noise (1, chunk_size, max_action_dim)."""
    return torch.randn(
        1, config.chunk_size, config.max_action_dim, generator=torch.Generator().manual_seed(seed)
    )


def count_passes(policy: PreTrainedPolicy) -> tuple[list[int], list[int]]:
    """Record from now on each pass of the prefix (cameras, instruction, state) through the VLM into its
    key/value cache, and each pass of the expert (one velocity): two lists that grow by one a pass."""
    prefix, expert = [], []
    model = policy.model
    if policy.config.type == "smolvla":  # one module runs both: ``fill_cache`` marks the prefix pass
        forward = model.vlm_with_expert.forward

        def counting_forward(*args, **kwargs):
            (prefix if kwargs.get("fill_cache", False) else expert).append(1)
            return forward(*args, **kwargs)

        model.vlm_with_expert.forward = counting_forward
    else:
        encode, velocity = model.encode_prefix, model.velocity
        model.encode_prefix = lambda inputs: prefix.append(1) or encode(inputs)
        model.velocity = lambda *args: expert.append(1) or velocity(*args)
    return prefix, expert


# SmolVLA with and without its key/value cache (use_cache); π0 and π0.5 always cache the prefix.
GUIDED_VLAS = {"smolvla-cached": True, "smolvla-uncached": False, "pi0": True, "pi05": True}


@pytest.mark.parametrize("case", GUIDED_VLAS)
def test_a_vla_lands_its_committed_actions_on_the_previous_chunk(case):
    """The guidance differentiates the expert only: one prefix pass per chunk (none: recomputed each step
    without a cache), one expert pass per step, as without guidance."""
    kind, cached = case.split("-")[0], GUIDED_VLAS[case]
    overrides = {"use_cache": cached} if kind == "smolvla" else {}
    policy = rtc_policy(
        kind, **{STEPS_FIELD[kind]: 10}, **overrides, rtc_config=RTCConfig(execution_horizon=4)
    )
    assert policy.supports_rtc() and rtc_enabled(policy)
    cfg = policy.config
    obs = vla_observation(cfg)
    previous = policy.predict_action_chunk(obs, noise=vla_noise(cfg, 1))[0]  # what the robot was executing
    plain = policy.predict_action_chunk(obs, noise=vla_noise(cfg, 2))
    prefix_passes, expert_passes = count_passes(policy)
    guided = policy.predict_action_chunk(
        obs, noise=vla_noise(cfg, 2), inference_delay=DELAY, prev_chunk_left_over=previous.numpy()
    )
    assert len(prefix_passes) == int(cached) and len(expert_passes) == 10
    assert_pulled_onto(plain[0, :DELAY], guided[0, :DELAY], previous[:DELAY], floor=0.2, ratio=0.2)
    assert torch.isfinite(guided).all() and guided.shape == (1, cfg.chunk_size, cfg.action_feature.shape[0])


@pytest.mark.parametrize("kind", FLOW_VLAS)
def test_zero_weights_and_rtc_off_sample_as_without_a_prefix(kind):
    policy = rtc_policy(kind, rtc_config=RTCConfig(prefix_attention_schedule="ZEROS", debug=True))
    cfg = policy.config
    obs, noise = vla_observation(cfg), vla_noise(cfg, 3)
    plain = policy.predict_action_chunk(obs, noise=noise)
    previous = torch.randn(cfg.chunk_size, cfg.action_feature.shape[0])
    # No delay and the ZEROS schedule: every weight is 0, so the guided sampler is the plain one.
    zero = policy.predict_action_chunk(obs, noise=noise, inference_delay=0, prev_chunk_left_over=previous)
    torch.testing.assert_close(zero, plain)
    assert len(policy.rtc_debug) == getattr(cfg, STEPS_FIELD[kind])  # it did take the guided path
    policy.config.rtc_config = RTCConfig(enabled=False)
    off = policy.predict_action_chunk(obs, noise=noise, inference_delay=DELAY, prev_chunk_left_over=previous)
    assert torch.equal(off, plain)  # RTC off: the prefix is ignored, bit for bit
    policy.config.rtc_config = RTCConfig()
    padded = torch.zeros(cfg.chunk_size, cfg.max_action_dim)  # the model's padded width, not the robot's
    with pytest.raises(ValueError, match="prev_chunk_left_over must be"):
        policy.predict_action_chunk(obs, inference_delay=1, prev_chunk_left_over=padded)


def test_the_async_client_path_hands_the_queue_to_the_policy():
    """``policy_chunk`` (the policy server's and the local client's call) passes the RTC arguments on."""
    from lerobot.async_inference.robot_client import policy_chunk

    policy = rtc_policy("pi0", num_inference_steps=10, rtc_config=RTCConfig(execution_horizon=4))
    obs = vla_observation(policy.config)
    previous = policy_chunk(policy, obs)  # (T, A) float32, robot units
    assert previous.shape == (policy.config.chunk_size, policy.config.action_feature.shape[0])
    left_over = previous[DELAY:]  # the robot executed DELAY steps while the next chunk was requested
    torch.manual_seed(5)
    guided = policy_chunk(policy, obs, inference_delay=DELAY, prev_chunk_left_over=left_over)
    torch.manual_seed(5)
    plain = policy_chunk(policy, obs)  # the same noise, no previous chunk
    assert abs(guided[:DELAY] - left_over[:DELAY]).max() < 0.05 < abs(plain[:DELAY] - left_over[:DELAY]).max()


ROUND_TRIP = {"execution_horizon": 3, "prefix_attention_schedule": "EXP", "max_guidance_weight": 5.0}


@pytest.mark.parametrize("kind", ["diffusion", *FLOW_VLAS])
def test_rtc_config_round_trip(kind, tmp_path):
    """Unset, ``rtc_config`` is ``null`` in a VLA's config.json (LeRobot writes it) and absent from Diffusion's
    (LeRobot's Diffusion has none); ``null`` reads as unset (the wave-2 checkpoints write it), a section as
    RTCConfig, saved and loaded back."""
    plain = rtc_policy(kind).config
    assert plain.rtc_config is None
    if kind == "diffusion":
        assert "rtc_config" not in plain.to_dict()
    else:
        assert plain.to_dict()["rtc_config"] is None
    assert PreTrainedConfig.from_dict({**plain.to_dict(), "rtc_config": None}).rtc_config is None
    policy = rtc_policy(kind, rtc_config=ROUND_TRIP)
    assert isinstance(policy.config.rtc_config, RTCConfig) and type(policy).supports_rtc()
    folder = policy.save_pretrained(tmp_path / "ckpt")
    saved = json.loads((folder / "config.json").read_text())["rtc_config"]
    assert saved == {"enabled": True, **ROUND_TRIP, "debug": False, "debug_maxlen": 100}
    loaded = PreTrainedPolicy.from_pretrained(folder)
    assert loaded.config.rtc_config == policy.config.rtc_config and rtc_enabled(loaded)


def test_diffusion_policy_inpaints_and_ignores_the_prefix_when_rtc_is_off():
    policy = rtc_policy("diffusion", rtc_config={"execution_horizon": 3, "prefix_attention_schedule": "ONES"})
    cfg = policy.config
    assert DiffusionPolicy.supports_rtc() and rtc_enabled(policy)
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
