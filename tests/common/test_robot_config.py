"""The guide's ``lerobot.common.robot_config.RobotConfig``."""

from __future__ import annotations

import pytest

from lerobot.cameras import OpenCVCameraConfig, SimCameraConfig
from lerobot.common.robot_config import RobotConfig
from lerobot.robots import make_robot_from_config
from lerobot.robots.myrobot import MyRobot
from lerobot.robots.so100_follower import SO100Follower, SO100FollowerConfig


def test_guide_call_resolves_so100_and_converts_cameras():
    config = RobotConfig(
        robot_type="so100",
        control_frequency=30,
        cameras={
            "front": {"resolution": (640, 480), "fps": 30},
            "top": {"resolution": (128, 96), "fps": 15, "type": "sim"},
        },
        port="/dev/ttyUSB0",
    )
    assert isinstance(config.robot_config, SO100FollowerConfig) and config.type == "so100_follower"
    assert config.control_frequency == 30.0 and config.port == "/dev/ttyUSB0"
    front, top = config.cameras["front"], config.cameras["top"]
    assert isinstance(front, OpenCVCameraConfig) and (front.width, front.height, front.fps) == (640, 480, 30)
    assert front.index_or_path == 0
    assert isinstance(top, SimCameraConfig) and (top.width, top.height) == (128, 96)
    for robot in (config.make_robot(), make_robot_from_config(config)):
        assert isinstance(robot, SO100Follower)
        assert robot.observation_features["front"] == (480, 640, 3)  # (H, W, C) from (w, h)
        assert robot.observation_features["top"] == (96, 128, 3)


def test_registered_names_and_other_robots():
    assert RobotConfig(robot_type="koch", port="/dev/null").type == "koch_follower"
    robot = RobotConfig(robot_type="myrobot").make_robot()
    assert isinstance(robot, MyRobot)
    assert RobotConfig(robot_type="lekiwi_client", remote_ip="10.0.0.2", cameras={}).type == "lekiwi_client"


def test_bad_input_gives_clear_errors():
    with pytest.raises(ValueError, match=r"Unknown robot type 'so10'.*Known robot types:.*so100"):
        RobotConfig(robot_type="so10")
    with pytest.raises(ValueError, match=r"\(width, height\)"):
        RobotConfig(robot_type="myrobot", cameras={"front": {"resolution": (640,), "fps": 30}})
    with pytest.raises(ValueError, match="control_frequency"):
        RobotConfig(robot_type="myrobot", control_frequency=0)
    with pytest.raises(TypeError, match="SO100FollowerConfig"):
        RobotConfig(robot_type="so100")  # the port is required
