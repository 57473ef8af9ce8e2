"""Leader arms (SO-100, Koch), the Koch follower, and leader -> follower teleoperation, on emulated chains."""

from __future__ import annotations

import time

import numpy as np
import pytest
from tests.robots.arm_helpers import RANGE, scripted_calibration_input, write_calibration_file

from lerobot.motors import load_calibration
from lerobot.motors.emulator import start_emulated_arm
from lerobot.robots.follower import FollowerRobot
from lerobot.robots.koch_follower import CURRENT_POSITION_MODE, EXTENDED_POSITION_MODE, KochFollower
from lerobot.robots.leader import LeaderRobot, teleoperate_leader_follower
from lerobot.teleoperators import make_teleoperator_from_config
from lerobot.teleoperators.koch_leader import KochLeader
from lerobot.teleoperators.so100_leader import SO100Leader, SO101LeaderConfig

KOCH_FULL_TURN = ("shoulder_pan", "wrist_roll")


def register(emulator, motor_id: int, name: str) -> int:
    return emulator.motor(motor_id).get(name)


def test_so_leader_reads_its_pose_with_torque_off(tmp_path):
    write_calibration_file(tmp_path, "lead")
    with start_emulated_arm("so101_leader") as emu:
        leader = make_teleoperator_from_config(
            SO101LeaderConfig(port=emu.port, id="lead", calibration_dir=tmp_path)
        )
        assert isinstance(leader, SO100Leader) and leader.name == "so_leader"
        with leader:
            assert [register(emu, i, "Torque_Enable") for i in range(1, 7)] == [0] * 6
            emu.move_by_hand(3, 2000)  # the calibrated centre of elbow_flex
            emu.move_by_hand(6, RANGE[1])  # gripper fully open
            action = leader.get_action()
            assert list(action) == list(leader.action_features)
            assert action["elbow_flex.pos"] == pytest.approx(0.0, abs=0.1)
            assert action["gripper.pos"] == pytest.approx(100.0)


def test_koch_follower_modes_gains_and_motion(tmp_path):
    write_calibration_file(tmp_path, "koch", full_turn=KOCH_FULL_TURN)
    with start_emulated_arm("koch_follower") as emu:
        robot = FollowerRobot(port=emu.port, robot_type="koch", id="koch", calibration_dir=tmp_path)
        assert isinstance(robot, KochFollower)
        with robot:
            modes = [register(emu, i, "Operating_Mode") for i in range(1, 7)]
            assert modes == [EXTENDED_POSITION_MODE] * 5 + [CURRENT_POSITION_MODE]
            assert register(emu, 3, "Position_P_Gain") == 1500 and register(emu, 3, "Position_D_Gain") == 600
            assert register(emu, 1, "Return_Delay_Time") == 0
            goal = {"joint_positions": [10, -20, 30, -40, 50], "gripper": 75}
            robot.send_action(goal)
            time.sleep(0.6)
            obs = robot.get_observation()  # use_degrees=False: percent of the calibrated range
            np.testing.assert_allclose(obs["joint_positions"], goal["joint_positions"], atol=0.2)
            assert obs["gripper"] == pytest.approx(75, abs=0.2)
        assert [register(emu, i, "Torque_Enable") for i in range(1, 7)] == [0] * 6


def test_koch_leader_holds_its_trigger_gripper(tmp_path):
    write_calibration_file(tmp_path, "kl", full_turn=KOCH_FULL_TURN)
    with start_emulated_arm("koch_leader") as emu:
        leader = LeaderRobot(port=emu.port, robot_type="koch", id="kl", calibration_dir=tmp_path)
        assert isinstance(leader, KochLeader)
        with leader:
            assert [register(emu, i, "Torque_Enable") for i in range(1, 7)] == [0] * 5 + [1]
            time.sleep(0.3)
            assert leader.get_action()["gripper.pos"] == pytest.approx(50.0, abs=0.2)
            with pytest.raises(RuntimeError, match="torque enabled"):
                emu.move_by_hand(6, 600)
        assert register(emu, 6, "Torque_Enable") == 0


def test_koch_leader_calibration_inverts_the_elbow(tmp_path):
    with start_emulated_arm("koch_leader") as emu:
        leader = KochLeader(port=emu.port, id="kl", calibration_dir=tmp_path)
        leader.input_fn = scripted_calibration_input(emu, [2048, 1500, 2500, 2000, 1000, 2200], spread=300)
        with leader:
            saved = load_calibration(tmp_path / "kl.json")
            assert saved == leader.bus.read_calibration()
            assert [c.drive_mode for c in saved.values()] == [0, 0, 1, 0, 0, 0]
            assert (saved["shoulder_pan"].range_min, saved["shoulder_pan"].range_max) == (0, 4095)
            assert saved["elbow_flex"].range_max - saved["elbow_flex"].range_min == pytest.approx(600, abs=2)


@pytest.mark.parametrize("kind", ["so100", "koch"])
def test_leader_follower_teleoperation_at_30hz(tmp_path, kind):
    """Leader held in a pose; after ~1 s at 30 Hz the follower's motors are within 3 steps of it."""
    full_turn = KOCH_FULL_TURN if kind == "koch" else ("wrist_roll",)
    write_calibration_file(tmp_path, "f", full_turn)
    write_calibration_file(tmp_path / "leader", "l", full_turn)
    pose = [1500, 2600, 1200, 3100, 3000, 2900]
    with start_emulated_arm(f"{kind}_leader") as lead_emu, start_emulated_arm(f"{kind}_follower") as foll_emu:
        leader = LeaderRobot(lead_emu.port, kind, id="l", calibration_dir=tmp_path / "leader")
        follower = FollowerRobot(foll_emu.port, kind, id="f", calibration_dir=tmp_path)
        leader.connect()
        for motor_id, actual in enumerate(pose[:5], start=1):  # a Koch leader's gripper is held by torque
            lead_emu.move_by_hand(motor_id, actual)
        if kind == "so100":
            lead_emu.move_by_hand(6, pose[5])
        loop = teleoperate_leader_follower(leader, follower, fps=30, duration_s=1.0)
        assert leader.is_connected and not follower.is_connected  # only what it connected is released
        leader.disconnect()
        assert loop.stats()["cycles"] == 30
        for motor_id in range(1, 7):
            assert foll_emu.actual_position(motor_id) == pytest.approx(
                lead_emu.actual_position(motor_id), abs=3
            )


def test_unknown_arm_types_are_named():
    with pytest.raises(ValueError, match="No leader arm of type 'so99'; known: koch, so100, so101"):
        LeaderRobot("/dev/null", "so99")
    with pytest.raises(ValueError, match="No follower arm of type 'so99'"):
        FollowerRobot("/dev/null", "so99")
