"""Calibration: file format, half-turn homing, range recording, EEPROM round trip, no offset overflow."""

from __future__ import annotations

import builtins
import itertools
import json
import time

import pytest

from lerobot.motors import FeetechMotorsBus, MotorCalibration, load_calibration, save_calibration
from lerobot.motors.emulator import start_emulated_arm

from .conftest import NAMES, make_bus


def test_calibration_file_round_trip_and_format(tmp_path):
    calibration = {
        "shoulder_pan": MotorCalibration(
            id=1, drive_mode=0, homing_offset=-1024, range_min=758, range_max=3292
        ),
        "gripper": MotorCalibration(id=6, drive_mode=1, homing_offset=12, range_min=2000, range_max=3400),
    }
    path = tmp_path / "robots" / "so_follower" / "my_arm.json"
    save_calibration(path, calibration)
    text = path.read_text()
    assert text.startswith(
        '{\n    "shoulder_pan": {\n        "id": 1,\n        "drive_mode": 0,\n        "homing_offset"'
    )
    assert list(json.loads(text)) == ["shoulder_pan", "gripper"]
    assert list(json.loads(text)["gripper"]) == [
        "id",
        "drive_mode",
        "homing_offset",
        "range_min",
        "range_max",
    ]
    assert load_calibration(path) == calibration
    assert [p.name for p in path.parent.iterdir()] == ["my_arm.json"]  # no temporary file left behind


def hand_stop(emulator, poses: list[dict[int, int]]):
    """A ``stop`` callback that moves the limp arm through ``poses``, then says stop."""
    remaining = iter(poses)

    def stop() -> bool:
        pose = next(remaining, None)
        if pose is None:
            return True
        for motor_id, actual in pose.items():
            emulator.move_by_hand(motor_id, actual)
        return False

    return stop


def calibrate(emulator, bus, centre: list[int], spread: int = 600) -> dict[str, MotorCalibration]:
    """The robot-level flow: centre the arm, set homings, sweep every joint, write and cache."""
    for motor_id, actual in enumerate(centre, start=1):
        emulator.move_by_hand(motor_id, actual)
    offsets = bus.set_half_turn_homings()
    sweep = [
        {i: max(0, min(4095, c - spread)) for i, c in enumerate(centre, start=1)},
        {i: max(0, min(4095, c + spread)) for i, c in enumerate(centre, start=1)},
    ]
    mins, maxs = bus.record_ranges_of_motion(stop=hand_stop(emulator, sweep), interval_s=0)
    calibration = {n: MotorCalibration(bus.motors[n].id, 0, offsets[n], mins[n], maxs[n]) for n in NAMES}
    bus.write_calibration(calibration)
    return calibration


def test_half_turn_homing_centres_the_current_pose(connected):
    emulator, bus = connected
    offsets = bus.set_half_turn_homings()
    assert bus.sync_read("Present_Position", normalize=False) == dict.fromkeys(NAMES, 2047)
    sign = emulator.protocol.homing_sign
    for i, name in enumerate(NAMES, start=1):
        assert emulator.motors[i].actual + sign * offsets[name] == 2047


def test_full_calibration_round_trip(connected, tmp_path):
    emulator, bus = connected
    assert not bus.is_calibrated
    calibration = calibrate(emulator, bus, [2048, 1100, 3000, 2200, 2048, 1900])
    assert bus.calibration == calibration and bus.is_calibrated
    assert bus.read_calibration() == calibration
    save_calibration(tmp_path / "arm.json", calibration)
    emulator.power_cycle()  # stored in EEPROM: survives a power cycle
    bus.calibration = load_calibration(tmp_path / "arm.json")
    assert bus.is_calibrated
    # Back at the pose used for homing, the joint reads the middle of its range, in degrees.
    emulator.move_by_hand(3, 3000)
    assert bus.read("Present_Position", "elbow_flex") == pytest.approx(0.0, abs=0.1)
    bus.reset_calibration()
    assert not bus.is_calibrated


def test_repeated_calibration_never_overflows(connected):
    """Calibrate again and again, from extreme poses, with the previous calibration still in the motors."""
    emulator, bus = connected
    poses = [
        [4095, 0, 3900, 150, 2048, 4000],
        [10, 4095, 120, 3990, 3000, 80],
        [3500, 600, 4095, 0, 900, 2600],
    ]
    for pose in itertools.islice(itertools.cycle(poses), 7):
        calibration = calibrate(emulator, bus, pose, spread=40)
        for cal in calibration.values():
            assert abs(cal.homing_offset) <= (2047 if emulator.protocol.homing_sign < 0 else 1_044_479)
            assert cal.range_min < cal.range_max
        assert bus.is_calibrated


def test_feetech_reference_overflow_case_is_reproduced_and_avoided():
    """The reference computed the new offset from a position that still included the old one."""
    with start_emulated_arm("so100_follower") as emulator, make_bus(emulator, FeetechMotorsBus) as bus:
        bus.disable_torque()
        bus.write("Homing_Offset", "shoulder_pan", -1000, normalize=False)
        emulator.move_by_hand(1, 3161)
        present = bus.read("Present_Position", "shoulder_pan", normalize=False)
        assert present == 4161  # Present = Actual - Homing_Offset, not wrapped
        with pytest.raises(
            ValueError, match=r"Homing_Offset of motor 'shoulder_pan' \(id 1\): Magnitude 2114 exceeds 2047"
        ):
            bus.write("Homing_Offset", "shoulder_pan", present - 2047, normalize=False)
        assert bus.set_half_turn_homings(["shoulder_pan"]) == {"shoulder_pan": 3161 - 2047}


def test_record_ranges_rejects_a_joint_that_did_not_move(connected):
    emulator, bus = connected
    sweep = [{1: 1000}, {1: 3000}]
    with pytest.raises(ValueError, match=r"\['shoulder_lift'\] did not move"):
        bus.record_ranges_of_motion(
            ["shoulder_pan", "shoulder_lift"], stop=hand_stop(emulator, sweep), interval_s=0
        )


def test_record_ranges_default_stop_is_enter(connected, monkeypatch):
    emulator, bus = connected
    monkeypatch.setattr(builtins, "input", lambda *args: time.sleep(0.1) or "")
    seen = []

    def on_update(positions, mins, maxs):
        seen.append(positions["gripper"])
        emulator.move_by_hand(6, 1900 + 10 * len(seen))

    mins, maxs = bus.record_ranges_of_motion(["gripper"], on_update=on_update, interval_s=0.01)
    assert mins["gripper"] == 1900 and maxs["gripper"] == max(seen) > 1900
