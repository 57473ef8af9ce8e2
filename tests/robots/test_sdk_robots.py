"""HopeJR, Reachy 2, Unitree G1, OpenArm: features without hardware, registry, clear SDK errors."""

from __future__ import annotations

import sys
import time
import types

import pytest

from lerobot.motors import MotorCalibration, save_calibration
from lerobot.motors.emulator import FeetechEmulator
from lerobot.robots import ROBOT_CONFIGS, make_robot_from_config
from lerobot.robots.hope_jr import ARM_MOTORS, HAND_JOINTS, HopeJrArm
from lerobot.robots.openarm import OpenArmFollower
from lerobot.robots.reachy2 import Reachy2Robot
from lerobot.robots.unitree_g1 import G1_JOINTS, UnitreeG1


@pytest.mark.parametrize(
    ("robot_type", "n_joints", "first"),
    [
        ("reachy2", 3 + 2 * 8 + 2, "neck_yaw.pos"),
        ("unitree_g1", 17, "waist_yaw.pos"),
        ("openarm_follower", 8, "joint_1.pos"),
        ("hope_jr_arm", 7, "shoulder_pitch.pos"),
        ("hope_jr_hand", 16, "thumb_cmc.pos"),
    ],
)
def test_registered_with_features_computed_without_hardware(robot_type, n_joints, first):
    cls = ROBOT_CONFIGS.get(robot_type)
    config = cls(port="/dev/null") if robot_type == "hope_jr_arm" else cls()
    robot = make_robot_from_config(config)
    assert robot.name == robot_type and not robot.is_connected
    assert len(robot.action_features) == n_joints and next(iter(robot.action_features)) == first
    assert robot.observation_features == robot.action_features  # no cameras configured


def test_g1_has_the_29_joints_of_the_published_model():
    assert len(G1_JOINTS) == 29 and len({j.name for j in G1_JOINTS}) == 29
    assert all(j.lower < j.upper for j in G1_JOINTS)
    assert len(UnitreeG1(control_arms_only=False).action_features) == 29
    assert len(HAND_JOINTS) == 16


@pytest.mark.parametrize(
    ("robot", "package", "install"),
    [
        (lambda: Reachy2Robot(ip_address="10.0.0.5"), "reachy2_sdk", "pip install reachy2-sdk"),
        (lambda: UnitreeG1(), "unitree_sdk2py", "pip install unitree_sdk2py"),
        (lambda: OpenArmFollower(port="can0"), "can", "pip install python-can"),
    ],
)
def test_connect_names_the_missing_vendor_package(robot, package, install, monkeypatch):
    monkeypatch.setitem(sys.modules, package, None)  # makes the import fail even if it is installed
    with pytest.raises(ImportError, match=f"'{package}'.*{install}"):
        robot().connect()


def test_driverless_robots_say_what_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "can", types.ModuleType("can"))
    with pytest.raises(NotImplementedError, match="Damiao CAN motor bus"):
        OpenArmFollower().connect()
    with pytest.raises(NotImplementedError, match="protocol 1"):
        make_robot_from_config(ROBOT_CONFIGS.get("hope_jr_hand")()).connect()
    with pytest.raises(NotImplementedError, match="sm8512bl"):
        HopeJrArm(port="/dev/null").connect()
    with pytest.raises(ConnectionError, match="not connected"):
        OpenArmFollower().get_observation()


class FakeJoint:
    def __init__(self) -> None:
        self.present_position = 0.0
        self.goal_position = None


class FakeReachySDK:
    """The slice of ``reachy2_sdk.ReachySDK`` the driver uses (joints dict, goals, power)."""

    def __init__(self, host: str):
        self.host = host
        self.joints = {}
        self.sent = 0
        self.on = False

    def __getattr__(self, name):
        raise AttributeError(name)

    def is_connected(self) -> bool:
        return True

    def turn_on(self) -> None:
        self.on = True

    def turn_off_smoothly(self) -> None:
        self.on = False

    def send_goal_positions(self) -> None:
        self.sent += 1

    def disconnect(self) -> None:
        pass


def test_reachy2_maps_features_to_sdk_joints_and_clamps(monkeypatch):
    from collections import defaultdict

    fake = types.ModuleType("reachy2_sdk")
    instances = []

    def make(host):
        sdk = FakeReachySDK(host)
        sdk.joints = defaultdict(FakeJoint)
        instances.append(sdk)
        return sdk

    fake.ReachySDK = make
    monkeypatch.setitem(sys.modules, "reachy2_sdk", fake)
    robot = Reachy2Robot(ip_address="10.0.0.5", with_l_arm=False, with_antennas=False)
    robot.connect()
    reachy = instances[0]
    assert reachy.host == "10.0.0.5" and reachy.on
    reachy.joints["r_arm.elbow.pitch"].present_position = -42.0
    assert robot.get_observation()["r_elbow_pitch.pos"] == -42.0
    action = dict.fromkeys(robot.action_features, 0.0) | {"r_elbow_pitch.pos": -500.0, "r_gripper.pos": 30.0}
    sent = robot.send_action(action)
    assert sent["r_elbow_pitch.pos"] == -130.0  # clamped to the joint's range
    assert reachy.joints["r_arm.elbow.pitch"].goal_position == -130.0
    assert reachy.joints["r_arm.gripper"].goal_position == 30.0 and reachy.sent == 1
    robot.disconnect()
    assert not reachy.on and not robot.is_connected


def test_hope_jr_arm_runs_on_the_feetech_emulator(tmp_path):
    models = ["sts3250"] * 4 + ["sts3215"] * 3
    with FeetechEmulator() as emu:
        for motor_id, model in enumerate(models, start=1):
            emu.add_motor(model, motor_id, 1_000_000, 2048)
        calibration = {
            name: MotorCalibration(i, 0, 0, *((0, 4095) if name == "wrist_roll" else (1000, 3000)))
            for i, name in enumerate(ARM_MOTORS, start=1)
        }
        save_calibration(tmp_path / "arm.json", calibration)
        robot = HopeJrArm(port=emu.port, id="arm", calibration_dir=tmp_path, shoulder_pitch_model="sts3250")
        with robot:
            obs = robot.get_observation()
            assert list(obs) == [f"{m}.pos" for m in ARM_MOTORS]
            assert obs["elbow_flex.pos"] == pytest.approx((2048 - 2000) * 360 / 4095, abs=0.1)
            robot.send_action(dict.fromkeys(robot.action_features, 0.0) | {"elbow_flex.pos": 20.0})
            # A sync write has no reply: wait (bounded) for the emulator to have processed it.
            deadline = time.monotonic() + 5
            while emu.motor(4).get("Goal_Position") == 2048 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert emu.motor(4).get("Goal_Position") == int(20 * 4095 / 360 + 2000)
        assert [emu.motor(i).get("Torque_Enable") for i in range(1, 8)] == [0] * 7
