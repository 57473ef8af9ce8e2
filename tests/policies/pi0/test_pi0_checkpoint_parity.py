"""LeRobot 0.6.1's π0 checkpoint (tiny sizes, ../shared) loads here and gives the same numbers within 1e-4."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from tests.conftest import SHARED_FIXTURES

from lerobot.configs.types import ACTION, OBS_STATE

pytest.importorskip("transformers")
from lerobot.policies.pi0.modeling_pi0 import PI0Policy  # noqa: E402

CKPT = SHARED_FIXTURES / "wave2" / "peer_pi0_checkpoint"
pytestmark = pytest.mark.skipif(
    not CKPT.is_dir(), reason=f"the peer π0 checkpoint lives in ../shared ({CKPT}), absent in this clone"
)
ATOL = 1e-4


@pytest.fixture(scope="module")
def peer():
    expected = json.loads((CKPT.parent / "peer_pi0_checkpoint.expected.json").read_text())
    policy = PI0Policy.from_pretrained(CKPT)
    obs = {k: torch.tensor(v) for k, v in expected["inputs"]["observation"].items()}
    obs["task"] = expected["inputs"]["task"]
    return policy, obs, expected["inputs"], expected["outputs"]


def close(actual: torch.Tensor, expected: list) -> None:
    np.testing.assert_allclose(
        actual.detach().numpy(), np.asarray(expected, dtype=np.float32), atol=ATOL, rtol=0
    )


def test_every_tensor_and_the_processor_files_load(peer):
    policy, *_ = peer
    with safe_open(str(CKPT / "model.safetensors"), "pt") as f:
        file_keys = set(f.keys())
    assert policy._weight_keys() == file_keys  # from_pretrained is strict: none missing, none unexpected
    state = dict(policy.state_dict())
    with safe_open(str(CKPT / "model.safetensors"), "pt") as f:
        for key in file_keys:  # untied lm_head / embed_tokens: each keeps its own values
            assert torch.equal(state[key], f.get_tensor(key)), key
    assert torch.isfinite(policy.normalize_inputs.buffer_observation_state.mean).all()
    assert torch.isfinite(policy.unnormalize_outputs.buffer_action.std).all()
    assert policy.tokenizer_name == "tiny_paligemma_tokenizer" and policy._tokenizer_dir == CKPT
    assert policy.config.sizes()["vlm"]["width"] == 64 and policy.config.paligemma_variant == "gemma_2b"


def test_prompt_tokens_state_and_prepared_image(peer):
    policy, obs, _, out = peer
    with torch.no_grad():
        inputs = policy.model_inputs(policy.normalize_inputs(policy.prepare_observation(obs)))
    assert inputs.tokens.tolist() == out["lang_tokens"]
    assert inputs.token_mask.tolist() == out["lang_attention_mask"]
    close(inputs.state[:, :6], out["state_normalized"])
    assert inputs.state[:, 6:].abs().sum() == 0  # zero-padded to max_state_dim
    close(inputs.images[0], out["prepared_image"])


def test_image_embedding(peer):
    policy, _, _, out = peer
    with torch.no_grad():
        emb = policy.model.paligemma_with_expert.embed_image(torch.tensor(out["prepared_image"]))
    close(emb, out["image_embedding"])


def test_action_chunk_from_fixed_noise(peer):
    policy, obs, inp, out = peer
    noise = torch.tensor(inp["noise"])
    with torch.no_grad():
        inputs = policy.model_inputs(policy.normalize_inputs(policy.prepare_observation(obs)))
        close(policy.model.sample_actions(inputs, noise), out["sample_actions_padded"])
    chunk = policy.predict_action_chunk(obs, noise=noise)
    close(chunk, out["unnormalized_action_chunk"])
    close(policy.normalize_targets({ACTION: chunk})[ACTION], out["normalized_action_chunk"])
    policy.reset()
    first = policy.select_action(obs, noise=noise)["action"]
    close(first, [out["unnormalized_action_chunk"][0][0]])
    policy.reset()


def test_training_loss_with_fixed_noise_and_time(peer):
    policy, _, inp, out = peer
    train = inp["train_batch"]
    batch = {
        OBS_STATE: torch.tensor(train["observation.state"]),
        "observation.images.front": torch.tensor(train["observation.images.front"]),
        ACTION: torch.tensor(train["action_unnormalized"]),
        "task": train["task"],
    }
    noise, time = torch.tensor(train["noise"]), torch.tensor(train["time"])
    with torch.no_grad():
        loss = policy.forward(batch, noise=noise, time=time)["loss"]
        per_sample = policy.forward(batch, noise=noise, time=time, reduction="none")["loss"]
        normalised = policy.normalize_targets(policy.normalize_inputs(batch))
        inputs = policy.model_inputs(normalised)
        assert inputs.tokens.tolist() == out["train_lang_tokens"]
        close(normalised[ACTION], out["train_action_normalized"])
        actions = torch.nn.functional.pad(normalised[ACTION], (0, 2))
        elementwise = policy.model(inputs, actions, noise, time)
    assert loss.item() == pytest.approx(out["loss"], abs=ATOL)
    close(per_sample, out["per_sample_loss"])
    close(elementwise, out["elementwise_losses_padded_dims"])
