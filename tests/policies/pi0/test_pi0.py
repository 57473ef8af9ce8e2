"""π0 and π0.5 at tiny sizes: config sizes, memory check on the meta device, the KV cache, training, save/load, errors."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from tests.policies.pi0.conftest import CHUNK, IMAGE, TINY_SIZES, observation, tiny_config, training_batch

from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.config import PreTrainedConfig
from lerobot.policies.factory import get_policy_class
from lerobot.policies.pi0 import PI0Config
from lerobot.policies.pi0.configuration_pi0 import GEMMA_VARIANTS, SIGLIP_SO400M
from lerobot.policies.pi0.modeling_pi0 import PI0Policy
from lerobot.policies.pretrained import PreTrainedPolicy, parameter_bytes
from lerobot.policies.vla_common import MissingPretrainedFilesError, flow_matching_target, pad_vector

KINDS = ["pi0", "pi05"]


def test_types_are_registered():
    assert PreTrainedConfig.get_choice_class("pi0") is PI0Config
    assert get_policy_class("pi0") is PI0Policy
    assert get_policy_class("pi05").__name__ == "PI05Policy"


def test_variant_sizes_default_to_the_named_variants_and_merge_per_key():
    sizes = PI0Config().sizes()
    assert (
        sizes["vlm"] == GEMMA_VARIANTS["gemma_2b"] and sizes["action_expert"] == GEMMA_VARIANTS["gemma_300m"]
    )
    assert sizes["vision"] == SIGLIP_SO400M and sizes["vocab_size"] == 257_152
    partial = PI0Config(variant_sizes={"action_expert": {"depth": 3}}).sizes()
    assert partial["action_expert"] == {**GEMMA_VARIANTS["gemma_300m"], "depth": 3}
    assert "variant_sizes" not in PI0Config().to_dict()  # LeRobot's config.json has no such key
    assert tiny_config().to_dict()["variant_sizes"] == TINY_SIZES


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"paligemma_variant": "gemma_7b"}, "not a known Gemma variant"),
        ({"variant_sizes": {"vlm": {"widht": 8}}}, "unknown keys"),
        ({"variant_sizes": {"text": {}}}, "unknown sections"),
        ({"variant_sizes": {"action_expert": {"num_heads": 2}}}, "same num_heads"),
        ({"dtype": "float16"}, "dtype"),
        ({"n_action_steps": 99}, "exceeds chunk_size"),
    ],
)
def test_bad_configs_get_one_clear_error(overrides, message):
    with pytest.raises(ValueError, match=message):
        PI0Config(**overrides)


def test_full_size_model_is_sized_on_the_meta_device_before_any_allocation(monkeypatch):
    config = PI0Config(
        input_features={"observation.images.top": PolicyFeature(FeatureType.VISUAL, (3, 224, 224))},
        output_features={"action": PolicyFeature(FeatureType.ACTION, (7,))},
        device="cpu",
    )
    needed, largest = parameter_bytes(PI0Policy, config)
    assert 3.5e9 < needed / 4 < 4.5e9 and "embed_tokens" in largest  # PaliGemma 3B + expert, float32
    with torch.device("meta"):
        keys = set(PI0Policy(config).state_dict())
    assert len([k for k in keys if k.startswith("model.")]) == 778  # as LeRobot 0.6.1's π0 at full size
    monkeypatch.setattr("lerobot.policies.pretrained.available_memory_bytes", lambda: 2**30)
    with pytest.raises(MemoryError, match="needs 1[0-9].[0-9]+ GiB"):
        PI0Policy(config)


def test_image_resolution_must_match_the_vision_tower():
    with pytest.raises(ValueError, match="image_resolution"):
        PI0Policy(tiny_config(image_resolution=(32, 32)))


@pytest.mark.parametrize("kind", KINDS)
def test_cached_prefix_gives_the_joint_pass_velocity(make_policy, kind):
    """Sampling reuses the prefix's keys/values: the velocity must equal the training (joint) pass's."""
    policy = make_policy(kind).eval()
    batch = policy.normalize_targets(policy.normalize_inputs(training_batch()))
    with torch.no_grad():
        inputs = policy.model_inputs(batch)
        actions = pad_vector(batch["action"], policy.config.max_action_dim)
        noise = torch.randn_like(actions)
        time = torch.tensor([0.3, 0.9])
        joint = policy.model(inputs, actions, noise, time)
        x_t, u_t = flow_matching_target(actions, noise, time)
        cached = F.mse_loss(
            policy.model.velocity(policy.model.encode_prefix(inputs), inputs.state, x_t, time),
            u_t,
            reduction="none",
        )
    torch.testing.assert_close(cached, joint, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_instruction_and_noise_change_the_actions(make_policy, kind):
    policy = make_policy(kind)
    obs = observation(batch=1)
    noise = torch.randn(1, CHUNK, policy.config.max_action_dim)
    red = policy.predict_action_chunk(obs, noise=noise)
    again = policy.predict_action_chunk(obs, noise=noise)
    blue = policy.predict_action_chunk({**obs, "task": "pick up the blue cube"}, noise=noise)
    other = policy.predict_action_chunk(obs, noise=torch.randn_like(noise))
    assert red.shape == (1, CHUNK, 4) and torch.isfinite(red).all()
    torch.testing.assert_close(red, again)
    assert not torch.allclose(red, blue) and not torch.allclose(red, other)


@pytest.mark.parametrize("kind", KINDS)
def test_training_lowers_the_loss_and_select_action_queues_the_chunk(make_policy, kind):
    policy = make_policy(kind).train()
    batch = training_batch()
    noise = torch.randn(2, CHUNK, policy.config.max_action_dim)
    time = torch.tensor([0.4, 0.7])
    optimizer = torch.optim.AdamW(policy.get_optim_params(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss = policy(batch, noise=noise, time=time)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    per_sample = policy.forward(batch, noise=noise, time=time, reduction="none")["loss"]
    assert per_sample.shape == (2,)
    policy.reset()
    obs = observation()
    chunk_noise = torch.randn(2, CHUNK, policy.config.max_action_dim)
    chunk = policy.predict_action_chunk(obs, noise=chunk_noise)
    steps = [policy.select_action(obs, noise=chunk_noise)["action"] for _ in range(CHUNK)]
    torch.testing.assert_close(torch.stack(steps, dim=1), chunk)


def test_padded_steps_count_as_zero(make_policy):
    policy = make_policy()
    batch = training_batch()
    noise, time = torch.randn(2, CHUNK, 6), torch.tensor([0.5, 0.5])
    is_pad = torch.zeros(2, CHUNK, dtype=torch.bool)
    is_pad[:, 3:] = True
    with torch.no_grad():
        loss = policy.forward({**batch, "action_is_pad": is_pad}, noise=noise, time=time)["loss"]
        normalised = policy.normalize_targets(policy.normalize_inputs(batch))
        actions = pad_vector(normalised["action"], policy.config.max_action_dim)
        elementwise = policy.model(policy.model_inputs(normalised), actions, noise, time)[..., :4]
    torch.testing.assert_close(loss, (elementwise * ~is_pad[..., None]).mean())
    assert loss < elementwise.mean()


def test_freezing_options(make_policy):
    frozen_vision = make_policy(freeze_vision_encoder=True)
    vlm = frozen_vision.model.paligemma_with_expert.paligemma
    assert not any(p.requires_grad for p in vlm.model.vision_tower.parameters())
    assert all(p.requires_grad for p in vlm.model.language_model.parameters())
    expert_only = make_policy(train_expert_only=True)
    trainable = {n for n, p in expert_only.named_parameters() if p.requires_grad}
    assert trainable and not any("paligemma_with_expert.paligemma." in n for n in trainable)
    assert any("gemma_expert" in n for n in trainable) and "model.action_in_proj.weight" in trainable


@pytest.mark.parametrize("kind", KINDS)
def test_save_and_reload_act_identically_with_the_tokenizer_inside(make_policy, kind, tmp_path):
    policy = make_policy(kind)
    folder = policy.save_pretrained(tmp_path / "ckpt")
    assert (folder / "tokenizer" / "tokenizer.json").is_file()
    steps = json.loads((folder / "policy_preprocessor.json").read_text())["steps"]
    names = [s["registry_name"] for s in steps]
    tokenizer_step = steps[names.index("tokenizer_processor")]["config"]
    assert tokenizer_step["tokenizer_name"] == "tokenizer" and tokenizer_step["padding"] == "max_length"
    normalizer = steps[names.index("normalizer_processor")]
    assert (folder / normalizer["state_file"]).is_file()
    assert (
        normalizer["state_file"]
        == f"policy_preprocessor_step_{names.index('normalizer_processor')}_normalizer_processor.safetensors"
    )
    if kind == "pi0":
        assert (
            names.index("pi0_new_line_processor")
            < names.index("tokenizer_processor")
            < names.index("normalizer_processor")
        )
    else:  # the state is discretised after normalisation
        assert (
            names.index("normalizer_processor")
            < names.index("pi05_prepare_state_tokenizer_processor_step")
            < names.index("tokenizer_processor")
        )
    config = json.loads((folder / "config.json").read_text())
    assert config["type"] == kind and config["variant_sizes"] == TINY_SIZES
    loaded = PreTrainedPolicy.from_pretrained(folder)  # the class config.json names
    assert type(loaded) is type(policy) and loaded._tokenizer_dir == folder
    obs = observation()
    noise = torch.randn(2, CHUNK, policy.config.max_action_dim)
    torch.testing.assert_close(
        loaded.predict_action_chunk(obs, noise=noise), policy.predict_action_chunk(obs, noise=noise)
    )


def test_clear_errors_for_cameras_noise_images_and_tokenizer(make_policy, tmp_path):
    policy = make_policy()
    obs = observation()
    renamed = {
        ("observation.images.wrist" if k == "observation.images.front" else k): v for k, v in obs.items()
    }
    with pytest.raises(ValueError, match=r"observation.images.front.*observation.images.wrist"):
        policy.predict_action_chunk(renamed)
    with pytest.raises(ValueError, match="noise must have shape"):
        policy.predict_action_chunk(obs, noise=torch.randn(2, CHUNK, 4))
    with pytest.raises(ValueError, match="shape"):
        policy.predict_action_chunk({**obs, "observation.images.front": torch.rand(2, 1, *IMAGE[1:])})
    with pytest.raises(ValueError, match="'task' must be"):
        policy.predict_action_chunk({**obs, "task": ["only one"]})
    bare = PI0Policy(tiny_config())
    bare.tokenizer_name = str(tmp_path / "no_such_tokenizer")
    with pytest.raises(MissingPretrainedFilesError):
        bare.predict_action_chunk(obs)


@pytest.mark.parametrize("kind", KINDS)
def test_gradient_checkpointing_gives_the_same_gradients(make_policy, kind):
    batch, noise, time = training_batch(), torch.randn(2, CHUNK, 6), torch.tensor([0.2, 0.6])
    grads = []
    for checkpointing in (False, True):
        policy = make_policy(kind, gradient_checkpointing=checkpointing).train()
        policy(batch, noise=noise, time=time)["loss"].backward()
        grads.append(torch.cat([p.grad.flatten() for p in policy.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[0], grads[1])


def test_bfloat16_weights_act_and_train(make_policy):
    policy = make_policy(dtype="bfloat16")
    assert policy.model.paligemma_with_expert.gemma_expert.lm_head.weight.dtype == torch.bfloat16
    assert policy.model.action_in_proj.weight.dtype == torch.float32
    chunk = policy.predict_action_chunk(observation())
    assert chunk.dtype == torch.float32 and torch.isfinite(chunk).all()
    loss = policy.train()(training_batch())["loss"]
    loss.backward()
    assert torch.isfinite(loss)


def test_from_pretrained_builds_parameters_on_meta_then_loads_them(make_policy, tmp_path, monkeypatch):
    pytest.importorskip("accelerate")
    from safetensors.torch import load_file, save_file

    from lerobot.policies.pretrained import WeightsMismatchError

    policy = make_policy()
    folder = policy.save_pretrained(tmp_path / "ckpt")
    seen = []
    original = PI0Policy._load_checkpoint

    def spy(self, *args, **kwargs):
        seen.append(sum(p.is_meta for p in self.model.parameters()))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PI0Policy, "_load_checkpoint", spy)
    loaded = PI0Policy.from_pretrained(folder)
    assert seen[0] == len(list(loaded.model.parameters()))  # nothing was allocated before the file was read
    assert not any(p.is_meta for p in loaded.parameters())
    obs, noise = observation(), torch.randn(2, CHUNK, 6)
    torch.testing.assert_close(
        loaded.predict_action_chunk(obs, noise=noise), policy.predict_action_chunk(obs, noise=noise)
    )
    weights = load_file(str(folder / "model.safetensors"))
    weights.pop("model.state_proj.weight")
    save_file(weights, str(folder / "model.safetensors"))
    with pytest.raises(WeightsMismatchError, match="state_proj"):
        PI0Policy.from_pretrained(folder)
    with pytest.warns(UserWarning, match="state_proj"):
        partial = PI0Policy.from_pretrained(folder, strict=False)
    assert (
        torch.isfinite(partial.model.state_proj.weight).all()
        and partial.model.state_proj.weight.abs().sum() > 0
    )


def test_pi0_and_pi05_configs_are_not_interchangeable(make_policy, tmp_path):
    from lerobot.policies.pi05 import PI05Config

    assert not isinstance(PI05Config(), PI0Config)
    with pytest.raises(TypeError, match="PI0Config"):
        PI0Policy(tiny_config("pi05"))
    folder = make_policy("pi05").save_pretrained(tmp_path / "pi05")
    with pytest.raises(ValueError, match="'pi05' policy, not a 'pi0' one"):
        PI0Policy.from_pretrained(folder)


def test_empty_camera_slots_are_masked_padding(make_policy):
    obs = observation()
    plain = make_policy(empty_cameras=1)
    images, masks = plain.prepare_images(plain.prepare_observation(obs))
    assert len(images) == 2 and masks[1].tolist() == [False, False] and (images[1] == -1).all()
    # LeRobot lists its empty slots as features: absent from the batch, they are padding too.
    listed_features = dict(tiny_config().input_features)
    listed_features["observation.images.empty_camera_0"] = PolicyFeature(FeatureType.VISUAL, (3, 16, 16))
    listed = make_policy(empty_cameras=1, input_features=listed_features)
    images, masks = listed.prepare_images(listed.prepare_observation(obs))
    assert len(images) == 2 and masks[1].tolist() == [False, False]
    chunk = listed.predict_action_chunk(obs)
    assert torch.isfinite(chunk).all()
