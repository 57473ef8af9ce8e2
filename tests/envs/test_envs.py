"""make_env / configs / preprocess_observation: env keys as the simulators name them, and once renamed
(``dataset_observation``, the one renaming step) they match the declared dataset features."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from lerobot.configs.parser import build
from lerobot.envs import EnvConfig, make_env, preprocess_observation, resolve_env_config
from lerobot.envs.utils import dataset_keys, dataset_observation

# Small images keep rendering cheap on CPU; the shapes still come from the config.
CASES = [
    ("so100", {"obs_type": "state"}),
    ("so100", {"obs_type": "pixels_agent_pos", "image_size": (48, 64)}),
    ("aloha", {"task": "AlohaTransferCube-v0", "obs_type": "state"}),
    ("aloha", {"task": "AlohaInsertion-v0", "obs_type": "pixels_agent_pos", "image_size": (48, 64)}),
    ("pusht", {"obs_type": "pixels_agent_pos"}),
    ("pusht", {"obs_type": "state"}),
]


def check_obs(raw: dict, features: dict, batch: tuple[int, ...] = ()) -> None:
    """The env's own keys (``agent_pos``, ...), which rename to exactly the declared features."""
    assert "agent_pos" in raw and not any(k.startswith("observation.") for k in raw)
    obs = dataset_observation(raw)
    expected = {k for k in features if k != "action"}
    assert set(obs) == expected
    for key, value in obs.items():
        ft = features[key]
        assert value.shape == batch + tuple(ft["shape"]), key
        assert value.dtype == (np.uint8 if ft["dtype"] == "video" else np.float32), key


@pytest.mark.parametrize(("name", "overrides"), CASES, ids=[f"{n}-{o['obs_type']}" for n, o in CASES])
def test_single_env_obs_match_features(name, overrides):
    cfg = resolve_env_config(name, **overrides)
    env = make_env(cfg)
    try:
        obs, info = env.reset(seed=0)
        check_obs(obs, cfg.features)
        assert info["is_success"] is False
        action = env.action_space.sample()
        assert action.shape == cfg.features["action"]["shape"]
        obs, reward, terminated, truncated, info = env.step(action)
        check_obs(obs, cfg.features)
        assert isinstance(info["is_success"], bool)
        assert env.observation_space.contains(obs)
        assert set(dataset_keys(env.observation_space.spaces)) == set(cfg.features) - {"action"}
    finally:
        env.close()


@pytest.mark.parametrize("name", ["so100", "aloha", "pusht"])
def test_vector_env_obs_match_features(name):
    cfg = resolve_env_config(name, obs_type="state")
    env = make_env(cfg, n_envs=2)
    try:
        obs, info = env.reset(seed=[0, 1])
        check_obs(obs, cfg.features, batch=(2,))
        obs, *_ = env.step(env.action_space.sample())
        check_obs(obs, cfg.features, batch=(2,))
        # different seeds give different scenes
        assert not np.allclose(obs["environment_state"][0], obs["environment_state"][1])
    finally:
        env.close()


def test_guide_call_and_gym_id():
    env = make_env("pusht", render_mode="rgb_array")
    try:
        obs, _ = env.reset(seed=0)
        assert env.render().ndim == 3
        # the guide reads the env's own keys (G20), as in gym-pusht
        assert obs["agent_pos"].shape == (2,) and obs["pixels"].shape == (96, 96, 3)
        assert obs["pixels"].dtype == np.uint8
    finally:
        env.close()
    assert resolve_env_config("gym_aloha/AlohaTransferCube-v0").task == "AlohaTransferCube-v0"
    assert resolve_env_config("aloha", task="transfer_cube").task == "AlohaTransferCube-v0"


def test_unknown_task_lists_tasks():
    with pytest.raises(ValueError, match="mobile_cabinet") as err:
        make_env(type="aloha", task="mobile_cabinet")
    assert "AlohaInsertion-v0" in str(err.value) and "AlohaTransferCube-v0" in str(err.value)


def test_unknown_type_lists_types():
    with pytest.raises(ValueError, match="Unknown env type 'alohaa'") as err:
        make_env("alohaa")
    assert "aloha" in str(err.value) and "so100" in str(err.value)


@pytest.mark.parametrize("name", ["libero", "metaworld"])
def test_unavailable_envs_explain(name, monkeypatch):
    for module in ("metaworld", "metaworld.env_dict", "metaworld.policies", "libero"):
        monkeypatch.setitem(sys.modules, module, None)  # as if the extra were not installed
    cfg = resolve_env_config(name)
    assert "action" in cfg.features
    with pytest.raises(ImportError, match="pip install"):
        make_env(cfg)


def test_cli_parser_picks_env_type():
    cfg = build(EnvConfig, {"type": "so100", "task": "pick_place", "image_size": "[64, 64]"})
    assert cfg.type == "so100" and cfg.task == "pick_place" and cfg.episode_length == 240
    assert cfg.features["observation.images.front"]["shape"] == (64, 64, 3)
    with pytest.raises(ValueError, match="Tasks we have: AlohaInsertion-v0"):
        build(EnvConfig, {"type": "aloha", "task": "mobile_cabinet"})


def test_preprocess_observation_single_and_batched():
    single = {
        "observation.state": np.zeros(6, np.float32),
        "observation.images.front": np.full((8, 10, 3), 255, np.uint8),
    }
    out = preprocess_observation(single)
    assert out["observation.state"].shape == (1, 6)
    img = out["observation.images.front"]
    assert img.shape == (1, 3, 8, 10) and img.dtype == torch.float32 and float(img.max()) == 1.0
    batched = {k: np.stack([v, v, v]) for k, v in single.items()}
    out = preprocess_observation(batched)
    assert out["observation.state"].shape == (3, 6) and out["observation.images.front"].shape == (3, 3, 8, 10)


def test_preprocess_observation_renames_env_keys():
    """The one renaming step: env keys -> dataset names, single images and camera dicts alike."""
    raw = {
        "agent_pos": np.arange(2.0),
        "environment_state": np.ones(3),
        "pixels": {"top": np.zeros((4, 5, 3), np.uint8)},
    }
    out = preprocess_observation(raw)
    assert sorted(out) == ["observation.environment_state", "observation.images.top", "observation.state"]
    assert out["observation.images.top"].shape == (1, 3, 4, 5)
    single = dataset_observation({"agent_pos": [1.0, 2.0], "pixels": np.zeros((4, 5, 3))})
    assert single["observation.state"].dtype == np.float32 and single["observation.image"].dtype == np.uint8
    assert dataset_observation(single).keys() == single.keys()  # applying it twice changes nothing
