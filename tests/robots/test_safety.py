"""The safety layer: every rule clamps (or refuses) and is recorded, the e-stop, and a random stream."""

import logging
import math
import sys
import threading
import types
from dataclasses import dataclass

import numpy as np
import pytest

from lerobot.motors.feetech import FeetechMotorsBus
from lerobot.motors.motors_bus import Motor, MotorCalibration, MotorNormMode
from lerobot.robots.kinematics import SO100_CHAIN, forward_kinematics
from lerobot.robots.myrobot import MyRobot
from lerobot.robots.robot import Robot, RobotConfig
from lerobot.robots.safety import (
    EmergencyStopError,
    SafetyConfig,
    SafetyLayer,
    ensure_safe_goal_position,
    with_safety,
)

SO_MOTORS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
HALF_RANGE_DEG = (3072 - 1024) / 2 * 360 / 4095  # the fake calibration below, in DEGREES units


class RecordingBus(FeetechMotorsBus):
    """A real Feetech bus object (never opened) whose torque switches are recorded."""

    def __init__(self, motors: dict[str, Motor], calibration: dict[str, MotorCalibration]):
        super().__init__("/dev/null", motors, calibration)
        self.torque: list[str] = []

    def disable_torque(self, motors=None, num_retry=0):
        self.torque.append("off")

    def enable_torque(self, motors=None, num_retry=0):
        self.torque.append("on")


@dataclass(kw_only=True)
class FakeArmConfig(RobotConfig):
    pass


class FakeArm(Robot):
    """An SO-100-shaped arm with a motor bus whose servos reach every goal at once."""

    config_class = FakeArmConfig
    name = "so100_follower"

    def __init__(self, mode: MotorNormMode = MotorNormMode.DEGREES, drive_mode: int = 0):
        super().__init__(FakeArmConfig(id="fake"))
        motors = {
            n: Motor(i + 1, "sts3215", MotorNormMode.RANGE_0_100 if n == "gripper" else mode)
            for i, n in enumerate(SO_MOTORS)
        }
        self.calibration = {
            n: MotorCalibration(i + 1, drive_mode, 0, 1024, 3072) for i, n in enumerate(SO_MOTORS)
        }
        self.bus = RecordingBus(motors, self.calibration)
        self.position = {f"{n}.pos": 50.0 if n == "gripper" else 0.0 for n in SO_MOTORS}
        self.connected = False
        self.sent: list[dict[str, float]] = []

    @property
    def observation_features(self):
        return {f"{n}.pos": float for n in SO_MOTORS}

    @property
    def action_features(self):
        return {f"{n}.pos": float for n in SO_MOTORS}

    @property
    def is_connected(self):
        return self.connected

    def connect(self, calibrate=True):
        self.connected = True

    def disconnect(self):
        self.connected = False

    def _get_observation(self):
        return dict(self.position)

    def _send_action(self, action):
        self.sent.append(dict(action))
        self.position = dict(action)
        return action


def arm_action(**joints: float) -> dict[str, float]:
    action = {f"{n}.pos": 50.0 if n == "gripper" else 0.0 for n in SO_MOTORS}
    action.update({f"{k}.pos": float(v) for k, v in joints.items()})
    return action


def my_robot() -> MyRobot:
    robot = MyRobot(
        id="safe", max_speed_deg_s=0.0, joints=["joint_1", "joint_2", "joint_3", "gripper"]
    )  # stays at 0: a fixed present position
    robot.connect()
    return robot


def test_ensure_safe_goal_position(caplog):
    present = {"a": 0.0, "b": 10.0}
    assert ensure_safe_goal_position({"a": 1.0, "b": 10.5}, present, 2.0) == {"a": 1.0, "b": 10.5}
    with caplog.at_level(logging.WARNING):
        safe = ensure_safe_goal_position({"a": 5.0, "b": -10.0}, present, {"a": 1.0, "b": 3.0})
    assert safe == {"a": 1.0, "b": 7.0}
    assert "a 5.00 -> 1.00" in caplog.text and "b -10.00 -> 7.00" in caplog.text
    with pytest.raises(ValueError, match=r"only in goal \['c'\], only in present \['b'\]"):
        ensure_safe_goal_position({"a": 0.0, "c": 0.0}, present, 1.0)
    with pytest.raises(ValueError, match=r"missing \['b'\], unexpected \['z'\]"):
        ensure_safe_goal_position({"a": 0.0, "b": 0.0}, present, {"a": 1.0, "z": 1.0})


