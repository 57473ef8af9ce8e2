"""Faults and hostile values on emulated arms: nothing unsafe reaches a motor (issue 17, findings 1-4).

Each test injects the fault or value an independent probe used and checks the raw registers of the
emulated servos, i.e. what a real motor would have been told:

1. torque-off (``disconnect()``, ``SafetyLayer.emergency_stop()``) reaches every motor when one
   does not answer, reports overload or is unplugged, and names the ones it could not confirm;
2. ``SafetyConfig(joint_limits=...)`` naming some motors narrows the calibrated limits, never
   replaces them;
3. NaN and infinity are refused by the bus, every goal is clamped to the calibrated range at the bus
   whatever drives it (bare driver, safety layer, LeKiwi), and ``send_action`` reports what was written;
4. ``max_relative_target`` is measured from the position read when the action is sent; when it
   cannot be read the action is refused and nothing is written.
"""

from __future__ import annotations

import logging
import math
from contextlib import suppress

import numpy as np
import pytest
from tests.robots.arm_helpers import RANGE, REST, write_calibration_file

from lerobot.motors import MotorCalibration, save_calibration
from lerobot.motors.emulator import EmulatedBus, Fault, FeetechEmulator, start_emulated_arm
from lerobot.motors.protocol import MotorPortError, MotorTimeoutError, TorqueOffError
from lerobot.robots.hope_jr import HopeJrHand
from lerobot.robots.koch_follower import KochFollower
from lerobot.robots.lekiwi import LeKiwi
from lerobot.robots.lekiwi.config import ARM_MOTORS, WHEELS
from lerobot.robots.motor_arm import ArmFollower
from lerobot.robots.safety import ActionRefusedError, SafetyConfig, SafetyLayer
from lerobot.robots.so100_follower import SO100Follower

JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
ARMS = {"so100": ("so100_follower", SO100Follower, ("wrist_roll",)),
        "koch": ("koch_follower", KochFollower, ("shoulder_pan", "wrist_roll"))}  # fmt: skip
FAULT_TIMEOUT_MS = 250  # per request once a fault is injected: a silent motor costs 3 x this
HALF_RANGE_DEG = (RANGE[1] - RANGE[0]) / 2 * 360 / 4095  # calibrated 500..3500 in degrees: +-131.87
NON_FINITE = [math.nan, math.inf, -math.inf, np.float32("nan")]


def make_arm(kind: str, emulator: EmulatedBus, tmp_path, **config) -> ArmFollower:
    """A follower of ``kind`` on ``emulator`` with the known calibration (500..3500), connected."""
    _, cls, full_turn = ARMS[kind]
    write_calibration_file(tmp_path, "arm", full_turn=full_turn)
    robot = cls(port=emulator.port, id="arm", calibration_dir=tmp_path, **config)
    robot.connect()
    return robot


@pytest.fixture(params=sorted(ARMS))
def arm(request, tmp_path):
    """``(emulator, connected follower)`` for the SO-100 (Feetech) and the Koch (Dynamixel)."""
    with start_emulated_arm(ARMS[request.param][0]) as emulator:
        robot = make_arm(request.param, emulator, tmp_path)
        yield emulator, robot
        if robot.is_connected:
            emulator.clear_faults()
            with suppress(TorqueOffError):  # a test may have unplugged a motor for good
                robot.disconnect()


@pytest.fixture
def so100(tmp_path):
    with start_emulated_arm("so100_follower") as emulator:
        yield emulator, tmp_path


def torque(emulator: EmulatedBus) -> list[int]:
    return [emulator.motor(i).get("Torque_Enable") for i in sorted(emulator.motors)]


def goals(emulator: EmulatedBus, robot: ArmFollower) -> list[int]:
    """Raw goals of motors 1-6 once every packet sent so far was processed (sync writes get no reply)."""
    robot.bus.read("Present_Position", "gripper", normalize=False)  # answered after all earlier ones
    return [emulator.motor(i).get("Goal_Position") for i in range(1, 7)]


