"""End-effector control: Cartesian steps become joint targets through the arm's kinematic chain."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pytest
from tests.robots.arm_helpers import write_calibration_file

from lerobot.motors.emulator import start_emulated_arm
from lerobot.robots import ROBOT_CONFIGS, make_robot_from_config
from lerobot.robots.end_effector import EndEffectorConfig, EndEffectorControl
from lerobot.robots.kinematics import SO100_CHAIN, forward_kinematics
from lerobot.robots.robot import Robot, RobotConfig
from lerobot.teleoperators.keyboard import KeyboardEndEffectorTeleopConfig, KeyboardTeleop

JOINTS = [*SO100_CHAIN.joint_names, "gripper"]
READY = {"shoulder_pan.pos": 0.0, "shoulder_lift.pos": -20.0, "elbow_flex.pos": 40.0, "wrist_flex.pos": 30.0,
         "wrist_roll.pos": 0.0, "gripper.pos": 50.0}  # fmt: skip


@dataclass(kw_only=True)
class DegreeArmConfig(RobotConfig):
    use_degrees: bool = True


class DegreeArm(Robot):
    """An ideal SO-100-shaped arm: it reaches every target at once (and records what it was sent)."""

    config_class = DegreeArmConfig
    name = "so_follower"

    def __init__(self, use_degrees: bool = True):
        super().__init__(DegreeArmConfig(use_degrees=use_degrees))
        self.joints = dict(READY)
        self.sent: list[dict[str, float]] = []

    @property
    def action_features(self) -> dict[str, type]:
        return dict.fromkeys(self.joints, float)

    @property
    def is_connected(self) -> bool:
        return True

    def connect(self, calibrate: bool = True) -> None:
        pass

    def disconnect(self) -> None:
        pass

    def _get_observation(self) -> dict[str, float]:
        return dict(self.joints)

    def _send_action(self, action: dict[str, float]) -> dict[str, float]:
        self.sent.append(action)
        self.joints.update(action)
        return dict(action)


def tool(joints: dict[str, float]) -> np.ndarray:
    return forward_kinematics(SO100_CHAIN, {k.removesuffix(".pos"): v for k, v in joints.items()})[:3, 3]


def test_steps_move_the_tool_point_along_each_axis():
    arm = DegreeArm()
    ee = EndEffectorControl(arm)
    assert list(ee.action_features) == ["delta_x", "delta_y", "delta_z", "gripper"]
    assert ee.chain is SO100_CHAIN  # found from the robot's name
    for axis, name in enumerate(("delta_x", "delta_y", "delta_z")):
        start = tool(arm.joints)
        for _ in range(5):
            applied = ee.send_action(
                {"delta_x": 0.0, "delta_y": 0.0, "delta_z": 0.0, name: 0.004, "gripper": 50.0}
            )
            assert applied[name] == pytest.approx(0.004, abs=1e-4)
        moved = tool(arm.joints) - start
        expected = np.zeros(3)
        expected[axis] = 0.02
        np.testing.assert_allclose(moved, expected, atol=2e-4)
    ee.send_action({"delta_x": 0.0, "delta_y": 0.0, "delta_z": 0.0, "gripper": 10.0})
    assert arm.joints["gripper.pos"] == 10.0


def test_steps_are_capped_and_the_tool_stays_in_bounds():
    arm = DegreeArm()
    x0 = tool(arm.joints)
    bounds = ((x0[0] - 0.1, x0[1] - 0.1, x0[2] - 0.1), (x0[0] + 0.03, x0[1] + 0.1, x0[2] + 0.1))
    ee = EndEffectorControl(arm, EndEffectorConfig(bounds=bounds, max_step_m=0.02))
    applied = ee.send_action({"delta_x": 0.5, "delta_y": 0.0, "delta_z": 0.0, "gripper": 50.0})
    assert applied["delta_x"] == pytest.approx(0.02, abs=1e-4)  # a stuck key never jumps the arm
    for _ in range(5):
        ee.send_action({"delta_x": 0.02, "delta_y": 0.0, "delta_z": 0.0, "gripper": 50.0})
    assert tool(arm.joints)[0] == pytest.approx(x0[0] + 0.03, abs=1e-4)
    held = dict(arm.joints)
    assert ee.send_action({"delta_x": 0.0, "delta_y": 0.0, "delta_z": 0.0, "gripper": 50.0})["delta_x"] == 0.0
    assert arm.joints == held  # a zero step re-sends the same joints


def test_clear_errors():
    with pytest.raises(ValueError, match="needs degrees"):
        EndEffectorControl(DegreeArm(use_degrees=False))
    with pytest.raises(ValueError, match=r"bounds must be"):
        EndEffectorControl(DegreeArm(), EndEffectorConfig(bounds=((0, 0, 0), (-1, 1, 1))))
    with pytest.raises(ValueError, match="Unknown kinematic chain"):
        EndEffectorControl(DegreeArm(), EndEffectorConfig(kinematic_chain="ur5"))
    with pytest.raises(ValueError, match="delta_x"):
        EndEffectorControl(DegreeArm()).send_action({"gripper": 1.0})


def test_keyboard_ee_drives_an_emulated_so100(tmp_path):
    """keyboard_ee -> so100_follower_end_effector -> Feetech packets -> emulated servos: the tool moves up."""
    with start_emulated_arm("so100_follower") as emulator:
        write_calibration_file(tmp_path, "arm")
        config = ROBOT_CONFIGS.get("so100_follower_end_effector")(
            port=emulator.port, id="arm", calibration_dir=tmp_path, max_step_m=0.01
        )
        robot = make_robot_from_config(config)
        teleop = KeyboardTeleop(KeyboardEndEffectorTeleopConfig())
        robot.connect()
        teleop.connect()
        try:
            obs = robot.get_observation()
            start = tool({k: obs[k] for k in robot.robot.action_features})
            teleop.reset(obs)
            gripper = obs["gripper.pos"]
            teleop.on_press("z")  # delta_z's default plus key (delta_x: up/down, delta_y: left/right)
            for _ in range(6):
                robot.send_action(teleop.get_action())
                time.sleep(0.05)
            teleop.on_release("z")
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:  # the emulated servos travel toward their goals
                obs = robot.get_observation()
                now = tool({k: obs[k] for k in robot.robot.action_features})
                if now[2] - start[2] > 0.025:
                    break
                time.sleep(0.05)
        finally:
            teleop.disconnect()
            robot.disconnect()
    assert now[2] - start[2] == pytest.approx(0.03, abs=0.006)  # 6 steps of 5 mm
    np.testing.assert_allclose(now[:2], start[:2], atol=0.006)
    assert obs["gripper.pos"] == pytest.approx(gripper, abs=1.0)  # untouched: it starts from the present one
