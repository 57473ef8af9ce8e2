"""lerobot-eval on a robot: a twin judges its own success, an operator marks a real robot's episodes."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from tests.policies.conftest import diffusion_config, make_stats

from lerobot.configs.parser import ConfigError
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy
from lerobot.robots.myrobot import MyRobot, MyRobotConfig
from lerobot.scripts.eval import main as lerobot_eval
from lerobot.scripts.eval_config import parse_eval_config
from lerobot.scripts.eval_robot import TerminalKeys, evaluate_on_robot


class ScriptedKeys:
    """The operator, scripted: ``poll`` answers from ``pressed`` (one entry per control step), ``wait``
    from ``answers``; every call is logged."""

    def __init__(self, pressed: list[str | None], answers: list[str]):
        self.pressed, self.answers, self.log = list(pressed), list(answers), []

    def poll(self):
        key = self.pressed.pop(0) if self.pressed else None
        self.log.append(("poll", key))
        return key

    def wait(self, timeout_s):
        key = self.answers.pop(0) if self.answers else None
        self.log.append(("wait", key))
        return key

    def close(self):
        pass


class HoldPolicy:
    """Commands the present joint positions (a state-in, action-out policy the size of MyRobot)."""

    def __init__(self, dim: int = 4):
        self.config = SimpleNamespace(
            type="hold",
            input_features={"observation.state": PolicyFeature(FeatureType.STATE, (dim,))},
            output_features={"action": PolicyFeature(FeatureType.ACTION, (dim,))},
        )
        self.resets = 0

    def reset(self):
        self.resets += 1

    def select_action(self, obs):
        return {"action": torch.as_tensor(obs["observation.state"]).reshape(1, -1)}


def my_robot() -> MyRobot:
    return MyRobot(MyRobotConfig(id="eval", joints=["joint_1", "joint_2", "joint_3", "gripper"]))


def test_operator_marks_success_and_failure_with_keys():
    robot, policy = my_robot(), HoldPolicy()
    # Episode 0: "s" on its third step. Then Enter starts episode 1, which runs out unmarked and is
    # marked "f" afterwards (a stray "x" first is not a mark).
    keys = ScriptedKeys(pressed=[None, None, "s"] + [None] * 5, answers=["enter", "x", "f"])
    info = evaluate_on_robot(policy, robot, n_episodes=2, max_steps=5, control_frequency=200, keys=keys)
    first, second = info["per_episode"]
    assert (first["success"], first["n_steps"], first["judged_by"]) == (True, 3, "operator")
    assert (second["success"], second["n_steps"], second["sum_reward"]) == (False, 5, 0.0)
    assert info["aggregated"]["pc_success"] == 50.0 and policy.resets == 2
    assert not robot.is_connected  # connected for the evaluation, disconnected after (torque off)
    assert keys.log[3] == ("wait", "enter")  # the next episode waited for the operator's reset


def test_terminal_keys_read_typed_lines():
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd) as stream, os.fdopen(write_fd, "w") as typed:
        keys = TerminalKeys(stream)
        assert keys.poll() is None  # nothing typed: no wait
        typed.write("s\n")
        typed.flush()
        assert keys.wait(1.0) == "s"
        typed.write("\n")
        typed.flush()
        assert keys.wait(1.0) == "enter"
        typed.close()
        with pytest.raises(EOFError, match="no operator"):
            keys.wait(1.0)


def test_twin_judges_itself_and_cli_writes_eval_info(tmp_path):
    cfg = diffusion_config(
        image=False,
        input_features={"observation.state": PolicyFeature(FeatureType.STATE, (6,))},
        output_features={"action": PolicyFeature(FeatureType.ACTION, (6,))},
    )
    torch.manual_seed(0)
    policy = DiffusionPolicy(cfg, dataset_stats=make_stats({**cfg.input_features, **cfg.output_features}))
    ckpt = policy.save_pretrained(tmp_path / "ckpt")
    out = tmp_path / "eval"
    argv = [
        f"--policy.path={ckpt}", "--robot-type=so100_sim", "--robot.realtime=false", "--eval.n_episodes=2",
        "--eval.max_steps=4", f"--output_dir={out}", "--seed=5", "--max_relative_target=20",
    ]  # fmt: skip
    assert lerobot_eval(argv) == 0
    info = json.loads((out / "eval_info.json").read_text())
    assert [e["seed"] for e in info["per_episode"]] == [5, 6]
    assert all(
        e["judged_by"] == "robot" and e["n_steps"] == 4 and not e["success"] for e in info["per_episode"]
    )
    assert set(info["aggregated"]) >= {
        "pc_success",
        "avg_sum_reward",
        "avg_max_reward",
        "eval_s",
        "inference_ms",
    }
    assert info["overall"]["video_paths"] == [] and (out / "success_rate.png").is_file()


def test_twin_success_ends_the_episode(monkeypatch):
    from lerobot.robots.sim.config import SO100SimConfig
    from lerobot.robots.sim.so100_sim import SO100Sim

    robot = SO100Sim(SO100SimConfig(id="twin", realtime=False))
    calls = iter(range(100))
    monkeypatch.setattr(robot, "check_task_completion", lambda: next(calls) >= 3)  # done on the 3rd step
    info = evaluate_on_robot(HoldPolicy(6), robot, n_episodes=1, max_steps=10, control_frequency=500)
    assert info["per_episode"][0]["success"] and info["per_episode"][0]["n_steps"] == 3


def test_eval_config_needs_exactly_one_place(tmp_path):
    with pytest.raises(ConfigError, match="Give --env.\\* or --robot.\\*, not both"):
        parse_eval_config(
            ["--policy.type=act", "--policy.pretrained_path=x", "--env.type=pusht", "--robot.type=myrobot"]
        )
    cfg = parse_eval_config(["--policy.type=act", "--policy.pretrained_path=x", "--robot-type=myrobot"])
    assert cfg.robot.type == "myrobot" and cfg.env is None
    assert np.isclose(cfg.control_frequency or 30.0, 30.0)