def push(emulator: EmulatedBus, motor_id: int, raw: int) -> None:
    """The arm is moved (by a collision, a hand, a previous action) to ``raw`` and holds there."""
    with emulator.lock:
        motor = emulator.motor(motor_id)
        motor.actual = motor.target = float(raw)
        motor.set("Goal_Position", raw)
        motor.refresh()


def inject(
    emulator: EmulatedBus, robot: ArmFollower, motor_id: int, how: str, times: int | None = None
) -> None:
    """Make ``motor_id`` fail ``how`` (a :class:`Fault` or ``"unplugged"``), with shorter timeouts."""
    robot.bus.timeout_ms = FAULT_TIMEOUT_MS  # connect() ran with the default, robust on a busy machine
    if how == "unplugged":
        emulator.remove_motor(motor_id)
    else:
        emulator.inject_fault(motor_id, Fault(how), times)


FAILURES = ["no_reply", "overload", "unplugged"]


# ------------------------------------------------------------------ 1. torque-off reaches every motor


@pytest.mark.parametrize("how", FAILURES)
def test_disconnect_turns_off_every_motor_when_one_fails(arm, how):
    emulator, robot = arm
    robot.send_action({f"{j}.pos": 5.0 for j in JOINTS})
    assert torque(emulator) == [1] * 6
    inject(emulator, robot, 1, how)
    with pytest.raises(
        TorqueOffError,
        match=r"not confirmed by motor 'shoulder_pan' \(id 1\) \(1 of 6 motors.*cut their power",
    ) as err:
        robot.disconnect()
    assert list(err.value.failures) == ["shoulder_pan"]
    assert torque(emulator)[-5:] == [0] * 5  # motors 2-6: the probe found them still powered
    if how != "unplugged":
        assert torque(emulator)[0] == 0  # motor 1 heard the broadcast even though it cannot answer
    assert not robot.is_connected  # the port is released all the same


def test_a_transient_fault_is_retried_and_disconnect_succeeds(arm):
    emulator, robot = arm
    for motor_id in (1, 4):
        inject(emulator, robot, motor_id, Fault.NO_REPLY, times=2)  # two lost answers, third attempt lands
    robot.disconnect()
    assert torque(emulator) == [0] * 6 and not robot.is_connected


def test_the_broadcast_reaches_a_motor_the_bus_does_not_address(so100):
    emulator, tmp_path = so100
    stranger = emulator.add_motor("sts3215", 12, 1_000_000)  # on the wire, not in the robot's config
    robot = make_arm("so100", emulator, tmp_path)
    with emulator.lock:
        stranger.set("Torque_Enable", 1)
    robot.disconnect()
    assert torque(emulator) == [0] * 7


@pytest.mark.parametrize("how", FAILURES)
def test_emergency_stop_reaches_every_motor_and_names_the_unreachable(arm, how, caplog):
    emulator, robot = arm
    layer = SafetyLayer(robot, SafetyConfig(estop_key=None))
    layer.send_action({f"{j}.pos": 5.0 for j in JOINTS})
    inject(emulator, robot, 1, how)
    with caplog.at_level(logging.CRITICAL, logger="lerobot.robots.safety"):
        unreached = layer.emergency_stop("test")  # returns: never raises out of a key listener
    assert list(unreached) == ["shoulder_pan"] and "id 1" in unreached["shoulder_pan"]
    assert torque(emulator)[-5:] == [0] * 5
    assert layer.stopped
    assert "could not reach ['shoulder_pan']" in caplog.text and "cut the power" in caplog.text


def test_emergency_stop_with_every_motor_answering_reports_nothing(arm):
    emulator, robot = arm
    layer = SafetyLayer(robot, SafetyConfig(estop_key=None))
    inject(emulator, robot, 3, Fault.BAD_CHECKSUM, times=1)  # absorbed by the retries
    assert layer.emergency_stop() == {}
    assert torque(emulator) == [0] * 6