def test_joint_limits_clamp_and_log(caplog):
    layer = SafetyLayer(
        my_robot(), SafetyConfig(joint_limits={"joint_1": (-1.0, 1.0), "gripper.pos": (0, 0.5)})
    )
    with caplog.at_level(logging.WARNING, logger="lerobot.robots.safety"):
        sent = layer.send_action(
            {"joint_1.pos": 3.0, "joint_2.pos": 2.0, "joint_3.pos": -5.0, "gripper.pos": -1}
        )
    assert sent == {"joint_1.pos": 1.0, "joint_2.pos": 2.0, "joint_3.pos": -5.0, "gripper.pos": 0.0}
    assert layer.interventions == [
        {"rule": "joint_limits", "motor": "joint_1.pos", "requested": 3.0, "sent": 1.0, "step": 0},
        {"rule": "joint_limits", "motor": "gripper.pos", "requested": -1.0, "sent": 0.0, "step": 0},
    ]
    (record,) = [r for r in caplog.records if r.name == "lerobot.robots.safety"]  # one line per step
    assert "joint_1.pos 3.000 -> 1.000 (joint_limits)" in record.getMessage()
    layer.send_action({"joint_1.pos": 0.5, "joint_2.pos": 0, "joint_3.pos": 0, "gripper.pos": 0})
    assert len(layer.interventions) == 2 and layer.steps == 2


def test_unknown_motor_names_and_bad_configs_fail_early():
    with pytest.raises(ValueError, match=r"names \['elbow'\], which myrobot does not have"):
        SafetyLayer(my_robot(), SafetyConfig(joint_limits={"elbow": (0, 1)}))
    with pytest.raises(ValueError, match=r"no limit for \['joint_3.pos', 'gripper.pos'\]"):
        SafetyLayer(my_robot(), SafetyConfig(max_relative_target={"joint_1": 1, "joint_2": 1}))
    with pytest.raises(ValueError, match="none is registered for myrobot"):
        SafetyLayer(my_robot(), SafetyConfig(workspace_bounds=((0, 0, 0), (1, 1, 1))))
    with pytest.raises(ValueError, match=r"needs motors \['shoulder_pan'"):
        SafetyLayer(
            my_robot(), SafetyConfig(workspace_bounds=((0, 0, 0), (1, 1, 1)), kinematic_chain="so100")
        )
    with pytest.raises(ValueError, match="on_violation"):
        SafetyLayer(my_robot(), SafetyConfig(on_violation="ignore"))


def test_max_relative_target_clamps_against_the_present_position():
    robot = FakeArm()
    layer = SafetyLayer(
        robot, SafetyConfig(max_relative_target={**dict.fromkeys(SO_MOTORS[:5], 5.0), "gripper": 10})
    )
    layer.connect()
    sent = layer.send_action(arm_action(shoulder_pan=20, elbow_flex=-3, gripper=0))
    assert sent == arm_action(shoulder_pan=5, elbow_flex=-3, gripper=40)
    sent = layer.send_action(arm_action(shoulder_pan=20, elbow_flex=-3, gripper=0))  # present is now 5
    assert sent["shoulder_pan.pos"] == 10 and sent["gripper.pos"] == 30
    assert [(r["motor"], r["rule"], r["step"]) for r in layer.interventions] == [
        ("shoulder_pan.pos", "max_relative_target", 0),
        ("gripper.pos", "max_relative_target", 0),
        ("shoulder_pan.pos", "max_relative_target", 1),
        ("gripper.pos", "max_relative_target", 1),
    ]


