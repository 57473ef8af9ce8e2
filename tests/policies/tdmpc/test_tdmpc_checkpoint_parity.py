"""The reference library's TD-MPC checkpoint loads here and computes the same values (within 1e-4).

The fixture (``../shared/fixtures/wave2/peer_tdmpc_checkpoint``) was saved by LeRobot 0.6.1 with
planning off (``use_mpc=false``), so its actions are deterministic; its image input is
``observation.image`` (3, 64, 64).
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.conftest import SHARED_FIXTURES

from lerobot.policies.tdmpc.modeling_tdmpc import TDMPCPolicy

CKPT = SHARED_FIXTURES / "wave2" / "peer_tdmpc_checkpoint"
pytestmark = pytest.mark.skipif(
    not CKPT.is_dir(), reason=f"the peer TD-MPC checkpoint lives in ../shared ({CKPT}), absent in this clone"
)
ATOL = 1e-4


@pytest.fixture(scope="module")
def peer():
    expected = json.loads((CKPT.parent / "peer_tdmpc_checkpoint.expected.json").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no missing statistics, no unknown config keys
        policy = TDMPCPolicy.from_pretrained(CKPT)
    obs = {k: torch.tensor(v) for k, v in expected["inputs"]["observation"].items()}
    with torch.no_grad():
        z = policy.model.encode(policy._normalized_observation(obs))
    return policy, obs, z, expected


def close(got: torch.Tensor, want) -> None:
    want = np.asarray(want, dtype=np.float32)
    np.testing.assert_allclose(got.detach().numpy().reshape(want.shape), want, atol=ATOL)


def test_loads_with_every_key_and_parameter(peer):
    policy, _, _, expected = peer
    keys = [k for k in policy.state_dict() if k.startswith(("model.", "model_target."))]
    assert len(keys) == expected["state_dict_keys"]
    assert sum(p.numel() for p in policy.parameters()) == expected["num_params"]
    assert policy.config.use_mpc is False and policy.config.n_action_repeats == 2


def test_latent_and_policy_prior(peer):
    policy, _, z, expected = peer
    close(z, expected["outputs"]["latent_z"])
    close(policy.model.pi(z), expected["outputs"]["pi_z"])


def test_q_ensemble_and_v(peer):
    policy, _, z, expected = peer
    action = torch.tensor(expected["inputs"]["fixed_action_normalized"])
    with torch.no_grad():
        close(policy.model.Qs(z, action), expected["outputs"]["Qs_z_a"])
        close(policy.model.Qs(z, policy.model.pi(z)), expected["outputs"]["Qs_z_pi"])
        close(policy.model.V(z), expected["outputs"]["V_z"])


def test_dynamics_and_reward(peer):
    policy, _, z, expected = peer
    action = torch.tensor(expected["inputs"]["fixed_action_normalized"])
    with torch.no_grad():
        next_z, reward = policy.model.latent_dynamics_and_reward(z, action)
    close(next_z, expected["outputs"]["next_latent_z_a"])
    close(reward, expected["outputs"]["reward_z_a"])


def test_select_action_sequence_with_action_repeats(peer):
    policy, _, _, expected = peer
    sequence = [
        {k: torch.tensor(v) for k, v in o.items()} for o in expected["inputs"]["observation_sequence"]
    ]
    policy.reset()
    got = torch.stack([policy.select_action(o)["action"] for o in sequence])
    close(got, expected["outputs"]["select_action_unnormalized"])
    policy.reset()
    chunk = policy.predict_action_chunk(sequence[0])  # (B, n_action_steps, A)
    close(chunk[:, 0], expected["outputs"]["select_action_unnormalized"][0])


def test_training_loss_and_gradients_are_lerobots(monkeypatch):
    """Every loss term and every parameter's gradient norm as LeRobot 0.6.1 computes them on the fixture
    (``lerobot061_tdmpc_loss.json``), with both libraries' random pick of two Q heads fixed to heads 0 and 1."""
    import lerobot.policies.tdmpc.network as network

    want = json.loads((Path(__file__).parent / "lerobot061_tdmpc_loss.json").read_text())
    monkeypatch.setattr(network.torch, "randperm", lambda n, *args, **kwargs: torch.arange(n))
    policy = TDMPCPolicy.from_pretrained(CKPT)
    policy.config.max_random_shift_ratio = 0.0  # the record was made without the random image shift
    policy.train()
    gen, steps, batch_size = torch.Generator().manual_seed(0), policy.config.horizon, 8
    batch = {
        "observation.image": torch.rand((batch_size, steps + 1, 3, 64, 64), generator=gen),
        "observation.state": torch.rand((batch_size, steps + 1, 6), generator=gen),
        "action": torch.rand((batch_size, steps, 6), generator=gen) * 2 - 1,
        "next.reward": torch.rand((batch_size, steps), generator=gen),
    }
    out = policy(batch)
    out["loss"].backward()
    names = {"loss": "loss", "consistency_loss": "consistency_loss", "reward_loss": "reward_loss",
             "q_loss": "Q_value_loss", "v_loss": "V_value_loss", "pi_loss": "pi_loss"}  # fmt: skip
    for ours, theirs in names.items():
        assert float(out[ours]) == pytest.approx(want[theirs], rel=1e-5), ours
    grads = {n: p.grad.norm().item() for n, p in policy.named_parameters() if p.grad is not None}
    assert grads.keys() == want["grad_norms"].keys()
    for name, norm in grads.items():
        assert norm == pytest.approx(want["grad_norms"][name], rel=1e-4, abs=1e-7), name
