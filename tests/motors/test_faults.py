"""Every injected fault surfaces as its own clear error, and a transient one is absorbed by retries."""

from __future__ import annotations

import pytest

from lerobot.motors.emulator import Fault
from lerobot.motors.protocol import MotorChecksumError, MotorPortError, MotorStatusError, MotorTimeoutError


def test_no_reply_times_out_naming_motor_and_register(connected):
    emulator, bus = connected
    emulator.inject_fault(3, Fault.NO_REPLY)
    with pytest.raises(
        MotorTimeoutError, match=r"'elbow_flex' \(id 3\).*reading Present_Position.*lerobot-setup"
    ):
        bus.read("Present_Position", "elbow_flex", num_retry=1)
    with pytest.raises(
        MotorTimeoutError, match=r"'elbow_flex' \(id 3\).*sync-reading Present_Position"
    ) as err:
        bus.sync_read("Present_Position", normalize=False)
    assert "shoulder_pan" not in str(err.value)  # only the silent motor is blamed
    assert isinstance(err.value, TimeoutError) and isinstance(err.value, ConnectionError)


def test_bad_checksum(connected):
    emulator, bus = connected
    emulator.inject_fault(2, Fault.BAD_CHECKSUM)
    with pytest.raises(MotorChecksumError, match=r"bad checksum.*'shoulder_lift' \(id 2\).*sync-reading"):
        bus.sync_read("Present_Position", normalize=False, num_retry=2)


def test_overload_status_error(connected):
    emulator, bus = connected
    emulator.inject_fault(6, Fault.OVERLOAD)
    with pytest.raises(
        MotorStatusError, match=r"'gripper' \(id 6\) reported .*overload.*writing Goal_Position"
    ) as err:
        bus.write("Goal_Position", "gripper", 2000, normalize=False)
    assert err.value.error & emulator.protocol.overload_error


@pytest.mark.parametrize("fault", list(Fault))
def test_transient_fault_is_retried(connected, fault):
    emulator, bus = connected
    emulator.inject_fault(4, fault, times=1)
    assert bus.sync_read("Present_Position", normalize=False, num_retry=1)["wrist_flex"] == 2200
    emulator.inject_fault(4, fault, times=1)
    assert bus.read("Present_Position", "wrist_flex", normalize=False, num_retry=1) == 2200


def test_missing_motor_mid_run(connected):
    emulator, bus = connected
    unplugged = emulator.remove_motor(5)
    assert bus.ping("wrist_roll") is None
    with pytest.raises(MotorTimeoutError, match=r"'wrist_roll' \(id 5\)"):
        bus.sync_read("Present_Position", normalize=False)
    emulator.plug(unplugged)
    assert bus.sync_read("Present_Position", normalize=False)["wrist_roll"] == 2048


def test_port_disappears_mid_run(connected):
    emulator, bus = connected
    emulator.close_port()
    with pytest.raises(MotorPortError, match=r"Serial port /dev/pts/\d+ failed.*unplugged") as err:
        bus.sync_read("Present_Position", normalize=False, num_retry=3)
    assert isinstance(err.value, ConnectionError)
    with pytest.raises(MotorPortError):
        bus.disconnect()  # torque could not be disabled: say so, but the port is released
    assert not bus.is_connected