def test_present_is_read_when_the_action_is_sent_not_taken_from_the_last_observation():
    robot = FakeArm()
    layer = SafetyLayer(robot, SafetyConfig(max_relative_target=1.0))
    layer.connect()
    layer.get_observation()
    robot.position["shoulder_pan.pos"] = 30.0  # moved after the observation the policy saw
    assert layer.send_action(arm_action(shoulder_pan=35))["shoulder_pan.pos"] == 31.0
    robot.position["shoulder_pan.pos"] = 30.0  # no observation since: same fresh read
    assert layer.send_action(arm_action(shoulder_pan=35))["shoulder_pan.pos"] == 31.0


def test_joint_limits_from_calibration_and_normalisation_mode():
    layer = SafetyLayer(FakeArm())
    layer.connect()
    sent = layer.send_action(arm_action(shoulder_pan=150, wrist_roll=-150, gripper=120))
    assert sent["shoulder_pan.pos"] == pytest.approx(HALF_RANGE_DEG)
    assert sent["wrist_roll.pos"] == pytest.approx(-HALF_RANGE_DEG)
    assert sent["gripper.pos"] == 100.0
    layer = SafetyLayer(FakeArm(MotorNormMode.RANGE_M100_100))
    layer.connect()
    assert layer.send_action(arm_action(elbow_flex=-130, gripper=-5)) == arm_action(
        elbow_flex=-100, gripper=0
    )


def test_uncalibrated_degrees_motor_is_never_sent_unlimited():
    robot = FakeArm()
    robot.calibration.clear()
    robot.bus.calibration.clear()
    layer = SafetyLayer(robot)
    layer.connect()
    with pytest.raises(RuntimeError, match="'shoulder_pan' of so100_follower has no calibration"):
        layer.send_action(arm_action())
    assert robot.sent == []


@pytest.mark.parametrize("mode", ["clamp", "refuse"])
def test_refuse_keeps_the_present_position_and_nan_is_always_rejected(mode):
    robot = FakeArm()
    layer = SafetyLayer(robot, SafetyConfig(max_relative_target=10.0, on_violation=mode))
    layer.connect()
    robot.position = arm_action(shoulder_pan=3, gripper=20)
    sent = layer.send_action(arm_action(shoulder_pan=30, elbow_flex=4))
    if mode == "refuse":
        assert sent == robot.position == arm_action(shoulder_pan=3, gripper=20)
        assert {(r["motor"], r["rule"]) for r in layer.interventions} == {
            ("shoulder_pan.pos", "max_relative_target"),
            ("elbow_flex.pos", "max_relative_target"),
            ("gripper.pos", "max_relative_target"),
        }
    else:
        assert sent == arm_action(shoulder_pan=13, elbow_flex=4, gripper=30)
    for bad in (math.nan, math.inf, -math.inf):
        before = dict(robot.position)
        assert layer.send_action(arm_action(wrist_flex=bad, gripper=before["gripper.pos"])) == before
        rec = layer.interventions[-1]
        assert rec["rule"] == "non_finite" and rec["motor"] == "wrist_flex.pos" and rec["sent"] == 0.0
        assert not math.isfinite(rec["requested"])


def tip_z(action: dict[str, float]) -> float:
    return forward_kinematics(SO100_CHAIN, action)[2, 3]


def test_workspace_clamps_the_tip_above_the_table_by_bisection():
    robot = FakeArm()
    bounds = ((-0.5, -0.5, 0.0), (0.5, 0.5, 0.5))
    layer = SafetyLayer(robot, SafetyConfig(workspace_bounds=bounds))  # chain picked from the robot name
    layer.connect()
    request = arm_action(shoulder_lift=85)
    assert tip_z(request) < -0.1  # the gripper would go through the table
    sent = layer.send_action(request)
    assert 0.0 <= tip_z(sent) < 1e-6  # stopped right at the table
    assert 0 < sent["shoulder_lift.pos"] < 85
    assert sent["gripper.pos"] == 50.0  # the gripper does not move the tip and is left alone
    assert [(r["motor"], r["rule"]) for r in layer.interventions] == [("shoulder_lift.pos", "workspace")]
    assert layer.send_action(arm_action(shoulder_lift=10)) == arm_action(
        shoulder_lift=10
    )  # inside: untouched


