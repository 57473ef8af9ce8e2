"""The user guide's robot names are aliases in the robot registry: every CLI and config accepts them."""

import pytest

from lerobot.robots import ROBOT_CONFIGS
from lerobot.robots.so100_follower import SO100FollowerConfig
from lerobot.scripts.deploy import parse_deploy_config
from lerobot.scripts.record import parse_record_config
from lerobot.utils.registry import Registry


def test_guide_robot_names_parse_to_the_registered_configs(tmp_path):
    assert ROBOT_CONFIGS.get("so100") is SO100FollowerConfig and "koch" in ROBOT_CONFIGS
    cfg = parse_record_config(["--robot-type=so100", "--robot.port=/dev/ttyACM0", "--repo-id=me/x"])
    assert isinstance(cfg.robot, SO100FollowerConfig) and cfg.robot.type == "so100_follower"
    deploy = parse_deploy_config(["--policy.path=p", "--robot-type=so100", "--robot.port=/dev/ttyACM0"])
    assert isinstance(deploy.robot, SO100FollowerConfig)


def test_an_alias_cannot_hide_a_registered_name():
    registry = Registry("thing")
    registry.register("a")(type("A", (), {}))
    with pytest.raises(ValueError, match="would hide"):
        registry.register_alias("a", "b")
