"""π0 / π0.5 share SmolVLA's loading path: an adapter-only LoRA checkpoint (LeRobot 0.6.1's PEFT layout)
saved here loads on top of its base, relative tokenizer folder and all, and acts as the live policy."""

from __future__ import annotations

import json

import pytest
import torch
from tests.policies.pi0.conftest import CHUNK, observation

from lerobot.policies.peft_adapters import PeftConfig, is_wrapped, wrap_with_peft
from lerobot.policies.pretrained import PreTrainedPolicy

pytest.importorskip("peft")


@pytest.mark.parametrize("kind", ["pi0", "pi05"])
def test_adapter_only_checkpoint_round_trips(make_policy, kind, tmp_path):
    base = make_policy(kind).save_pretrained(tmp_path / "base")  # the tokenizer goes inside, named relatively
    policy = PreTrainedPolicy.from_pretrained(base)
    wrap_with_peft(
        policy,
        PeftConfig(r=2, target_modules=["q_proj", "v_proj"], full_training_modules=["action_out_proj"]),
    )
    with torch.no_grad():  # as after training
        for p in policy.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    obs, noise = observation(), torch.randn(2, CHUNK, policy.config.max_action_dim)
    live = policy.predict_action_chunk(obs, noise=noise)

    folder = policy.save_pretrained(tmp_path / "adapter", adapter_only=True)
    assert not (folder / "model.safetensors").exists()
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == str(base)
    loaded = PreTrainedPolicy.from_pretrained(folder)
    assert type(loaded) is type(policy) and is_wrapped(loaded)
    torch.testing.assert_close(loaded.predict_action_chunk(obs, noise=noise), live, rtol=0, atol=1e-6)
