"""Focused checks of the library behaviour the guide blocks rely on (see tests/guide/README.md)."""

import pytest
import torch

from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.datasets.text import Text, TextBatch
from lerobot.policies.act.configuration_act import ACTConfig
from lerobot.policies.act.modeling_act import ACTPolicy


def tiny_act() -> ACTPolicy:
    cfg = ACTConfig(
        input_features={
            "observation.state": PolicyFeature(FeatureType.STATE, (3,)),
            "observation.environment_state": PolicyFeature(FeatureType.ENV, (2,)),
        },
        output_features={"action": PolicyFeature(FeatureType.ACTION, (3,))},
        dim_model=16, n_heads=2, dim_feedforward=32, n_encoder_layers=1, n_decoder_layers=1, chunk_size=4,
        n_action_steps=4, pretrained_backbone_weights=None, device="cpu",
    )  # fmt: skip
    return ACTPolicy(cfg)


def test_text_samples_collate_into_a_batch_that_answers_to():
    batch = torch.utils.data.default_collate([{"task": Text("pick"), "x": torch.zeros(2)}] * 3)
    assert isinstance(batch["task"], TextBatch) and batch["task"] == ["pick"] * 3
    moved = {k: v.to("cpu") for k, v in batch.items()}
    assert moved["task"] is batch["task"] and Text("a").to("cpu") == "a"
    assert torch.utils.data.default_collate(["plain"] * 2) == ["plain", "plain"]  # plain str unaffected


def test_policy_without_stats_uses_raw_values_and_says_so_once():
    policy = tiny_act()
    batch = {"observation.state": torch.randn(2, 3), "observation.environment_state": torch.randn(2, 2),
             "action": torch.randn(2, 4, 3)}  # fmt: skip
    with pytest.warns(
        UserWarning, match=r"No normalisation statistics for \['observation.state'\]"
    ):
        policy(batch)
    assert policy.normalize_inputs(batch)["observation.state"] is batch["observation.state"]
    stats = {k: {"mean": torch.full((n,), 1.0), "std": torch.full((n,), 2.0)}
             for k, n in (("observation.state", 3), ("observation.environment_state", 2), ("action", 3))}  # fmt: skip
    policy.set_normalization_stats(stats)  # statistics given later take effect
    torch.testing.assert_close(
        policy.normalize_inputs(batch)["observation.state"], (batch["observation.state"] - 1) / 2
    )


def test_half_set_statistics_are_an_error():
    policy = tiny_act()
    policy.normalize_inputs.load_stats({"observation.state": {"mean": torch.zeros(3)}}, strict=False)
    with pytest.raises(RuntimeError, match=r"incomplete \(std is unset\)"):
        policy.normalize_inputs({"observation.state": torch.zeros(1, 3)})


def test_one_action_per_sample_trains_the_first_chunk_step_only():
    policy = tiny_act()
    state, action = (
        {"observation.state": torch.randn(2, 3), "observation.environment_state": torch.randn(2, 2)},
        torch.randn(2, 3),
    )
    with pytest.warns(UserWarning, match="only the first step of each chunk is trained"):
        chunked = policy.single_action_as_chunk({**state, "action": action}, 4)
    assert chunked["action"].shape == (2, 4, 3) and torch.equal(chunked["action"][:, 0], action)
    assert chunked["action_is_pad"].tolist() == [[False, True, True, True]] * 2
    with pytest.warns(UserWarning):  # no stats in this tiny policy
        policy({**state, "action": action})["loss"].backward()
    full = {**state, "action": torch.randn(2, 4, 3)}
    assert policy.single_action_as_chunk(full, 4) is full  # chunks pass unchanged
