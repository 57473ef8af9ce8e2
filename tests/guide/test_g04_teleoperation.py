"""G4 (guide line 244): leader -> follower teleoperation loop, on two emulated SO-100 arms."""

import pytest
from tests.robots.arm_helpers import write_calibration_file

from lerobot.motors.emulator import start_emulated_arm


def test_g04_teleoperation(tmp_path):
    # --- the user's own configs (the guide leaves `leader_config` / `follower_config` to the user) ---
    from lerobot.common.robot_config import RobotConfig
    from lerobot.teleoperators.so100_leader import SO100LeaderConfig

    write_calibration_file(tmp_path / "leader", "my_leader")
    write_calibration_file(tmp_path / "follower", "my_follower")
    pose = [1500, 2600, 1200, 3100, 3000, 2900]
    with start_emulated_arm("so100_leader") as lead_emu, start_emulated_arm("so100_follower") as foll_emu:
        # SUBSTITUTION: the ports of `lerobot-emulate-arm` chains instead of /dev/ttyUSB0, /dev/ttyUSB1
        leader_config = SO100LeaderConfig(
            port=lead_emu.port, id="my_leader", calibration_dir=tmp_path / "leader"
        )
        follower_config = RobotConfig(
            robot_type="so100", port=foll_emu.port, id="my_follower", calibration_dir=tmp_path / "follower"
        )
        for motor_id, actual in enumerate(pose, start=1):
            lead_emu.move_by_hand(motor_id, actual)  # a person holds the leader in a pose
        follower_gripper = foll_emu.actual_position(6)

        # --- the guide's block ---
        from lerobot.robots.follower import FollowerRobot
        from lerobot.robots.leader import LeaderRobot
        import time

        # 创建主�机器人
        leader = LeaderRobot(config=leader_config)
        follower = FollowerRobot(config=follower_config)

        leader.connect()
        follower.connect()

        try:
            # ��作循�
            for _ in range(30):  # SUBSTITUTION: 30 cycles (1 s) instead of 1000
                # �主�设备读�动作
                leader_obs = leader.get_observation()
                action = leader_obs['joint_positions']

                # ��到�动机器人
                follower.send_action({'joint_positions': action})

                time.sleep(1/30)  # 30Hz �制频�

        finally:
            leader.disconnect()
            follower.disconnect()

        # Checks (not in the guide): the follower's arm joints copied the leader's, its gripper
        # (not part of `joint_positions`) held still, and both arms were released.
        assert not leader.is_connected and not follower.is_connected
        for motor_id in range(1, 6):
            assert foll_emu.actual_position(motor_id) == pytest.approx(
                lead_emu.actual_position(motor_id), abs=3
            )
        assert foll_emu.actual_position(6) == pytest.approx(follower_gripper, abs=3)
