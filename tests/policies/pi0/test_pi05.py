"""π0.5's specifics: the discretised state in the prompt, quantile normalisation, adaRMS time conditioning."""

from __future__ import annotations

import pytest
import torch
from tests.policies.pi0.conftest import CHUNK, observation, tiny_stats

from lerobot.configs.types import NormalizationMode
from lerobot.policies.pi0.paligemma_expert import AdaptiveRMSNorm
from lerobot.policies.pi05 import PI05Config
from lerobot.policies.pi05.modeling_pi05 import discretize_state, state_prompts


def test_defaults_differ_from_pi0_only_in_normalisation_and_prompt_length():
    config = PI05Config()
    assert config.normalization_mapping == {
        "VISUAL": NormalizationMode.IDENTITY,
        "STATE": NormalizationMode.QUANTILES,
        "ACTION": NormalizationMode.QUANTILES,
    }
    assert config.tokenizer_max_length == 200 and config.chunk_size == 50 and config.num_inference_steps == 10


def test_state_bins_and_prompt_text():
    # Bins as LeRobot 0.6.1's prompt step gives them for these values (edges linspace(-1, 1, 257)[:-1]).
    state = torch.tensor(
        [[-1.5, -0.9921875, -0.99, 0.00390625, 0.9921875, 0.999], [-1.0, -0.999, 0.0, 0.5, 1.0, 1.5]]
    )
    assert discretize_state(state).tolist() == [[-1, 1, 1, 128, 255, 255], [0, 0, 128, 192, 255, 255]]
    prompts = state_prompts(["  pick_up the\nred cube ", "x"], state)
    assert prompts[1] == "Task: x, State: 0 0 128 192 255 255;\nAction: "
    assert prompts[0].startswith("Task: pick up the red cube, State: -1 1 1 128 255 255;")


def test_the_prompt_holds_the_quantile_normalised_state(make_policy):
    policy = make_policy("pi05")
    stats = tiny_stats()["observation.state"]
    low, high = stats["q01"], stats["q99"]
    states = torch.stack([low + 0.001 * (high - low), (low + high) / 2, high])  # -> -0.998, 0, 1 normalised
    obs = {**observation(batch=3), "observation.state": states, "task": "pick up the red cube"}
    inputs = policy.model_inputs(policy.normalize_inputs(policy.prepare_observation(obs)))
    text = policy.tokenizer.batch_decode(inputs.tokens, skip_special_tokens=True)
    assert text[0] == "Task: pick up the red cube , State: 0 0 0 0 0 ; \n Action:"
    assert "State: 128 128 128 128 128 ;" in text[1] and "State: 255 255 255 255 255 ;" in text[2]
    assert inputs.tokens.shape == (3, policy.config.tokenizer_max_length)


def test_no_state_token_and_time_through_adaptive_norms(make_policy):
    policy = make_policy("pi05")
    model = policy.model
    assert not hasattr(model, "state_proj") and not hasattr(model, "action_time_mlp_in")
    expert = model.paligemma_with_expert.gemma_expert.model
    assert all(isinstance(layer.input_layernorm, AdaptiveRMSNorm) for layer in expert.layers)
    assert isinstance(expert.norm, AdaptiveRMSNorm)
    state, x_t = torch.zeros(1, 8), torch.randn(1, CHUNK, 6)
    tokens, pad, new_block, cond = model.embed_suffix(state, x_t, torch.tensor([0.5]))
    assert tokens.shape[1] == CHUNK and new_block.tolist() == [[True] + [False] * (CHUNK - 1)]
    other = model.embed_suffix(state, x_t, torch.tensor([0.1]))
    torch.testing.assert_close(tokens, other[0])  # the tokens do not carry the time ...
    assert not torch.allclose(cond, other[3])  # ... the norms' condition does


def test_adaptive_norm_scales_shifts_and_gates():
    norm = AdaptiveRMSNorm(dim=4, cond_dim=3)
    x = torch.tensor([[[1.0, -2.0, 3.0, -4.0]]])
    with torch.no_grad():
        norm.dense.weight.zero_()
        norm.dense.bias.copy_(torch.tensor([1.0] * 4 + [0.5] * 4 + [2.0] * 4))  # scale 1, shift 0.5, gate 2
    out, gate = norm(x, torch.randn(1, 3))
    rms = x / x.pow(2).mean(-1, keepdim=True).add(1e-6).sqrt()
    torch.testing.assert_close(out, rms * 2 + 0.5)
    torch.testing.assert_close(gate, torch.full((1, 1, 4), 2.0))


@pytest.mark.parametrize("kind", ["pi0", "pi05"])
def test_checkpoint_key_names(make_policy, kind):
    """The names LeRobot 0.6.1's π0/π0.5 state dicts use (listed from its models built on the meta device)."""
    keys = set(make_policy(kind).state_dict())
    expert = "model.paligemma_with_expert.gemma_expert."
    vlm = "model.paligemma_with_expert.paligemma."
    assert {
        f"{vlm}lm_head.weight",
        f"{vlm}model.language_model.embed_tokens.weight",
        f"{expert}lm_head.weight",
    } <= keys
    assert f"{vlm}model.multi_modal_projector.linear.weight" in keys
    assert f"{vlm}model.vision_tower.vision_model.embeddings.patch_embedding.weight" in keys
    assert not any(k.startswith(f"{expert}model.embed_tokens") for k in keys)
    if kind == "pi0":
        assert {
            "model.state_proj.weight",
            "model.action_time_mlp_in.weight",
            "model.action_time_mlp_out.bias",
        } <= keys
        assert f"{expert}model.layers.0.input_layernorm.weight" in keys
    else:
        assert {"model.time_mlp_in.weight", "model.time_mlp_out.bias"} <= keys
        assert {
            f"{expert}model.layers.0.input_layernorm.dense.weight",
            f"{expert}model.norm.dense.bias",
        } <= keys
        assert not any("state_proj" in k or "action_time_mlp" in k for k in keys)


def test_full_size_state_dict_has_lerobots_key_count():
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.pi05.modeling_pi05 import PI05Policy

    config = PI05Config(
        input_features={"observation.images.top": PolicyFeature(FeatureType.VISUAL, (3, 224, 224))},
        output_features={"action": PolicyFeature(FeatureType.ACTION, (7,))},
        device="cpu",
    )
    with torch.device("meta"):
        keys = [k for k in PI05Policy(config).state_dict() if k.startswith("model.")]
    assert len(keys) == 813  # LeRobot 0.6.1's π0.5 built on the meta device has these 813 names and shapes
