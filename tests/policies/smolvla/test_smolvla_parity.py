"""LeRobot 0.6.1's SmolVLA checkpoint loads here with every tensor and computes the same numbers (1e-4).

The fixture (../shared/fixtures/wave2/peer_smolvla_checkpoint) is a tiny random-weight SmolVLA with
its backbone config and tokenizer in a folder inside it; its ``.expected.json`` records the
reference's token ids, prepared image, image embedding, action chunk from a fixed flow noise,
``select_action`` outputs and training losses for fixed noise and time.
"""

from __future__ import annotations

import json

import pytest
import torch
from tests.conftest import SHARED_FIXTURES

pytest.importorskip("transformers")

from tests.policies.smolvla.conftest import expected_train_batch  # noqa: E402

from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy  # noqa: E402

CKPT = SHARED_FIXTURES / "wave2" / "peer_smolvla_checkpoint"
pytestmark = pytest.mark.skipif(
    not CKPT.is_dir(), reason=f"the peer SmolVLA checkpoint lives in ../shared ({CKPT}), absent in this clone"
)
ATOL = 1e-4


@pytest.fixture(scope="module")
def peer() -> tuple[SmolVLAPolicy, dict, dict]:
    expected = json.loads((CKPT.parent / "peer_smolvla_checkpoint.expected.json").read_text())
    policy = SmolVLAPolicy.from_pretrained(CKPT, device="cpu")
    return policy, expected["inputs"], expected["outputs"]


def _observation(inputs: dict) -> dict:
    obs = {k: torch.tensor(v) for k, v in inputs["observation"].items()}
    return {**obs, "task": inputs["task"]}


def _close(actual: torch.Tensor, expected: list) -> None:
    torch.testing.assert_close(actual.float(), torch.tensor(expected, dtype=torch.float32), atol=ATOL, rtol=0)


def test_every_tensor_loads() -> None:
    from safetensors import safe_open

    policy = SmolVLAPolicy.from_pretrained(CKPT, device="cpu")  # strict: raises on a missing/unexpected key
    with safe_open(str(CKPT / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert keys == set(policy.model.state_dict(prefix="model.")) and len(keys) == 124
    assert sum(p.numel() for p in policy.model.parameters()) == 409_576


def test_tokens_image_and_embedding(peer) -> None:
    policy, inputs, outputs = peer
    batch = policy.normalize_inputs(policy.prepare_observation(_observation(inputs)))
    tokens, mask = policy.prepare_language(batch)
    assert tokens.tolist() == outputs["lang_tokens"]
    assert mask.tolist() == outputs["lang_attention_mask"]
    _close(batch["observation.state"], outputs["state_normalized"])
    images, _ = policy.prepare_images(batch)
    _close(images[0], outputs["prepared_image"])
    with torch.no_grad():
        _close(policy.model.vlm_with_expert.embed_image(images[0]), outputs["image_embedding"])


def test_action_chunk_from_fixed_noise(peer) -> None:
    policy, inputs, outputs = peer
    chunk = policy.predict_action_chunk(_observation(inputs), noise=torch.tensor(inputs["noise"]))
    _close(chunk, outputs["unnormalized_action_chunk"])


def test_action_chunk_without_kv_cache_is_the_same(peer) -> None:
    policy, inputs, outputs = peer
    policy.config.use_cache = False
    try:
        chunk = policy.predict_action_chunk(_observation(inputs), noise=torch.tensor(inputs["noise"]))
    finally:
        policy.config.use_cache = True
    _close(chunk, outputs["unnormalized_action_chunk"])


def test_select_action_first_three(peer) -> None:
    policy, inputs, outputs = peer
    policy.reset()
    for expected in outputs["first_3_select_action_unnormalized"]:
        action = policy.select_action(_observation(inputs), noise=torch.tensor(inputs["noise"]))
        _close(action.action, expected)


def test_training_losses(peer) -> None:
    policy, inputs, outputs = peer
    train = inputs["train_batch"]
    batch = expected_train_batch(train)
    fixed = {"noise": torch.tensor(train["noise"]), "time": torch.tensor(train["time"])}
    policy.train()
    try:
        with torch.no_grad():
            _close(policy.forward(batch, **fixed)["loss"], outputs["loss_no_pad"])
            _close(
                policy.forward(batch, reduction="none", **fixed)["loss"], outputs["per_sample_loss_no_pad"]
            )
            padded = {**batch, "action_is_pad": torch.tensor(train["action_is_pad"])}
            _close(policy.forward(padded, **fixed)["loss"], outputs["loss_with_action_is_pad"])
    finally:
        policy.eval()
