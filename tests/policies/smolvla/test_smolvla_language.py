"""The instruction reaches SmolVLA: from dataset frames through the DataLoader, from envs in eval, and
it changes the actions."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from tests.policies.smolvla.conftest import IMAGE_HW, TASKS, tiny_config, write_language_dataset

from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy


def _observation(batch: int = 1) -> dict:
    gen = torch.Generator().manual_seed(0)
    return {
        "observation.state": torch.randn(batch, 3, generator=gen),
        "observation.images.front": torch.rand(batch, 3, *IMAGE_HW, generator=gen),
    }


def test_dataset_task_strings_reach_the_loss(tiny_backbone: Path, tmp_path: Path) -> None:
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    write_language_dataset(tmp_path / "ds")
    ds = LeRobotDataset(
        "test/lang", root=tmp_path / "ds", delta_timestamps={"action": [i / 10 for i in range(4)]}
    )
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=12, shuffle=False)))
    assert list(batch["task"]) == [TASKS[0]] * 6 + [TASKS[1]] * 6
    torch.manual_seed(0)
    policy = SmolVLAPolicy(tiny_config(tiny_backbone), dataset_stats=ds.meta.stats)
    tokens, mask = policy.prepare_language(batch)
    red, blue = tokens[0][mask[0]], tokens[6][mask[6]]
    assert red.tolist() != blue.tolist() and len(red) == 6  # 5 words and the newline
    policy.train()
    noise, time = torch.randn(12, 4, 4), torch.full((12,), 0.5)
    loss = policy.forward(batch, noise=noise, time=time, reduction="none")["loss"]
    swapped = {**batch, "task": [TASKS[1]] * 6 + [TASKS[0]] * 6}
    assert not torch.allclose(loss, policy.forward(swapped, noise=noise, time=time, reduction="none")["loss"])
    policy.forward(batch)["loss"].backward()


def test_instruction_changes_the_action_chunk(tiny_backbone: Path) -> None:
    torch.manual_seed(0)
    policy = SmolVLAPolicy(tiny_config(tiny_backbone))
    noise = torch.randn(1, 4, 4)
    red = policy.predict_action_chunk({**_observation(), "task": TASKS[0]}, noise=noise)
    blue = policy.predict_action_chunk({**_observation(), "task": TASKS[1]}, noise=noise)
    assert red.shape == (1, 4, 2) and not torch.allclose(red, blue)
    again = policy.predict_action_chunk({**_observation(), "task": TASKS[0]}, noise=noise)
    torch.testing.assert_close(red, again)


def test_missing_instruction_is_one_clear_error(tiny_backbone: Path) -> None:
    policy = SmolVLAPolicy(tiny_config(tiny_backbone))
    with pytest.raises(ValueError, match="needs the instruction.*'task'"):
        policy.select_action(_observation())
    with pytest.raises(ValueError, match="2 task strings for a batch of 1"):
        policy.select_action({**_observation(), "task": TASKS})


class _InstructedEnv(gym.Env):
    """A one-step-per-action env that states an instruction, drawn anew at each reset."""

    observation_space = gym.spaces.Dict(
        {
            "agent_pos": gym.spaces.Box(-1, 1, (3,), np.float32),
            "pixels": gym.spaces.Dict({"front": gym.spaces.Box(0, 255, (*IMAGE_HW, 3), np.uint8)}),
        }
    )
    action_space = gym.spaces.Box(-1, 1, (2,), np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.task_description = TASKS[int(self.np_random.integers(2))]
        return self._obs(), {}

    def _obs(self):
        return {"agent_pos": np.zeros(3, np.float32), "pixels": {"front": np.zeros((*IMAGE_HW, 3), np.uint8)}}

    def step(self, action):
        return self._obs(), 0.0, False, False, {}


def test_eval_rollout_passes_each_envs_instruction() -> None:
    from lerobot.scripts.eval import rollout

    seen: list = []

    class Recorder:
        def reset(self) -> None: ...

        def select_action(self, batch):
            seen.append(batch.get("task"))
            return {"action": torch.zeros(batch["observation.state"].shape[0], 2)}

    env = gym.vector.SyncVectorEnv([_InstructedEnv for _ in range(3)])
    rollout(Recorder(), env, seeds=[0, 1, 2], max_steps=2, render=False)
    expected = list(env.get_attr("task_description"))
    assert seen == [expected, expected] and set(expected) <= set(TASKS)
    seen.clear()
    plain = gym.vector.SyncVectorEnv([lambda: gym.wrappers.TimeLimit(_PlainEnv(), 5)])
    rollout(Recorder(), plain, seeds=[0], max_steps=1, render=False)
    assert seen == [None]


class _PlainEnv(_InstructedEnv):
    def reset(self, seed=None, options=None):
        return self._obs(), {}


def test_guide_predict_drives_a_so100_twin(tiny_backbone: Path) -> None:
    """G27's call with SmolVLA: robot observation in, an action send_action accepts out."""
    pytest.importorskip("mujoco")
    from lerobot.cameras.sim import SimCameraConfig
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.robots.sim.so100_sim import SO100Sim

    config = tiny_config(
        tiny_backbone,
        input_features={
            "observation.state": PolicyFeature(FeatureType.STATE, (6,)),
            "observation.images.front": PolicyFeature(FeatureType.VISUAL, (3, *IMAGE_HW)),
        },
        output_features={"action": PolicyFeature(FeatureType.ACTION, (6,))},
        max_state_dim=8,
        max_action_dim=8,
    )
    torch.manual_seed(0)
    policy = SmolVLAPolicy(config, dataset_stats=None)
    robot = SO100Sim(cameras={"front": SimCameraConfig(width=IMAGE_HW[1], height=IMAGE_HW[0], fps=30)})
    with robot:
        obs = robot.get_observation()
        with torch.no_grad():
            action = policy.predict(
                images=obs["cameras"],
                states=obs["joint_positions"],
                gripper=obs["gripper"],
                instruction=TASKS[0],
            )
        assert action["joint_positions"].shape == (5,) and isinstance(action["gripper"], float)
        sent = robot.send_action(action)
        assert len(sent) == 6 and all(np.isfinite(v) for v in sent.values())
        with pytest.raises(ValueError, match="add gripper="):
            policy.predict(images=obs["cameras"], states=obs["joint_positions"], instruction=TASKS[0])
        with pytest.raises(ValueError, match=r"cameras \['observation.images.top'\] do not match"):
            policy.predict(images={"top": obs["cameras"]["front"]}, states=obs["joint_positions"], gripper=0.0,
                           instruction=TASKS[0])  # fmt: skip


def test_an_instruction_to_a_policy_that_takes_none_is_refused() -> None:
    from tests.policies.conftest import act_config

    from lerobot.policies.act.modeling_act import ACTPolicy

    policy = ACTPolicy(act_config())
    with pytest.raises(ValueError, match="ACTPolicy takes no language instruction"):
        policy.predict(images={}, states=np.zeros(4), instruction="pick up the cube")


def test_image_special_tokens_surround_each_camera(tiny_backbone: Path) -> None:
    torch.manual_seed(0)
    plain = SmolVLAPolicy(tiny_config(tiny_backbone))
    torch.manual_seed(0)
    marked = SmolVLAPolicy(tiny_config(tiny_backbone, add_image_special_tokens=True))
    batch = {**_observation(), "task": TASKS[0]}
    prefix = [
        p.model.embed_prefix(*p._prepare(p.prepare_observation(batch)))[0].shape[1] for p in (plain, marked)
    ]
    assert prefix[1] == prefix[0] + 3  # <fake_token_around_image><global-img> before, <fake...> after