def test_emergency_stop_on_a_vanished_port_names_every_motor(arm):
    emulator, robot = arm
    layer = SafetyLayer(robot, SafetyConfig(estop_key=None))
    emulator.close_port()
    unreached = layer.emergency_stop()
    assert list(unreached) == JOINTS and "unplugged" in unreached["gripper"]
    assert layer.stopped
    with pytest.raises(MotorPortError):
        robot.disconnect()
    assert not robot.is_connected


# ------------------------------------------------------------------ 2. partial joint limits narrow


def test_partial_joint_limits_narrow_the_calibrated_ones(so100):
    emulator, tmp_path = so100
    robot = make_arm("so100", emulator, tmp_path)
    layer = SafetyLayer(robot, SafetyConfig(joint_limits={"gripper": (0, 50)}, estop_key=None))
    sent = layer.send_action({f"{j}.pos": 300.0 for j in JOINTS})  # the probe's shoulder_pan=300
    assert sent["shoulder_pan.pos"] == pytest.approx(HALF_RANGE_DEG)  # calibrated limit kept
    assert sent["gripper.pos"] == 50.0  # the user's narrower one applies
    assert goals(emulator, robot)[0] == RANGE[1] and goals(emulator, robot)[5] == 2000  # 50 % of 500..3500
    assert {r["motor"] for r in layer.interventions} == {f"{j}.pos" for j in JOINTS}
    rng = np.random.default_rng(17)
    for _ in range(300):  # the probe's 300 random actions: 447 of 1800 raw goals were out of range
        layer.send_action(dict(zip(robot.action_features, rng.normal(0, 250, size=6).tolist())))
        raw = goals(emulator, robot)
        lows = [RANGE[0]] * 4 + [0, RANGE[0]]  # wrist_roll turns fully: 0..4095
        highs = [RANGE[1]] * 4 + [4095, 2000]
        assert all(lo <= r <= hi for lo, r, hi in zip(lows, raw, highs)), raw
    robot.disconnect()


def test_user_limits_never_widen_and_disjoint_ones_are_an_error(so100):
    emulator, tmp_path = so100
    robot = make_arm("so100", emulator, tmp_path)
    wide = SafetyLayer(robot, SafetyConfig(joint_limits={"elbow_flex": (-1000, 1000)}, estop_key=None))
    assert wide.send_action({f"{j}.pos": -500.0 for j in JOINTS})["elbow_flex.pos"] == pytest.approx(
        -HALF_RANGE_DEG
    )
    outside = SafetyLayer(robot, SafetyConfig(joint_limits={"elbow_flex": (200, 300)}, estop_key=None))
    before = goals(emulator, robot)
    with pytest.raises(ValueError, match=r"joint_limits\['elbow_flex.pos'\].*outside the calibrated range"):
        outside.send_action({f"{j}.pos": 0.0 for j in JOINTS})
    assert goals(emulator, robot) == before
    robot.disconnect()


# ------------------------------------------------------------------ 3. NaN, infinity, out of range


@pytest.mark.parametrize("bad", NON_FINITE, ids=["nan", "inf", "-inf", "np.float32-nan"])
def test_the_bus_refuses_non_finite_values_and_sends_nothing(arm, bad):
    emulator, robot = arm
    bus = robot.bus
    before = goals(emulator, robot)
    with pytest.raises(ValueError, match=r"Refusing to write Goal_Position.*not a finite number.*nothing"):
        bus.sync_write("Goal_Position", {"shoulder_pan": 10.0, "elbow_flex": bad})
    with pytest.raises(ValueError, match="not a finite number"):
        bus.sync_write("Goal_Position", {"shoulder_pan": bad}, normalize=False)
    with pytest.raises(ValueError, match="not a finite number"):
        bus.write("Goal_Position", "gripper", bad)
    velocity = "Goal_Velocity"
    with pytest.raises(ValueError, match=f"Refusing to write {velocity}"):
        bus.write(velocity, "wrist_roll", bad, normalize=False)
    assert goals(emulator, robot) == before  # shoulder_pan's finite 10.0 was not sent either


