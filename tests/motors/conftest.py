"""Emulated arms and buses opened on them (one fixture per protocol, or both via ``arm``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lerobot.motors import DynamixelMotorsBus, FeetechMotorsBus, Motor, MotorNormMode, MotorsBus
from lerobot.motors.emulator import EmulatedBus, start_emulated_arm

NAMES = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
ROBOTS = {"feetech": ("so100_follower", FeetechMotorsBus), "dynamixel": ("koch_follower", DynamixelMotorsBus)}
TIMEOUT_MS = 100  # short, so timeout tests stay fast; the emulator answers in well under 1 ms


def make_bus(emulator: EmulatedBus, bus_cls: type[MotorsBus], **kwargs) -> MotorsBus:
    motors = {
        name: Motor(
            i,
            emulator.motors[i].model,
            MotorNormMode.RANGE_0_100 if name == "gripper" else MotorNormMode.DEGREES,
        )
        for i, name in enumerate(NAMES, start=1)
    }
    return bus_cls(emulator.port, motors, timeout_ms=TIMEOUT_MS, **kwargs)


@pytest.fixture(params=sorted(ROBOTS))
def arm(request) -> Iterator[tuple[EmulatedBus, MotorsBus]]:
    """An emulated 6-motor arm and a (not yet connected) bus on its port, for each protocol."""
    robot_type, bus_cls = ROBOTS[request.param]
    with start_emulated_arm(robot_type) as emulator:
        bus = make_bus(emulator, bus_cls)
        yield emulator, bus
        if bus.is_connected:
            bus.disconnect(disable_torque=False)


@pytest.fixture
def connected(arm) -> tuple[EmulatedBus, MotorsBus]:
    emulator, bus = arm
    bus.connect()
    return emulator, bus
