"""Behaviour every policy shares, checked for ACT and Diffusion on tiny configs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from tests.policies.conftest import (
    ACTION_DIM,
    act_config,
    diffusion_config,
    make_batch,
    make_observation,
    make_stats,
)

from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.factory import get_policy_class, make_policy
from lerobot.policies.policy_protocol import PolicyProtocol, PolicyWithUpdate

CONFIGS = {
    "act": act_config,
    "act_env_state": lambda: act_config(image=False),
    "diffusion": diffusion_config,
    "diffusion_state_only": lambda: diffusion_config(image=False),
}


def build(name: str):
    config = CONFIGS[name]()
    torch.manual_seed(0)
    policy = get_policy_class(config.type)(
        config, dataset_stats=make_stats(config.input_features | config.output_features)
    )
    return config, policy


@pytest.mark.parametrize("name", list(CONFIGS))
def test_forward_loss_backprops(name):
    config, policy = build(name)
    policy.train()
    out = policy(make_batch(config))
    assert out["loss"].dim() == 0 and torch.isfinite(out["loss"])
    out["loss"].backward()
    grads = [p.grad for p in policy.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    assert isinstance(policy, PolicyProtocol)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_select_action_and_chunk_shapes(name):
    config, policy = build(name)
    obs = make_observation(config, batch_size=2)
    policy.reset()
    action = policy.select_action(obs)
    assert set(action) == {"action"} and action["action"].shape == (2, ACTION_DIM)
    chunk = policy.predict_action_chunk(obs)
    assert chunk.shape == (2, config.n_action_steps, ACTION_DIM)
    # A single unbatched frame (as an environment gives it) works too.
    policy.reset()
    single = policy.select_action({k: v[0] for k, v in obs.items()})
    assert single["action"].shape == (1, ACTION_DIM)


def test_acting_puts_every_module_in_eval_mode_even_one_added_after_the_last_action():
    config, policy = build("act")
    obs = make_observation(config, batch_size=1)
    policy.train()
    policy.select_action(obs)
    assert not any(m.training for m in policy.modules())
    policy.model.encoder.layers[0].dropout = torch.nn.Dropout(0.5)  # e.g. an adapter wrapped in later
    policy.reset()
    policy.select_action(obs)
    assert not any(m.training for m in policy.modules())
    policy.model.decoder.train()  # a submodule put back in training mode by hand
    policy.reset()
    policy.select_action(obs)
    assert not any(m.training for m in policy.modules())


@pytest.mark.parametrize("name", list(CONFIGS))
def test_call_in_eval_mode_returns_the_action_chunk(name):
    """``policy.eval(); policy(batch)["action"]`` (the guide's output check): the chunk, and the loss when
    the batch has targets; training mode's output is unchanged."""
    config, policy = build(name)
    obs = make_observation(config, batch_size=2)
    policy.eval()
    torch.manual_seed(0)  # Diffusion samples its noise
    out = policy(obs)
    assert set(out) == {"action"}
    torch.manual_seed(0)
    torch.testing.assert_close(out["action"], policy.predict_action_chunk(obs))
    with_targets = policy(make_batch(config, batch_size=2))
    assert torch.isfinite(with_targets["loss"]) and with_targets["action"].shape[:1] == (2,)
    policy.train()
    assert "action" not in policy(make_batch(config))


@pytest.mark.parametrize("name", ["act", "diffusion"])  # the configs with a camera
def test_uint8_chw_image_acts_as_the_same_image_in_unit_range(name):
    """A camera frame handed over as uint8 (0-255, CHW, as the guide's loops do) gives exactly the actions
    of the same frame as float in [0, 1]."""
    config, policy = build(name)
    obs = make_observation(config, batch_size=1)
    as_bytes = {k: (v * 255).round().to(torch.uint8) if v.dim() == 4 else v for k, v in obs.items()}
    as_unit = {k: v.float() / 255 if v.dtype == torch.uint8 else v for k, v in as_bytes.items()}
    assert any(v.dtype == torch.uint8 for v in as_bytes.values())
    torch.manual_seed(0)
    policy.reset()
    a = policy.select_action(as_bytes)["action"]
    torch.manual_seed(0)
    policy.reset()
    b = policy.select_action(as_unit)["action"]
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_save_load_gives_identical_actions(name, tmp_path):
    config, policy = build(name)
    policy.save_pretrained(tmp_path)
    loaded = get_policy_class(config.type).from_pretrained(tmp_path)
    assert loaded.config.to_dict() == config.to_dict()
    obs = make_observation(config)
    for p in (policy, loaded):
        p.reset()
    for _ in range(3):
        torch.manual_seed(7)  # the same diffusion noise for both
        want = policy.select_action(obs)["action"]
        torch.manual_seed(7)
        got = loaded.select_action(obs)["action"]
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    state, loaded_state = policy.state_dict(), loaded.state_dict()
    assert state.keys() == loaded_state.keys()
    for key, value in state.items():
        assert torch.equal(value, loaded_state[key]), key


@pytest.mark.parametrize(
    ("name", "overrides", "lr", "steps"),
    [
        ("act_env_state", {"dropout": 0.0, "kl_weight": 1.0}, 1e-3, 300),
        # Epsilon targets at random time steps keep a noise floor for longer; clean-sample targets show
        # the same network memorising the batch within the step budget.
        ("diffusion_state_only", {"prediction_type": "sample"}, 3e-3, 200),
    ],
)
def test_tiny_batch_is_overfit(name, overrides, lr, steps):
    """State-only: the loss on one fixed batch falls at least 10x within a few hundred Adam steps."""
    config = CONFIGS[name]()
    for key, value in overrides.items():
        setattr(config, key, value)
    torch.manual_seed(0)
    policy = get_policy_class(config.type)(
        config, dataset_stats=make_stats(config.input_features | config.output_features)
    )
    batch = make_batch(config, batch_size=4)
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = policy(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    first, last = sum(losses[:10]) / 10, sum(losses[-20:]) / 20
    assert last * 10 <= first, f"loss {first:.4f} -> {last:.4f}"


@pytest.mark.parametrize("name", ["act", "diffusion"])
def test_missing_feature_is_named(name):
    config, policy = build(name)
    batch = make_batch(config)
    del batch["observation.state"]
    with pytest.raises(ValueError, match=r"'observation\.state' is missing"):
        policy(batch)
    obs = make_observation(config)
    del obs["observation.images.top"]
    with pytest.raises(ValueError, match=r"'observation\.images\.top' is missing"):
        policy.select_action(obs)


@pytest.mark.parametrize("name", ["act", "diffusion"])
def test_wrong_shape_is_named(name):
    config, policy = build(name)
    batch = make_batch(config)
    batch["observation.state"] = batch["observation.state"][..., :-1]
    with pytest.raises(ValueError, match=r"'observation\.state' has shape .* config expects"):
        policy(batch)
    batch = make_batch(config)
    batch["action"] = batch["action"][:, :-1]
    with pytest.raises(ValueError, match=r"'action' has shape"):
        policy(batch)
    obs = make_observation(config)
    obs["observation.images.top"] = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match=r"'observation\.images\.top' has shape"):
        policy.select_action(obs)


def test_unknown_policy_type_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"Unknown policy type 'difusion'.*Did you mean 'diffusion'.*act"):
        get_policy_class("difusion")