@pytest.mark.parametrize("bad", NON_FINITE[:3], ids=["nan", "inf", "-inf"])
def test_non_finite_action_with_the_drivers_own_max_relative_target_moves_nothing(so100, bad):
    emulator, tmp_path = so100
    robot = make_arm("so100", emulator, tmp_path, max_relative_target=10.0)
    before = goals(emulator, robot)
    with pytest.raises(ValueError, match="not finite"):  # was: NaN -> -10 degrees, +inf -> +10
        robot.send_action({f"{j}.pos": bad if j == "elbow_flex" else 0.0 for j in JOINTS})
    assert goals(emulator, robot) == before
    robot.disconnect()


def test_goals_are_clamped_at_the_bus_and_send_action_reports_what_was_written(arm):
    emulator, robot = arm
    action = {f"{j}.pos": 1000.0 for j in JOINTS} | {"gripper.pos": 500.0}
    sent = robot.send_action(action)  # the probe: +1000 degrees wrote raw 13375
    for i, raw in enumerate(goals(emulator, robot)):
        lo, hi = (0, 4095) if JOINTS[i] in robot.full_turn_motors else RANGE
        assert lo <= raw <= hi
    assert goals(emulator, robot)[3] == RANGE[1] and goals(emulator, robot)[5] == RANGE[1]
    assert sent["gripper.pos"] == 100.0  # the probe: 500 reported for a gripper clamped to 100
    upper = HALF_RANGE_DEG if robot.config.use_degrees else 100.0
    assert sent["wrist_flex.pos"] == pytest.approx(upper)
    low = robot.send_action({f"{j}.pos": -1e9 for j in JOINTS})
    assert goals(emulator, robot)[3] == RANGE[0] and low["wrist_flex.pos"] == pytest.approx(-upper)
    assert low["gripper.pos"] == 0.0
    within = {f"{j}.pos": 3.0 for j in JOINTS}
    assert robot.send_action(within) == within  # in range: reported exactly as asked


def test_raw_goal_writes_are_clamped_to_the_calibration_too(arm):
    emulator, robot = arm
    assert robot.bus.write("Goal_Position", "elbow_flex", 4000, normalize=False) == RANGE[1]
    assert robot.bus.sync_write("Goal_Position", {"elbow_flex": 10, "wrist_flex": 2000}, normalize=False) == {
        "elbow_flex": RANGE[0],
        "wrist_flex": 2000,
    }
    assert goals(emulator, robot)[2:4] == [RANGE[0], 2000]


@pytest.mark.parametrize("bad", NON_FINITE[:3], ids=["nan", "inf", "-inf"])
def test_vendor_sdk_robots_refuse_non_finite_goals_before_their_sdk(bad):
    hand = HopeJrHand()  # every JointSpaceRobot (Reachy 2, Unitree G1, OpenArm) clamps through this
    action = dict.fromkeys(hand.action_features, 50.0)
    assert hand.clamp(action | {"thumb_cmc.pos": 500.0})["thumb_cmc.pos"] == 100.0
    with pytest.raises(ValueError, match=r"Refusing hope_jr_hand goals \{'thumb_cmc.pos': .*not finite"):
        hand.clamp(action | {"thumb_cmc.pos": bad})  # np.clip let NaN through to the SDK


@pytest.fixture
def kiwi(tmp_path):
    with FeetechEmulator() as emulator:
        for motor_id in range(1, 10):
            emulator.add_motor("sts3215", motor_id, 1_000_000, REST[motor_id - 1] if motor_id <= 6 else 2048)
        full_turn = {"arm_wrist_roll", *WHEELS}
        calibration = {
            name: MotorCalibration(i, 0, 0, *((0, 4095) if name in full_turn else RANGE))
            for i, name in enumerate([*ARM_MOTORS, *WHEELS], start=1)
        }
        save_calibration(tmp_path / "kiwi.json", calibration)
        robot = LeKiwi(port=emulator.port, id="kiwi", calibration_dir=tmp_path, cameras={})
        robot.connect()
        yield emulator, robot
        robot.disconnect()


