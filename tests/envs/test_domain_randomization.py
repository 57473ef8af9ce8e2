"""--env.domain_randomization: per-episode scenes drawn from the seed (same seed, same scene; two seeds,
two scenes), the object layout untouched, the draws in ``info`` and really in the physics."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from lerobot.envs import make_env, make_expert, resolve_env_config
from lerobot.envs.recording import run_expert_episode
from lerobot.scripts.train_config import parse_train_config

SCENES = {
    "so100": {"task": "pick_color", "image_size": (48, 48)},
    "aloha": {"task": "transfer_cube", "image_size": (48, 64)},
    "metaworld": {"task": "push-v3", "image_size": (48, 48)},
    "xarm": {"task": "XarmLift-v0", "image_size": (48, 48)},
}
NEEDS = {"metaworld": "metaworld"}  # the optional package a scene needs
SCENE_NAMES = [
    pytest.param(name, marks=pytest.mark.skipif(
        name in NEEDS and importlib.util.find_spec(NEEDS[name]) is None, reason=f"needs {NEEDS.get(name)}"))
    for name in sorted(SCENES)
]  # fmt: skip


def image(obs: dict) -> np.ndarray:
    pixels = obs["pixels"]
    return next(iter(pixels.values())) if isinstance(pixels, dict) else pixels


@pytest.mark.parametrize("name", SCENE_NAMES)
def test_one_seed_gives_the_same_scene_two_seeds_different_ones(name):
    env = make_env(name, domain_randomization=True, **SCENES[name])
    try:
        (obs_a, info_a), (obs_b, info_b), (obs_c, info_c) = (env.reset(seed=s) for s in (1, 2, 1))
        draws_a, draws_b, draws_c = (i["domain_randomization"] for i in (info_a, info_b, info_c))
        assert sorted(draws_a) == sorted(draws_b) and len(draws_a) >= 10
        np.testing.assert_array_equal(image(obs_a), image(obs_c))
        for key in draws_a:
            np.testing.assert_array_equal(draws_a[key], draws_c[key])
            if np.size(draws_a[key]):
                assert not np.array_equal(draws_a[key], draws_b[key]), key
        assert np.abs(image(obs_a).astype(int) - image(obs_b)).mean() > 3  # the picture changes
    finally:
        env.close()


@pytest.mark.parametrize("name", SCENE_NAMES)
def test_the_object_layout_does_not_depend_on_randomization(name):
    task = SCENES[name]["task"]
    plain = make_env(name, task=task, obs_type="state")
    randomized = make_env(name, task=task, obs_type="state", domain_randomization=True)
    for seed in (3, 4):
        a, info = plain.reset(seed=seed)
        b, _ = randomized.reset(seed=seed)
        assert "domain_randomization" not in info
        # Meta-World settles the hand during its reset, where the randomised gripper moves it by ~1e-7 m.
        np.testing.assert_allclose(a["environment_state"], b["environment_state"], atol=1e-6)
        assert a.get("task") == b.get("task")
    plain.close(), randomized.close()


def test_draws_reach_the_physics_and_reset_from_nominal():
    env = make_env("so100", task="pick_color", obs_type="state", domain_randomization=True)
    model = env.unwrapped.model
    nominal = make_env("so100", task="pick_color", obs_type="state").unwrapped.model
    cubes = [model.body(n).id for n in ("cube", "cube_blue")]
    for seed in (5, 6):
        draws = env.reset(seed=seed)[1]["domain_randomization"]
        np.testing.assert_allclose(
            model.body_mass[cubes], nominal.body_mass[cubes] * draws["object_mass_scale"]
        )
        friction = [model.geom_friction[model.geom(n).id, 0] for n in ("cube", "cube_blue")]
        np.testing.assert_allclose(friction, 1.2 * draws["object_friction_scale"])  # not compounded
        np.testing.assert_allclose(
            model.actuator_gainprm[:, 0], nominal.actuator_gainprm[:, 0] * draws["actuator_gain_scale"]
        )
        np.testing.assert_allclose(model.actuator_biasprm[:, 1], -model.actuator_gainprm[:, 0])
        np.testing.assert_allclose(model.cam_pos, nominal.cam_pos + draws["camera_offset"])
        # The cubes keep their hue (the instruction names it): red stays reddest, blue bluest.
        red, blue = (model.geom_rgba[model.geom(n).id] for n in ("cube", "cube_blue"))
        assert red[:3].argmax() == 0 and blue[:3].argmax() == 2
    env.close()


def test_expert_still_succeeds_under_randomization():
    cfg = resolve_env_config("so100", task="pick_color", obs_type="state", domain_randomization=True)
    env, expert = make_env(cfg), make_expert(cfg)
    assert all(run_expert_episode(env, expert, seed) for seed in (0, 1))
    env.close()


def test_env_types_without_it_refuse_with_the_ones_that_have_it():
    with pytest.raises(ValueError, match=r"'pusht' has no domain randomisation") as error:
        resolve_env_config("pusht", domain_randomization=True)
    assert all(name in str(error.value) for name in ("aloha", "metaworld", "so100", "xarm"))


def test_the_guides_flag_spelling(tmp_path):
    cfg = parse_train_config(["--policy=act", "--dataset.repo_id=me/demo", f"--output_dir={tmp_path}",
                              "--env.type=so100", "--training.domain_randomization=true"])  # fmt: skip
    assert cfg.env.domain_randomization is True
