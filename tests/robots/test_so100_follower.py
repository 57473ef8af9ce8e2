"""SO-100 follower driver on an emulated STS3215 chain: the real bus classes talk to a PTY."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest
from tests.robots.arm_helpers import (
    REST,
    known_calibration,
    raw_to_degrees,
    scripted_calibration_input,
    write_calibration_file,
)

from lerobot.cameras import SimCameraConfig
from lerobot.motors import load_calibration
from lerobot.motors.emulator import FeetechEmulator, start_emulated_arm
from lerobot.robots import make_robot_from_config
from lerobot.robots.so100_follower import SO100Follower, SO100FollowerConfig, SO101FollowerConfig

JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll"]


@pytest.fixture
def emulator():
    with start_emulated_arm("so100_follower") as emu:
        yield emu


@pytest.fixture
def robot(emulator, tmp_path):
    """An SO-100 follower whose calibration file exists (so connect() needs no prompt)."""
    write_calibration_file(tmp_path, "arm")
    robot = SO100Follower(port=emulator.port, id="arm", calibration_dir=tmp_path)
    yield robot
    if robot.is_connected:
        robot.disconnect()


def torque(emulator) -> list[int]:
    return [emulator.motor(i).get("Torque_Enable") for i in range(1, 7)]


def test_connect_restores_the_file_and_reads_degrees(robot, emulator):
    robot.connect()
    assert robot.is_calibrated and robot.bus.read_calibration() == known_calibration()
    assert torque(emulator) == [1] * 6  # configure() re-enabled torque: the follower holds its pose
    assert emulator.motor(6).get("Max_Torque_Limit") == 500 and emulator.motor(1).get("P_Coefficient") == 16
    obs = robot.get_observation()
    assert list(obs) == [f"{m}.pos" for m in [*JOINTS, "gripper"]] == list(robot.observation_features)
    for i, joint in enumerate(JOINTS):
        expected = raw_to_degrees(REST[i], full_turn=joint == "wrist_roll")
        assert obs[f"{joint}.pos"] == pytest.approx(expected, abs=0.1)
    assert obs["gripper.pos"] == pytest.approx((REST[5] - 500) / 3000 * 100, abs=0.1)


def test_send_action_moves_the_motors_and_returns_what_was_sent(robot, emulator):
    robot.connect()
    goal = {f"{j}.pos": 10.0 * (i + 1) for i, j in enumerate(JOINTS)} | {"gripper.pos": 80.0}
    assert robot.send_action(goal) == goal
    time.sleep(0.5)  # the emulated servos move at ~260 deg/s
    obs = robot.get_observation()
    for key, value in goal.items():
        assert obs[key] == pytest.approx(value, abs=0.2)


def test_structured_view_on_the_real_driver(robot):
    robot.connect()
    sent = robot.send_action({"joint_positions": [0, 5, -5, 10, 0], "gripper": 1.0})
    assert sent["wrist_flex.pos"] == 10 and sent["gripper.pos"] == 1.0
    time.sleep(0.7)  # the gripper travels ~1400 steps at 3000 steps/s
    obs = robot.get_observation()
    assert obs["joint_positions"].dtype == np.float32 and obs["joint_positions"].shape == (5,)
    np.testing.assert_allclose(obs["joint_positions"], [0, 5, -5, 10, 0], atol=0.2)
    assert obs["gripper"] == pytest.approx(1.0, abs=0.1)


def test_max_relative_target_clamps_and_logs(emulator, tmp_path, caplog):
    write_calibration_file(tmp_path, "arm")
    cfg = SO100FollowerConfig(port=emulator.port, id="arm", calibration_dir=tmp_path, max_relative_target=5.0)
    with SO100Follower(cfg) as robot:
        present = robot.get_observation()
        goal = {k: present[k] + (30.0 if k == "elbow_flex.pos" else 1.0) for k in robot.action_features}
        with caplog.at_level(logging.WARNING):
            sent = robot.send_action(goal)
        assert sent["elbow_flex.pos"] == pytest.approx(present["elbow_flex.pos"] + 5.0)
        assert sent["shoulder_pan.pos"] == pytest.approx(goal["shoulder_pan.pos"])
        assert "elbow_flex" in caplog.text and "shoulder_pan" not in caplog.text
    with pytest.raises(ValueError, match="must name exactly"):
        SO100Follower(port=emulator.port, max_relative_target={"elbow_flex": 5.0})


def test_torque_off_after_disconnect_and_after_an_exception(robot, emulator):
    robot.connect()
    robot.disconnect()
    assert torque(emulator) == [0] * 6 and not robot.is_connected
    with pytest.raises(RuntimeError, match="boom"), robot:
        robot.send_action({"joint_positions": [1, 2, 3, 4, 5], "gripper": 50})
        assert torque(emulator) == [1] * 6
        raise RuntimeError("boom")
    assert torque(emulator) == [0] * 6 and not robot.is_connected


def test_keep_torque_on_disconnect_when_asked(emulator, tmp_path):
    write_calibration_file(tmp_path, "arm")
    robot = SO100Follower(
        port=emulator.port, id="arm", calibration_dir=tmp_path, disable_torque_on_disconnect=False
    )
    robot.connect()
    robot.disconnect()
    assert torque(emulator) == [1] * 6


def test_calibrate_flow_with_injected_input(emulator, tmp_path):
    """No file: connect() runs the interactive calibration; the result is in the motors and the file."""
    robot = SO100Follower(port=emulator.port, id="new_arm", calibration_dir=tmp_path)
    centre = [2100, 1500, 2500, 2000, 1000, 2200]
    robot.input_fn = answer = scripted_calibration_input(emulator, centre, spread=400)
    robot.connect()
    try:
        assert len(answer.prompts) == 2
        saved = load_calibration(tmp_path / "new_arm.json")
        assert saved == robot.bus.read_calibration() and robot.is_calibrated
        assert saved["wrist_roll"].range_min == 0 and saved["wrist_roll"].range_max == 4095
        for name in ["shoulder_pan", "gripper"]:
            cal = saved[name]
            assert cal.drive_mode == 0 and cal.range_max - cal.range_min == pytest.approx(800, abs=2)
            assert (cal.range_min + cal.range_max) / 2 == pytest.approx(2047, abs=2)  # homed at the centre
        assert robot.get_observation()["elbow_flex.pos"] == pytest.approx(0.0, abs=0.3)
    finally:
        robot.disconnect()


def test_mismatching_file_is_not_written_to_the_motors(emulator, tmp_path, caplog):
    calibration = known_calibration()
    calibration["gripper"].id = 9
    from lerobot.motors import save_calibration

    save_calibration(tmp_path / "arm.json", calibration)
    robot = SO100Follower(port=emulator.port, id="arm", calibration_dir=tmp_path)
    with caplog.at_level(logging.WARNING):
        robot.connect(calibrate=False)
    assert "does not match" in caplog.text and not robot.is_calibrated
    robot.disconnect()


def test_a_port_that_does_not_answer_fails_fast_naming_it():
    with FeetechEmulator() as silent:  # a port with no motors behind it
        robot = SO100Follower(port=silent.port)
        started = time.monotonic()
        with pytest.raises(ConnectionError, match=f"No motor of .* answers on {silent.port}"):
            robot.connect()
        assert time.monotonic() - started < 2 and not robot.is_connected
    with pytest.raises(ConnectionError, match="Could not open the motor bus port '/dev/nope'"):
        SO100Follower(port="/dev/nope").connect()


def test_a_missing_motor_is_named(emulator, robot):
    emulator.remove_motor(4)
    with pytest.raises(ConnectionError, match=r"'wrist_flex' \(id 4\)"):
        robot.connect()
    assert not robot.is_connected


def test_cameras_in_the_observation(emulator, tmp_path):
    write_calibration_file(tmp_path, "arm")
    cam = SimCameraConfig(width=32, height=24, fps=30)
    cfg = SO101FollowerConfig(port=emulator.port, id="arm", calibration_dir=tmp_path, cameras={"front": cam})
    robot = make_robot_from_config(cfg)
    assert isinstance(robot, SO100Follower) and cfg.type == "so101_follower" and robot.name == "so_follower"
    assert robot.observation_features["front"] == (24, 32, 3)
    with robot:
        obs = robot.get_observation()
        assert obs["front"].shape == (24, 32, 3) and obs["cameras"]["front"] is obs["front"]
        assert robot.cameras["front"].is_connected
    assert not robot.cameras["front"].is_connected


def test_use_degrees_false_gives_percent_of_range(emulator, tmp_path):
    write_calibration_file(tmp_path, "arm")
    with SO100Follower(port=emulator.port, id="arm", calibration_dir=tmp_path, use_degrees=False) as robot:
        obs = robot.get_observation()
        assert obs["shoulder_lift.pos"] == pytest.approx((REST[1] - 500) / 3000 * 200 - 100, abs=0.1)