def kiwi_action(**values: float) -> dict[str, float]:
    action = {f"{m}.pos": 0.0 for m in ARM_MOTORS} | {"x.vel": 0.0, "y.vel": 0.0, "theta.vel": 0.0}
    return action | {k if k.endswith("vel") else f"arm_{k}.pos": v for k, v in values.items()}


def test_lekiwi_goals_are_clamped_and_non_finite_base_velocities_refused(kiwi):
    """What ``lerobot-lekiwi-host`` calls for each message: the probe saw raw 4036 past a max of 3500."""
    emulator, robot = kiwi
    sent = robot.send_action(kiwi_action(shoulder_lift=180.0, gripper=250.0))
    robot.bus.read("Present_Position", "arm_gripper", normalize=False)  # the sync write was processed
    assert (
        emulator.motor(2).get("Goal_Position") == RANGE[1]
        and emulator.motor(6).get("Goal_Position") == RANGE[1]
    )
    assert sent["arm_shoulder_lift.pos"] == pytest.approx(HALF_RANGE_DEG) and sent["arm_gripper.pos"] == 100.0

    def registers() -> list[int]:
        robot.bus.read("Present_Position", "arm_gripper", normalize=False)  # after the sync writes
        return [
            emulator.motor(i).get(reg) for i in range(1, 10) for reg in ("Goal_Position", "Goal_Velocity")
        ]

    before = registers()
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="not finite"):
            robot.send_action(kiwi_action(shoulder_lift=0.0, **{"x.vel": bad}))
        with pytest.raises(ValueError, match="not a finite number"):
            robot.send_action(kiwi_action(elbow_flex=bad))
    assert registers() == before  # nothing half-sent


# ------------------------------------------------------------------ 4. max_relative_target at send time


def test_bare_driver_measures_the_step_from_the_arm_not_the_observation(so100):
    emulator, tmp_path = so100
    robot = make_arm("so100", emulator, tmp_path, max_relative_target=5.0)
    obs = robot.get_observation()
    push(emulator, 3, 3000 + 200)  # the elbow moved ~17.6 degrees since the observation
    present = robot.get_observation()["elbow_flex.pos"]
    assert present - obs["elbow_flex.pos"] > 15
    sent = robot.send_action(
        {k: obs[k] + (5.0 if k == "elbow_flex.pos" else 0.0) for k in robot.action_features}
    )
    assert abs(sent["elbow_flex.pos"] - present) <= 5.0 + 1e-6  # was 18.45 from the arm
    robot.disconnect()


def test_safety_layer_measures_the_step_from_a_fresh_read(so100):
    emulator, tmp_path = so100
    robot = make_arm("so100", emulator, tmp_path)
    layer = SafetyLayer(robot, SafetyConfig(max_relative_target=5.0, estop_key=None))
    obs = layer.get_observation()
    push(emulator, 3, 3000 + 200)
    present = robot.get_observation()["elbow_flex.pos"]
    sent = layer.send_action(
        {k: obs[k] + (5.0 if k == "elbow_flex.pos" else 0.0) for k in robot.action_features}
    )
    assert abs(sent["elbow_flex.pos"] - present) <= 5.0 + 1e-6
    assert layer.interventions[-1]["rule"] == "max_relative_target"
    robot.disconnect()


def test_an_unreadable_present_position_refuses_the_action(so100):
    emulator, tmp_path = so100
    robot = make_arm("so100", emulator, tmp_path, max_relative_target=5.0)
    layer = SafetyLayer(robot, SafetyConfig(max_relative_target=5.0, estop_key=None))
    action = {f"{j}.pos": 1.0 for j in JOINTS}
    inject(emulator, robot, 3, Fault.NO_REPLY)
    before = goals(emulator, robot)
    with pytest.raises(
        ActionRefusedError, match=r"could not be read.*'elbow_flex' \(id 3\).*nothing was sent"
    ):
        layer.send_action(action)
    with pytest.raises(MotorTimeoutError, match=r"'elbow_flex' \(id 3\)"):
        robot.send_action(action)  # the bare driver refuses too
    assert goals(emulator, robot) == before
    emulator.clear_faults()
    robot.disconnect()