def test_make_policy_fills_features_and_stats_from_dataset_metadata():
    class Meta:
        features = {
            "observation.state": {"dtype": "float32", "shape": [4], "names": None},
            "action": {"dtype": "float32", "shape": [2], "names": None},
        }
        stats = make_stats(
            diffusion_config(image=False).input_features | diffusion_config(image=False).output_features
        )

    config = diffusion_config(image=False, input_features={}, output_features={})
    policy = make_policy(config, ds_meta=Meta())
    assert set(config.input_features) == {"observation.state"} and set(config.output_features) == {"action"}
    assert isinstance(policy, PolicyWithUpdate)
    assert policy.select_action({"observation.state": torch.zeros(4)})["action"].shape == (1, 2)


def test_unnormalised_environment_state_is_flagged_and_diffusion_normalises_it():
    """Raw keypoints in pixels stalled a PushT Diffusion Policy: Diffusion maps ENV, others are told."""
    act = act_config(image=False)  # LeRobot's ACT mapping has no ENV entry
    stats = make_stats(act.input_features | act.output_features)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # values within [-10, 10] (a pose in metres): nothing to say
        get_policy_class("act")(act, dataset_stats=stats)
    stats["observation.environment_state"]["max"] = np.full(
        act.input_features["observation.environment_state"].shape, 505.0
    )
    with pytest.warns(
        UserWarning, match=r"observation.environment_state \(ENV\) is not normalised .* reach 505"
    ):
        get_policy_class("act")(act, dataset_stats=stats)
    diffusion = diffusion_config(image=False)
    diffusion.input_features["observation.environment_state"] = PolicyFeature(FeatureType.ENV, (3,))
    stats = make_stats(diffusion.input_features | diffusion.output_features)
    policy = get_policy_class("diffusion")(diffusion, dataset_stats=stats)
    env = stats["observation.environment_state"]
    raw = {
        "observation.environment_state": torch.stack(
            [torch.as_tensor(env["min"]), torch.as_tensor(env["max"])]
        )
    }
    normalised = policy.normalize_inputs(raw)["observation.environment_state"]
    torch.testing.assert_close(normalised, torch.tensor([[-1.0] * 3, [1.0] * 3]))


def test_a_training_output_folder_loads_its_last_checkpoint(tmp_path):
    """``--policy.path=./models/run`` (the guide passes lerobot-train's --output_dir) = its last checkpoint."""
    config, policy = build("act_env_state")
    policy.save_pretrained(tmp_path / "run" / "checkpoints" / "last" / "pretrained_model")
    loaded = get_policy_class("act").from_pretrained(tmp_path / "run")
    obs = make_observation(config, batch_size=1)
    torch.testing.assert_close(loaded.predict_action_chunk(obs), policy.predict_action_chunk(obs))


@pytest.mark.parametrize("name", ["act", "diffusion"])
def test_any_policy_with_an_ema_acts_and_saves_with_the_averaged_weights(name, tmp_path):
    """The EMA hook lives in the base class: setting ``policy.ema`` is all a policy needs."""
    from lerobot.policies.ema import EMA

    config, policy = build(name)
    policy.ema = EMA(policy, max_decay=0.5)
    policy.update()  # the average starts from the weights now
    observation = make_observation(config)
    torch.manual_seed(0)
    before = policy.predict_action_chunk(observation)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(torch.randn_like(p))  # the live weights move; the average has not seen it yet
    torch.manual_seed(0)
    assert torch.allclose(policy.predict_action_chunk(observation), before)
    live = {k: v.clone() for k, v in policy.state_dict().items()}
    policy.save_pretrained(tmp_path)
    assert all(torch.equal(v, live[k]) for k, v in policy.state_dict().items())  # swapped back after
    reloaded = get_policy_class(name).from_pretrained(tmp_path)
    torch.manual_seed(0)
    assert torch.allclose(reloaded.predict_action_chunk(observation), before)
