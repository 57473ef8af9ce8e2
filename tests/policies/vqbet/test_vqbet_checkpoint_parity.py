"""LeRobot 0.6.1's VQ-BeT checkpoint loads here and reproduces its greedy rollout, head features, logits,
codes and decoded actions (within 1e-4), and its seeded sampled rollout."""

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from tests.conftest import SHARED_FIXTURES

from lerobot.policies.vqbet.modeling_vqbet import VQBeTPolicy

CKPT = SHARED_FIXTURES / "wave2" / "peer_vqbet_checkpoint"
pytestmark = pytest.mark.skipif(
    not CKPT.is_dir(),
    reason=f"the 45 MB peer VQ-BeT checkpoint lives in ../shared ({CKPT}), absent in this clone",
)
ATOL = 1e-4


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((CKPT.parent / "peer_vqbet_checkpoint.expected.json").read_text())


def greedy_multinomial(probs: torch.Tensor, num_samples: int, **kwargs) -> torch.Tensor:
    """What the reference's greedy record replaced ``torch.multinomial`` with: the most probable code."""
    assert num_samples == 1
    return probs.argmax(dim=-1, keepdim=True)


def rollout(policy: VQBeTPolicy, expected: dict) -> tuple[np.ndarray, list[tuple[torch.Tensor, dict]]]:
    """The record's sequence (obs, obs2, obs, obs2) through select_action, and each head call."""
    calls = []
    hook = policy.vqbet.action_head.register_forward_hook(lambda m, args, out: calls.append((args[0], out)))
    try:
        policy.reset()
        actions = [
            policy.select_action({k: torch.tensor(v) for k, v in obs.items()})["action"]
            for obs in expected["inputs"]["observation_sequence"]
        ]
    finally:
        hook.remove()
    return torch.stack(actions).numpy(), calls


def assert_head_calls_match(calls: list, records: list[dict]) -> None:
    assert len(calls) == len(records) == 2  # call 1 predicts a chunk of 3, call 4 the next one
    for (features, out), record in zip(calls, records, strict=True):
        np.testing.assert_allclose(features.numpy(), np.array(record["gpt_features"]), atol=ATOL)
        np.testing.assert_allclose(out["cbet_logits"].numpy(), np.array(record["cbet_logits"]), atol=ATOL)
        np.testing.assert_array_equal(out["sampled_centers"].numpy(), np.array(record["sampled_centers"]))
        np.testing.assert_allclose(
            out["decoded_action"].numpy(), np.array(record["decoded_action"]), atol=ATOL
        )
        np.testing.assert_allclose(
            out["predicted_action"].numpy(), np.array(record["predicted_action"]), atol=ATOL
        )


def test_loads_every_key_and_parameter(expected):
    policy = VQBeTPolicy.from_pretrained(CKPT)  # strict: any missing or unexpected key raises
    with safe_open(str(CKPT / "model.safetensors"), "pt") as f:
        file_keys = set(f.keys())
    assert len(file_keys) == expected["state_dict_keys"]
    assert policy._weight_keys() == file_keys | policy.optional_weight_keys
    assert sum(p.numel() for p in policy.parameters()) == expected["num_params"]
    tokenizer = policy.vqbet.action_head.vqvae_model
    assert bool(tokenizer.discretized) and bool(tokenizer.vq_layer.freeze_codebook)


def test_greedy_rollout_and_head_match_reference(expected, monkeypatch):
    policy = VQBeTPolicy.from_pretrained(CKPT)
    monkeypatch.setattr(torch, "multinomial", greedy_multinomial)
    actions, calls = rollout(policy, expected)
    want = np.array(expected["outputs"]["greedy_select_action_unnormalized"])
    np.testing.assert_allclose(actions, want, atol=ATOL)
    assert_head_calls_match(calls, expected["outputs"]["greedy_head_calls"])
    first_chunk = calls[0][1]["predicted_action"][:, 1].reshape(1, 3, 6)
    np.testing.assert_allclose(
        first_chunk.numpy(),
        np.array(expected["outputs"]["greedy_action_chunk_normalized_first_call"]),
        atol=ATOL,
    )


def test_greedy_decoding_switch_gives_the_greedy_record(expected, tmp_path):
    policy = VQBeTPolicy.from_pretrained(CKPT, greedy_decoding=True)
    actions, calls = rollout(policy, expected)
    np.testing.assert_allclose(
        actions, np.array(expected["outputs"]["greedy_select_action_unnormalized"]), atol=ATOL
    )
    assert_head_calls_match(calls, expected["outputs"]["greedy_head_calls"])
    saved = policy.save_pretrained(tmp_path / "greedy")
    assert json.loads((saved / "config.json").read_text())["greedy_decoding"] is True


def test_seeded_sampling_draws_the_reference_codes(expected):
    """One ``torch.multinomial`` over all rows, as the reference draws: the same codes from the same seed
    (CPU generator; the record was made with torch 2.11)."""
    policy = VQBeTPolicy.from_pretrained(CKPT)
    torch.manual_seed(0)
    actions, calls = rollout(policy, expected)
    np.testing.assert_allclose(
        actions, np.array(expected["outputs"]["sampled_select_action_unnormalized_seed0"]), atol=ATOL
    )
    assert_head_calls_match(calls, expected["outputs"]["sampled_head_calls_seed0"])


def test_cpu_accelerated_policy_matches_reference(expected, monkeypatch):
    from lerobot.policies.cpu_acceleration import accelerate

    policy = accelerate(VQBeTPolicy.from_pretrained(CKPT))
    monkeypatch.setattr(torch, "multinomial", greedy_multinomial)
    actions, calls = rollout(policy, expected)
    np.testing.assert_allclose(
        actions, np.array(expected["outputs"]["greedy_select_action_unnormalized"]), atol=ATOL
    )
    assert_head_calls_match(calls, expected["outputs"]["greedy_head_calls"])


def test_save_and_reload_keeps_the_rollout_and_lerobot_layout(expected, tmp_path):
    policy = VQBeTPolicy.from_pretrained(CKPT, greedy_decoding=True)
    folder = VQBeTPolicy.from_pretrained(CKPT).save_pretrained(tmp_path / "ours")
    config = json.loads((folder / "config.json").read_text())
    assert "greedy_decoding" not in config  # off by default: not written, LeRobot reads the file as its own
    assert {k: v for k, v in config.items() if k != "device"} == {
        k: v for k, v in json.loads((CKPT / "config.json").read_text()).items() if k != "device"
    }
    reloaded = VQBeTPolicy.from_pretrained(folder, greedy_decoding=True)
    np.testing.assert_array_equal(rollout(reloaded, expected)[0], rollout(policy, expected)[0])
