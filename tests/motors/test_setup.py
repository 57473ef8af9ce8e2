"""Motor discovery and setup across baud rates (scan_port, broadcast_ping, setup_motor)."""

from __future__ import annotations

import pytest

from lerobot.motors import DynamixelMotorsBus, FeetechMotorsBus, Motor, MotorNormMode
from lerobot.motors.emulator import DynamixelEmulator, FeetechEmulator

CASES = [
    (FeetechEmulator, FeetechMotorsBus, "sts3215"),
    (DynamixelEmulator, DynamixelMotorsBus, "xl330-m288"),
]


@pytest.mark.parametrize(("emu_cls", "bus_cls", "model"), CASES, ids=["feetech", "dynamixel"])
def test_scan_port_finds_motors_at_each_baud_rate(emu_cls, bus_cls, model):
    with emu_cls() as emulator:
        emulator.add_motor(model, 1, 1_000_000)
        emulator.add_motor(model, 2, 1_000_000)
        emulator.add_motor(model, 7, 115_200)
        assert bus_cls.scan_port(emulator.port) == {1_000_000: [1, 2], 115_200: [7]}


@pytest.mark.parametrize(("emu_cls", "bus_cls", "model"), CASES, ids=["feetech", "dynamixel"])
def test_setup_factory_new_motor(emu_cls, bus_cls, model):
    with emu_cls() as emulator:
        emulator.add_motor(model, 1, 57_600)  # unknown baud rate, factory id
        motors = {"elbow_flex": Motor(3, model, MotorNormMode.DEGREES)}
        bus = bus_cls(emulator.port, motors, timeout_ms=100)
        bus.connect(handshake=False)
        bus.setup_motor("elbow_flex")
        assert bus.baudrate == 1_000_000
        assert bus.broadcast_ping() == {3: emulator.protocol.model(model).number}
        emulator.power_cycle()  # id and baud rate were saved to EEPROM
        bus.disconnect(disable_torque=False)
        bus.connect()
        bus.disconnect()


def test_setup_with_known_id_and_baud():
    with FeetechEmulator() as emulator:
        emulator.add_motor("sts3215", 9, 500_000)
        bus = FeetechMotorsBus(
            emulator.port, {"gripper": Motor(6, "sts3215", MotorNormMode.RANGE_0_100)}, timeout_ms=100
        )
        bus.connect(handshake=False)
        bus.setup_motor("gripper", initial_baudrate=500_000, initial_id=9)
        assert sorted(emulator.motors) == [6] and emulator.motors[6].get("Baud_Rate") == 0
        bus.disconnect()


def test_setup_refuses_several_motors_or_none():
    with FeetechEmulator() as emulator:
        bus = FeetechMotorsBus(
            emulator.port, {"a": Motor(2, "sts3215", MotorNormMode.DEGREES)}, timeout_ms=100
        )
        bus.connect(handshake=False)
        with pytest.raises(ConnectionError, match="No motor found"):
            bus.setup_motor("a", initial_baudrate=1_000_000)
        emulator.add_motor("sts3215", 1, 1_000_000)
        emulator.add_motor("sts3215", 5, 1_000_000)
        with pytest.raises(RuntimeError, match=r"Found 2 motors .* connect only the 'a' motor"):
            bus.setup_motor("a")
        bus.disconnect(disable_torque=False)
