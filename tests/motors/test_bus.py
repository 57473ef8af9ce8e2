"""The real bus classes against the emulated servo chain: handshake, registers, sync I/O, motion, torque."""

from __future__ import annotations

import time

import pytest

from lerobot.motors import FeetechMotorsBus, Motor, MotorCalibration, MotorNormMode
from lerobot.motors.emulator import DynamixelEmulator
from lerobot.motors.protocol import MotorStatusError
from lerobot.utils.errors import DeviceAlreadyConnectedError, DeviceNotConnectedError

from .conftest import NAMES


def wait_until(condition, timeout_s: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_connect_handshake_and_double_connect(arm):
    emulator, bus = arm
    bus.connect()
    assert bus.is_connected
    assert bus.ping("gripper") == emulator.motors[6].spec.number
    with pytest.raises(DeviceAlreadyConnectedError):
        bus.connect()
    bus.disconnect()
    assert not bus.is_connected
    with pytest.raises(DeviceNotConnectedError):
        bus.read("Present_Position", "gripper", normalize=False)
    with pytest.raises(DeviceNotConnectedError):
        bus.disconnect()


def test_connect_bad_port_names_port_and_fix():
    bus = FeetechMotorsBus("/dev/does-not-exist", {"a": Motor(1, "sts3215", MotorNormMode.DEGREES)})
    with pytest.raises(ConnectionError, match="does-not-exist.*lerobot-find-port"):
        bus.connect()


def test_handshake_missing_motor_names_it(arm):
    emulator, bus = arm
    emulator.remove_motor(4)
    with pytest.raises(ConnectionError, match=r"'wrist_flex' \(id 4\).*lerobot-setup-motors") as err:
        bus.connect()
    assert "shoulder_pan" not in str(err.value)
    assert not bus.is_connected  # the port is closed again


def test_handshake_wrong_model():
    with DynamixelEmulator() as emulator:
        emulator.add_motor("xl430-w250", 1, 1_000_000)
        from lerobot.motors import DynamixelMotorsBus

        bus = DynamixelMotorsBus(
            emulator.port, {"a": Motor(1, "xl330-m077", MotorNormMode.DEGREES)}, timeout_ms=100
        )
        with pytest.raises(ConnectionError, match="is a xl430-w250, expected xl330-m077"):
            bus.connect()


def test_read_write_and_sync_read_raw(connected):
    emulator, bus = connected
    assert bus.sync_read("Present_Position", normalize=False) == {
        n: round(emulator.motors[i].actual) for i, n in enumerate(NAMES, start=1)
    }
    assert bus.read("Present_Position", "elbow_flex", normalize=False) == 3000
    bus.write("P_Coefficient" if isinstance(bus, FeetechMotorsBus) else "Position_P_Gain", "gripper", 20)
    reg = "P_Coefficient" if isinstance(bus, FeetechMotorsBus) else "Position_P_Gain"
    assert bus.read(reg, "gripper") == 20 == emulator.motors[6].get(reg)
    assert bus.sync_read("Torque_Enable", ["gripper", "elbow_flex"]) == {"gripper": 0, "elbow_flex": 0}


def test_motion_toward_goal_respects_limits(connected):
    emulator, bus = connected
    bus.write("Max_Position_Limit", "shoulder_pan", 2600, normalize=False)
    bus.enable_torque()
    start = emulator.actual_position(1)
    bus.sync_write("Goal_Position", {"shoulder_pan": 3500, "elbow_flex": 2500}, normalize=False)
    time.sleep(0.05)
    midway = bus.read("Present_Position", "shoulder_pan", normalize=False)
    assert start < midway < 2600  # moving at a finite speed, not teleporting
    wait_until(
        lambda: (
            bus.sync_read("Present_Position", ["shoulder_pan", "elbow_flex"], normalize=False)
            == {"shoulder_pan": 2600, "elbow_flex": 2500}
        )
    )
    assert bus.read("Moving", "shoulder_pan") == 0


def test_normalized_sync_write_moves_to_degrees(connected):
    emulator, bus = connected
    bus.calibration = {
        n: MotorCalibration(id=i, drive_mode=0, homing_offset=0, range_min=1000, range_max=3096)
        for i, n in enumerate(NAMES, start=1)
    }
    bus.enable_torque()
    bus.sync_write("Goal_Position", {"wrist_roll": 45.0, "gripper": 50.0})
    wait_until(lambda: abs(bus.read("Present_Position", "wrist_roll") - 45.0) < 0.1)
    assert bus.read("Present_Position", "gripper") == pytest.approx(50.0, abs=0.1)
    assert emulator.actual_position(5) == int(45.0 * 4095 / 360 + 2048)


def test_torque_on_holds_pose_and_hand_cannot_move_it(connected):
    emulator, bus = connected
    bus.enable_torque(["wrist_flex"])
    assert bus.read("Goal_Position", "wrist_flex", normalize=False) == 2200  # holds where it was
    with pytest.raises(RuntimeError, match="torque enabled"):
        emulator.move_by_hand(4, 1000)


def test_disconnect_disables_torque_by_default(connected):
    emulator, bus = connected
    bus.enable_torque()
    bus.disconnect()
    assert all(m.get("Torque_Enable") == 0 for m in emulator.motors.values())
    bus.connect()
    bus.enable_torque()
    bus.disconnect(disable_torque=False)
    assert all(m.get("Torque_Enable") == 1 for m in emulator.motors.values())


def test_torque_disabled_context_reenables_only_on_success(connected):
    emulator, bus = connected
    bus.enable_torque()
    with bus.torque_disabled(["gripper"]):
        assert emulator.motors[6].get("Torque_Enable") == 0
    assert emulator.motors[6].get("Torque_Enable") == 1
    with pytest.raises(KeyboardInterrupt), bus.torque_disabled():
        raise KeyboardInterrupt
    assert all(m.get("Torque_Enable") == 0 for m in emulator.motors.values())  # left limp: safe


def test_out_of_range_write_names_motor_and_register(connected):
    _, bus = connected
    with pytest.raises(ValueError, match=r"Min_Position_Limit of motor 'gripper' \(id 6\)"):
        bus.write("Min_Position_Limit", "gripper", -5, normalize=False)


def test_eeprom_rules(connected):
    emulator, bus = connected
    if isinstance(bus, FeetechMotorsBus):
        # Written while locked (torque on): applies now, lost at power-off.
        bus.enable_torque(["gripper"])
        bus.write("Return_Delay_Time", "gripper", 5)
        assert bus.read("Return_Delay_Time", "gripper") == 5
        bus.disable_torque(["gripper"])  # also unlocks: this EEPROM write is saved
        bus.write("P_Coefficient", "gripper", 7)
        emulator.power_cycle()
        assert bus.read("Return_Delay_Time", "gripper") == 0
        assert bus.read("P_Coefficient", "gripper") == 7
        assert bus.read("Lock", "gripper") == 1  # RAM back to its power-on value
    else:
        bus.enable_torque(["gripper"])
        with pytest.raises(
            MotorStatusError, match=r"'gripper' \(id 6\) reported access error.*Return_Delay_Time"
        ):
            bus.write("Return_Delay_Time", "gripper", 5)
        bus.disable_torque(["gripper"])
        bus.write("Return_Delay_Time", "gripper", 5)
        emulator.power_cycle()
        assert bus.read("Return_Delay_Time", "gripper") == 5
        assert bus.read("Torque_Enable", "gripper") == 0


def test_configure_motors(connected):
    emulator, bus = connected
    bus.disable_torque()
    bus.configure_motors()
    assert all(m.get("Return_Delay_Time") == 0 for m in emulator.motors.values())
