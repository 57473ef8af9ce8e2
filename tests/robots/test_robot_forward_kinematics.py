"""``robot.forward_kinematics(joint_positions)`` (the guide's workspace check): the tool point from the arm's chain."""

import numpy as np
import pytest

from lerobot.robots.kinematics import SO100_CHAIN, forward_kinematics
from lerobot.robots.myrobot import MyRobot
from lerobot.robots.sim import SO100Sim


def test_forward_kinematics_of_the_twin_matches_the_chain():
    robot = SO100Sim(cameras={}, realtime=False)
    robot.connect()
    try:
        obs = robot.get_observation()
        xyz = robot.forward_kinematics(obs["joint_positions"])
        flat = {k: obs[k] for k in robot.action_features}
        np.testing.assert_allclose(robot.forward_kinematics(flat), xyz, atol=1e-6)
        expected = forward_kinematics(SO100_CHAIN, {j: obs[f"{j}.pos"] for j in SO100_CHAIN.joint_names})
        np.testing.assert_allclose(xyz, expected[:3, 3], atol=1e-6)
        with pytest.raises(ValueError, match="arm joints"):
            robot.forward_kinematics([0.0, 1.0])
    finally:
        robot.disconnect()


def test_a_robot_without_a_chain_says_which_exist():
    with pytest.raises(ValueError, match="kinematic chain"):
        MyRobot().forward_kinematics([0.0] * 3)