def test_workspace_refuse_and_moving_back_from_outside():
    robot = FakeArm()
    layer = SafetyLayer(
        robot,
        SafetyConfig(
            workspace_bounds=((-0.5, -0.5, 0.0), (0.5, 0.5, 0.5)),
            kinematic_chain="so100",
            on_violation="refuse",
        ),
    )
    layer.connect()
    assert layer.send_action(arm_action(shoulder_lift=85)) == robot.position == arm_action()
    assert layer.interventions[-1]["rule"] == "workspace"
    robot.position = arm_action(shoulder_lift=80)  # already below the table (e.g. pushed by hand)
    assert layer.send_action(arm_action(shoulder_lift=70))["shoulder_lift.pos"] == 70  # back out: allowed
    assert layer.send_action(arm_action(shoulder_lift=75))["shoulder_lift.pos"] == 70  # deeper: refused


def test_workspace_in_range_units_converts_to_degrees():
    robot = FakeArm(MotorNormMode.RANGE_M100_100)
    layer = SafetyLayer(robot, SafetyConfig(workspace_bounds=((-0.5, -0.5, 0.0), (0.5, 0.5, 0.5))))
    layer.connect()
    sent = layer.send_action(arm_action(shoulder_lift=95))  # 95% of +90 deg
    degrees = {k: v * HALF_RANGE_DEG / 100 for k, v in sent.items()}
    assert 0.0 <= tip_z(degrees) < 1e-6
    mirrored = FakeArm(MotorNormMode.RANGE_M100_100, drive_mode=1)  # the bus flips the sign
    layer = SafetyLayer(mirrored, SafetyConfig(workspace_bounds=((-0.5, -0.5, 0.0), (0.5, 0.5, 0.5))))
    layer.connect()
    assert layer.send_action(arm_action(shoulder_lift=95)) == arm_action(shoulder_lift=95)  # leans back: fine
    assert layer.send_action(arm_action(shoulder_lift=-95))["shoulder_lift.pos"] > -95


def test_structured_actions_go_through_the_same_checks():
    robot = FakeArm()
    layer = SafetyLayer(robot, SafetyConfig(max_relative_target=5.0))
    layer.connect()
    sent = layer.send_action({"joint_positions": [100, -100, 0, 0, 0], "gripper": 50.0})
    assert sent == arm_action(shoulder_pan=5, shoulder_lift=-5)
    assert robot.sent[-1] == sent
    obs = layer.get_observation()
    np.testing.assert_allclose(obs["joint_positions"], [5, -5, 0, 0, 0])
    with pytest.raises(ValueError, match="expects 5 joint positions"):
        layer.send_action({"joint_positions": [0, 0], "gripper": 0.0})


def test_emergency_stop_disables_torque_and_blocks_until_reset():
    robot = FakeArm()
    layer = SafetyLayer(robot)
    layer.connect()
    layer.send_action(arm_action(shoulder_pan=10))
    stopper = threading.Thread(target=layer.emergency_stop, args=("test",))
    stopper.start()
    stopper.join()
    assert layer.stopped and robot.bus.torque == ["off"]
    n_sent = len(robot.sent)
    with pytest.raises(EmergencyStopError, match="reset_emergency_stop"):
        layer.send_action(arm_action())
    assert len(robot.sent) == n_sent
    robot.position = arm_action(shoulder_pan=-20)  # the limp arm was moved by hand
    layer.reset_emergency_stop()
    assert not layer.stopped
    assert robot.sent[-1] == arm_action(shoulder_pan=-20)  # goal := present before torque comes back
    assert robot.bus.torque == ["off", "on"]
    assert layer.send_action(arm_action(shoulder_pan=1)) == arm_action(shoulder_pan=1)


