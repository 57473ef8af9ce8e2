"""The reference library's ACT checkpoint loads here and predicts the same actions (within 1e-4)."""

import json

import numpy as np
import pytest
import torch
from tests.conftest import SHARED_FIXTURES

from lerobot.policies.act.modeling_act import ACTPolicy

CKPT = SHARED_FIXTURES / "peer_act_checkpoint"
pytestmark = pytest.mark.skipif(
    not CKPT.is_dir(),
    reason=f"the 44 MB peer ACT checkpoint lives in ../shared ({CKPT}), absent in this clone",
)


@pytest.fixture(scope="module")
def peer():
    expected = json.loads((SHARED_FIXTURES / "peer_act_checkpoint.expected.json").read_text())
    policy = ACTPolicy.from_pretrained(CKPT)
    policy.eval()
    obs = {k: torch.tensor(v, dtype=torch.float32) for k, v in expected["observation"].items()}
    return policy, obs, expected


def test_normalized_chunk_matches_reference(peer):
    policy, obs, expected = peer
    with torch.no_grad():
        batch = policy.normalize_inputs(policy.prepare_observation(obs))
        chunk = policy.model(batch)[0]
    np.testing.assert_allclose(chunk[0].numpy(), np.array(expected["normalized_action_chunk"]), atol=1e-4)


def test_first_three_select_actions_match_reference(peer):
    policy, obs, expected = peer
    policy.reset()
    with torch.no_grad():
        got = torch.cat([policy.select_action(obs)["action"] for _ in range(3)]).numpy()
    want = np.array(expected["first_3_select_action_unnormalized"])
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-4)


def test_parameter_count_and_keys_match_reference(peer):
    policy, _, expected = peer
    assert sum(p.numel() for p in policy.parameters()) == expected["num_params"]


def test_cpu_accelerated_policy_matches_reference(peer):
    from lerobot.policies.cpu_acceleration import accelerate

    _, obs, expected = peer
    policy = accelerate(ACTPolicy.from_pretrained(CKPT))
    got = torch.cat([policy.select_action(obs)["action"] for _ in range(3)]).numpy()
    want = np.array(expected["first_3_select_action_unnormalized"])
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-4)
