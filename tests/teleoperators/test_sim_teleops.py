"""Simulated leader, scripted expert and keyboard teleoperators driving the so100_sim twin."""

import pytest
from pynput.keyboard import KeyCode

from lerobot.robots.myrobot import MyRobot
from lerobot.robots.sim import AlohaSim, SO100Sim
from lerobot.robots.sim.so100_sim import SO100SimConfig
from lerobot.scripts.teleoperate import TeleoperateConfig, teleoperate
from lerobot.teleoperators import make_teleoperator_from_config
from lerobot.teleoperators.expert import ExpertTeleop, ExpertTeleopConfig
from lerobot.teleoperators.keyboard import KeyboardTeleop
from lerobot.teleoperators.sim_leader import SimLeader, SimLeaderConfig


def test_teleoperate_sim_leader_moves_so100_sim():
    loop = teleoperate(TeleoperateConfig(robot=SO100SimConfig(), teleop=SimLeaderConfig(), fps=30,
                                         teleop_time_s=0.2))  # fmt: skip
    assert loop.stats()["cycles"] == 6
    leader, robot = SimLeader(), SO100Sim()
    with robot, leader:
        leader.bind(robot)
        start = robot.get_observation()
        for _ in range(60):
            robot.send_action(leader.get_action())
        end = robot.get_observation()
    assert max(abs(end[k] - start[k]) for k in robot.action_features) > 2.0


def test_expert_teleop_solves_pick_cube():
    robot, teleop = (
        SO100Sim(),
        make_teleoperator_from_config(ExpertTeleopConfig(env="so100", task="pick_cube")),
    )
    assert isinstance(teleop, ExpertTeleop) and list(teleop.action_features) == list(robot.action_features)
    with robot, teleop:
        teleop.bind(robot)
        robot.reset(seed=2)
        teleop.reset()
        for _ in range(100):
            robot.send_action(teleop.get_action())
        assert robot.check_task_completion()


def test_expert_teleop_refuses_what_it_cannot_drive():
    teleop = ExpertTeleop(env="so100")
    with pytest.raises(ValueError, match="drives simulated twins only"):
        teleop.bind(MyRobot())
    with pytest.raises(ValueError, match="pass --teleop.env=aloha"):
        teleop.bind(AlohaSim())
    with pytest.raises(ValueError, match="--robot.task=pick_place"):
        ExpertTeleop(env="so100", task="pick_place").bind(SO100Sim())
    with pytest.raises(ValueError, match="choose one of"):
        ExpertTeleop(env="pusht")


def test_keyboard_drives_so100_sim():
    robot, teleop = SO100Sim(), KeyboardTeleop(step=1.0)
    with robot, teleop:
        start = robot.get_observation()
        teleop.reset(start)
        teleop.on_press(KeyCode.from_char("q"))  # shoulder_pan +
        for _ in range(20):
            robot.send_action(teleop.get_action())
        teleop.on_release(KeyCode.from_char("q"))
        for _ in range(20):
            robot.send_action(teleop.get_action())
        end = robot.get_observation()
    assert end["shoulder_pan.pos"] - start["shoulder_pan.pos"] == pytest.approx(20.0, abs=1.5)
    assert end["elbow_flex.pos"] == pytest.approx(start["elbow_flex.pos"], abs=1.5)
