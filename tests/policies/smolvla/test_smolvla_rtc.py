"""Real-time chunking on a tiny SmolVLA: inpainting (cached or not), zero weights, RTC off, the config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tests.policies.smolvla.conftest import IMAGE_HW, TASKS, tiny_config

from lerobot.policies.config import PreTrainedConfig
from lerobot.policies.rtc.configuration_rtc import RTCConfig
from lerobot.policies.rtc.modeling_rtc import rtc_enabled
from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy

CHUNK, ACTION_DIM, DELAY = 4, 2, 2


def _policy(backbone: Path, **overrides) -> SmolVLAPolicy:
    torch.manual_seed(0)
    stats = {
        "observation.state": {"mean": torch.tensor([0.1, -0.2, 0.3]), "std": torch.tensor([1.5, 0.5, 2.0])},
        "action": {"mean": torch.tensor([1.0, -1.0]), "std": torch.tensor([0.5, 3.0])},
    }
    return SmolVLAPolicy(tiny_config(backbone, **overrides), dataset_stats=stats)


def _observation() -> dict:
    gen = torch.Generator().manual_seed(1)
    return {
        "observation.state": torch.randn(1, 3, generator=gen),
        "observation.images.front": torch.rand(1, 3, *IMAGE_HW, generator=gen),
        "task": TASKS[0],
    }


def _noise(seed: int) -> torch.Tensor:
    return torch.randn(1, CHUNK, 4, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("use_cache", [True, False])
def test_committed_actions_land_on_the_previous_chunk(tiny_backbone: Path, use_cache: bool) -> None:
    policy = _policy(
        tiny_backbone, num_steps=10, use_cache=use_cache, rtc_config=RTCConfig(execution_horizon=4)
    )
    assert policy.supports_rtc() and rtc_enabled(policy)
    obs = _observation()
    previous = policy.predict_action_chunk(obs, noise=_noise(1))[0]  # what the robot was executing
    plain = policy.predict_action_chunk(obs, noise=_noise(2))
    forward, cache_fills = policy.model.vlm_with_expert.forward, []

    def counting_forward(*args, **kwargs):
        cache_fills.append(kwargs.get("fill_cache", False))
        return forward(*args, **kwargs)

    policy.model.vlm_with_expert.forward = counting_forward
    guided = policy.predict_action_chunk(
        obs, noise=_noise(2), inference_delay=DELAY, prev_chunk_left_over=previous.numpy()
    )
    # One prefix pass per chunk (the cache), then one expert pass per denoising step.
    assert sum(cache_fills) == int(use_cache) and len(cache_fills) == int(use_cache) + 10
    gap_plain = (plain[0, :DELAY] - previous[:DELAY]).abs().mean()
    gap_guided = (guided[0, :DELAY] - previous[:DELAY]).abs().mean()
    assert gap_plain > 0.2 and gap_guided < 0.2 * gap_plain, (gap_plain, gap_guided)
    assert torch.isfinite(guided).all() and guided.shape == (1, CHUNK, ACTION_DIM)


def test_zero_weights_and_rtc_off_sample_as_without_a_prefix(tiny_backbone: Path) -> None:
    policy = _policy(tiny_backbone, rtc_config=RTCConfig(prefix_attention_schedule="ZEROS", debug=True))
    obs, noise = _observation(), _noise(3)
    plain = policy.predict_action_chunk(obs, noise=noise)
    previous = torch.randn(CHUNK, ACTION_DIM)
    # No delay and the ZEROS schedule: every weight is 0, so the guided sampler is the plain one.
    zero = policy.predict_action_chunk(obs, noise=noise, inference_delay=0, prev_chunk_left_over=previous)
    torch.testing.assert_close(zero, plain)
    assert len(policy.rtc_debug) == policy.config.num_steps  # it did take the guided path
    policy.config.rtc_config = RTCConfig(enabled=False)
    off = policy.predict_action_chunk(obs, noise=noise, inference_delay=DELAY, prev_chunk_left_over=previous)
    assert torch.equal(off, plain)  # RTC off: the prefix is ignored, bit for bit


def test_rtc_config_round_trip(tiny_backbone: Path, tmp_path: Path) -> None:
    """``"rtc_config": null`` stays in config.json (LeRobot writes it); a section is read back as RTCConfig."""
    plain = tiny_config(tiny_backbone)
    assert plain.to_dict()["rtc_config"] is None
    assert PreTrainedConfig.from_dict({**plain.to_dict(), "rtc_config": None}).rtc_config is None
    policy = _policy(tiny_backbone, rtc_config={"execution_horizon": 3, "max_guidance_weight": 5.0})
    assert isinstance(policy.config.rtc_config, RTCConfig)
    ckpt = policy.save_pretrained(tmp_path / "ckpt")
    saved = json.loads((ckpt / "config.json").read_text())["rtc_config"]
    assert saved == {
        "enabled": True, "prefix_attention_schedule": "LINEAR", "max_guidance_weight": 5.0,
        "execution_horizon": 3, "debug": False, "debug_maxlen": 100,
    }  # fmt: skip
    loaded = SmolVLAPolicy.from_pretrained(ckpt)
    assert loaded.config.rtc_config == policy.config.rtc_config and rtc_enabled(loaded)