def test_emergency_stop_without_a_bus_disconnects():
    robot = my_robot()
    layer = SafetyLayer(robot)
    layer.emergency_stop()
    assert not robot.is_connected
    with pytest.raises(EmergencyStopError):
        layer.send_action({"joint_positions": [0, 0, 0], "gripper": 0})
    layer.reset_emergency_stop()
    layer.connect()
    assert layer.send_action({"joint_positions": [0, 0, 0], "gripper": 0})["gripper.pos"] == 0


def test_keyboard_emergency_stop(monkeypatch, caplog):
    listeners = []

    class Listener:
        def __init__(self, on_press, on_release=None):
            self.on_press, self.running = on_press, False
            listeners.append(self)

        def start(self):
            self.running = True

        def stop(self):
            self.running = False

    keyboard = types.SimpleNamespace(Listener=Listener)
    monkeypatch.setitem(sys.modules, "pynput", types.SimpleNamespace(keyboard=keyboard))
    monkeypatch.delenv("PYNPUT_BACKEND", raising=False)
    monkeypatch.setenv("DISPLAY", ":0")
    robot = FakeArm()
    layer = SafetyLayer(robot)
    layer.connect()
    (listener,) = listeners
    listener.on_press("x")
    assert not layer.stopped
    listener.on_press(types.SimpleNamespace(name="space"))  # what pynput passes for Key.space
    assert layer.stopped and robot.bus.torque == ["off"]
    layer.disconnect()
    assert not listener.running

    monkeypatch.setenv("PYNPUT_BACKEND", "dummy")
    with caplog.at_level(logging.INFO):
        SafetyLayer(FakeArm()).connect()
    assert len(listeners) == 1 and "headless" in caplog.text


def test_with_safety_wraps_once():
    robot = FakeArm()
    assert with_safety(robot, safety_checks=False) is robot
    layer = with_safety(robot)
    assert isinstance(layer, SafetyLayer) and isinstance(layer, Robot) and layer.bus is robot.bus
    assert with_safety(layer) is layer
    config = SafetyConfig(max_relative_target=1.0)
    assert with_safety(robot, config).safety_config is config


def test_nothing_unsafe_is_ever_forwarded():
    """1000 random actions (wild, NaN, structured): every forwarded value obeys every rule."""
    robot = FakeArm()
    forwarded: list[dict[str, float]] = []
    send = robot._send_action

    def record(action):
        forwarded.append(dict(action))
        return send(action)

    robot._send_action = record
    max_step = 8.0
    bounds = ((-0.3, -0.3, 0.02), (0.45, 0.3, 0.4))
    layer = SafetyLayer(robot, SafetyConfig(max_relative_target=max_step, workspace_bounds=bounds))
    layer.connect()
    rng = np.random.default_rng(0)
    lo = np.asarray(bounds[0])
    hi = np.asarray(bounds[1])
    for i in range(1000):
        present = dict(layer.get_observation()) if i % 2 else dict(robot.position)
        values = rng.normal(0, 120, size=6)
        values[rng.random(6) < 0.02] = rng.choice([np.nan, np.inf, -np.inf])
        if i % 3 == 0:
            layer.send_action({"joint_positions": values[:5], "gripper": values[5]})
        else:
            layer.send_action(dict(zip(robot.action_features, values.tolist())))
        sent = forwarded[-1]
        for key, value in sent.items():
            assert math.isfinite(value)
            limit = 100.0 if key == "gripper.pos" else HALF_RANGE_DEG
            assert (0.0 if key == "gripper.pos" else -limit) - 1e-9 <= value <= limit + 1e-9, (i, key, value)
            assert abs(value - present[key]) <= max_step + 1e-9, (i, key, value, present[key])
        tip = forward_kinematics(SO100_CHAIN, sent)[:3, 3]
        assert np.all(tip >= lo - 1e-9) and np.all(tip <= hi + 1e-9), (i, tip)
    assert len(forwarded) == 1000
    assert {r["rule"] for r in layer.interventions} == {
        "non_finite",
        "joint_limits",
        "max_relative_target",
        "workspace",
    }
