"""G3 (guide line 208): configure a robot with two cameras, read an observation, send an action."""

import numpy as np


def test_g03_basic_control():
    from lerobot.robots.myrobot import MyRobot
    from lerobot.common.robot_config import RobotConfig

    # 1. 创建机器人�置
    config = RobotConfig(
        robot_type="myrobot",
        control_frequency=30,  # �制频� 30Hz
        cameras={
            # SUBSTITUTION: `"type": "sim"` (the simulated twin of a camera) added to each camera, which
            # otherwise opens the OpenCV device at the camera's position (/dev/video0, /dev/video1).
            "front": {"resolution": (640, 480), "fps": 30, "type": "sim"},
            "wrist": {"resolution": (320, 240), "fps": 30, "type": "sim"}
        }
    )

    # 2. ��机器人
    robot = MyRobot(config=config)
    robot.connect()

    # 3. 读�观察
    observation = robot.get_observation()
    print(f"关节�置: {observation['joint_positions']}")
    print(f"相机图�: {observation['cameras']['front'].shape}")

    # 4. ��动作
    action = {
        'joint_positions': [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        'gripper': 1.0  # 打开夹爪
    }
    robot.send_action(action)

    # Checks (not in the guide): both cameras at their resolution, six joints, the action arrived.
    assert observation["cameras"]["front"].shape == (480, 640, 3)
    assert observation["cameras"]["wrist"].shape == (240, 320, 3)
    assert observation["joint_positions"].shape == (6,)
    assert robot.config.control_frequency == 30
    sent = robot.send_action(action)
    assert sent == {
        **{f"joint_{i}.pos": v for i, v in enumerate(action["joint_positions"], 1)},
        "gripper.pos": 1.0,
    }

    # 5. �开��
    robot.disconnect()
    assert not robot.is_connected
    np.testing.assert_array_equal(observation["cameras"]["front"], observation["front"])
