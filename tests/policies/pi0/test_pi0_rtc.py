"""Real-time chunking on π0 / π0.5 at tiny sizes: inpainting, zero weights, RTC off, the cache, the config."""

from __future__ import annotations

import json

import pytest
import torch
from tests.policies.pi0.conftest import ACTION_DIM, CHUNK, observation, tiny_config

from lerobot.policies.config import PreTrainedConfig
from lerobot.policies.pretrained import PreTrainedPolicy
from lerobot.policies.rtc.configuration_rtc import RTCConfig
from lerobot.policies.rtc.modeling_rtc import rtc_enabled

KINDS = ["pi0", "pi05"]
DELAY = 2


def _noise(seed: int) -> torch.Tensor:
    return torch.randn(1, CHUNK, 6, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("kind", KINDS)
def test_committed_actions_land_on_the_previous_chunk_and_the_prefix_is_encoded_once(make_policy, kind):
    policy = make_policy(kind, num_inference_steps=10, rtc_config=RTCConfig(execution_horizon=4))
    assert policy.supports_rtc() and rtc_enabled(policy)
    obs = observation(batch=1)
    previous = policy.predict_action_chunk(obs, noise=_noise(1))[0]  # what the robot was executing
    plain = policy.predict_action_chunk(obs, noise=_noise(2))
    encode, calls = policy.model.encode_prefix, []
    policy.model.encode_prefix = lambda inputs: calls.append(1) or encode(inputs)
    guided = policy.predict_action_chunk(
        obs, noise=_noise(2), inference_delay=DELAY, prev_chunk_left_over=previous
    )
    assert calls == [1]  # one prefix pass per chunk: the guidance differentiates the expert only
    gap_plain = (plain[0, :DELAY] - previous[:DELAY]).abs().mean()
    gap_guided = (guided[0, :DELAY] - previous[:DELAY]).abs().mean()
    assert gap_plain > 0.2 and gap_guided < 0.2 * gap_plain, (gap_plain, gap_guided)
    assert torch.isfinite(guided).all() and guided.shape == (1, CHUNK, ACTION_DIM)


@pytest.mark.parametrize("kind", KINDS)
def test_zero_weights_and_rtc_off_sample_as_without_a_prefix(make_policy, kind):
    policy = make_policy(kind, rtc_config=RTCConfig(prefix_attention_schedule="ZEROS", debug=True))
    obs, noise = observation(batch=1), _noise(3)
    plain = policy.predict_action_chunk(obs, noise=noise)
    previous = torch.randn(CHUNK, ACTION_DIM)
    # No delay and the ZEROS schedule: every weight is 0, so the guided sampler is the plain one.
    zero = policy.predict_action_chunk(obs, noise=noise, inference_delay=0, prev_chunk_left_over=previous)
    torch.testing.assert_close(zero, plain)
    assert len(policy.rtc_debug) == policy.config.num_inference_steps  # it did take the guided path
    policy.config.rtc_config = RTCConfig(enabled=False)
    off = policy.predict_action_chunk(obs, noise=noise, inference_delay=DELAY, prev_chunk_left_over=previous)
    assert torch.equal(off, plain)  # RTC off: the prefix is ignored, bit for bit
    policy.config.rtc_config = RTCConfig()
    with pytest.raises(ValueError, match="prev_chunk_left_over must be"):
        policy.predict_action_chunk(obs, inference_delay=1, prev_chunk_left_over=torch.zeros(CHUNK, 6))


@pytest.mark.parametrize("kind", KINDS)
def test_rtc_config_round_trip(make_policy, kind, tmp_path):
    """``"rtc_config": null`` stays in config.json (LeRobot writes it); a section is read back as RTCConfig."""
    assert tiny_config(kind).to_dict()["rtc_config"] is None
    data = {**tiny_config(kind).to_dict(), "rtc_config": None}
    assert PreTrainedConfig.from_dict(data).rtc_config is None
    policy = make_policy(kind, rtc_config={"execution_horizon": 3, "prefix_attention_schedule": "EXP"})
    assert isinstance(policy.config.rtc_config, RTCConfig)
    policy.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())["rtc_config"]
    assert saved == {
        "enabled": True, "prefix_attention_schedule": "EXP", "max_guidance_weight": 10.0,
        "execution_horizon": 3, "debug": False, "debug_maxlen": 100,
    }  # fmt: skip
    loaded = PreTrainedPolicy.from_pretrained(tmp_path)
    assert loaded.config.rtc_config == policy.config.rtc_config and rtc_enabled(loaded)


def test_the_async_client_path_hands_the_queue_to_the_policy(make_policy):
    """``policy_chunk`` (the policy server's and the local client's call) passes the RTC arguments on."""
    from lerobot.async_inference.robot_client import policy_chunk

    policy = make_policy("pi0", num_inference_steps=10, rtc_config=RTCConfig(execution_horizon=4))
    obs = observation(batch=1)
    previous = policy_chunk(policy, obs)  # (T, A) float32, robot units
    assert previous.shape == (CHUNK, ACTION_DIM)
    left_over = previous[DELAY:]  # the robot executed DELAY steps while the next chunk was requested
    torch.manual_seed(5)
    guided = policy_chunk(policy, obs, inference_delay=DELAY, prev_chunk_left_over=left_over)
    torch.manual_seed(5)
    plain = policy_chunk(policy, obs)  # the same noise, no previous chunk
    assert abs(guided[:DELAY] - left_over[:DELAY]).max() < 0.05 < abs(plain[:DELAY] - left_over[:DELAY]).max()
