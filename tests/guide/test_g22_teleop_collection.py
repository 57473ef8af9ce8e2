"""G22 (数据收集 / 遥操作数据收集): leader -> follower teleoperation, recorded frame by frame.

``leader_config`` / ``follower_config`` are the user's own: the features declare a 14-joint arm with a
front and a wrist camera, so the follower is the kinematic template robot (``MyRobot``) with 14 joints
and two simulated cameras, and the leader a simulated leader arm over the same joints (no hardware in
a test). ``input()`` is answered by the test; ``check_stop_condition`` is the user's own (stop after
6 frames). ``push_to_hub`` goes to the in-memory Hub of tests/hub_server.py. Sizes made small.
"""

import pytest

from lerobot.datasets.lerobot_dataset import LeRobotDataset as _LeRobotDataset

JOINTS = [f"joint_{i}" for i in range(1, 15)]


@pytest.mark.slow
def test_g22_teleop_collection(tmp_path, monkeypatch, guidea_hub):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("builtins.input", lambda *args: "")  # the person presses Enter
    # --- prelude: names the guide uses without importing, and the user's own configs and helper ---
    import time

    from lerobot.common.robot_config import RobotConfig
    from lerobot.teleoperators.sim_leader import SimLeaderConfig

    leader_config = SimLeaderConfig(action_keys=[f"{j}.pos" for j in JOINTS])
    follower_config = RobotConfig(robot_type="myrobot", joints=JOINTS, max_speed_deg_s=1e4, cameras={
        "front": {"type": "sim", "resolution": (64, 48), "fps": 30},
        "wrist": {"type": "sim", "resolution": (32, 24), "fps": 30},
    })  # fmt: skip
    frames_seen = []

    def check_stop_condition():
        frames_seen.append(1)
        return len(frames_seen) % 6 == 0

    # --- the block ---
    from lerobot.robots.leader import LeaderRobot
    from lerobot.robots.follower import FollowerRobot
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    import numpy as np  # noqa: F401

    # 1. 初始化机器人
    leader = LeaderRobot(config=leader_config)
    follower = FollowerRobot(config=follower_config)

    leader.connect()
    follower.connect()

    # 2. 创建数据集
    dataset = LeRobotDataset.create(
        repo_id="my-username/teleoperation-data",
        fps=30,
        robot_type="my_robot",
        features={
            "observation.state": {"dtype": "float32", "shape": (14,)},
            "observation.images.front": {"dtype": "video", "shape": (48, 64, 3)},  # SUBSTITUTION: smaller size (480, 640, 3)
            "observation.images.wrist": {"dtype": "video", "shape": (24, 32, 3)},  # SUBSTITUTION: smaller size (240, 320, 3)
            "action": {"dtype": "float32", "shape": (14,)},
        }
    )

    # 3. 数据收集循环
    n_episodes = 2  # SUBSTITUTION: smaller size (50)

    try:
        for episode_idx in range(n_episodes):
            print(f"\n开始收集回合 {episode_idx + 1}/{n_episodes}")
            print("准备就绪后按 Enter 开始...")
            input()

            episode_data = []
            start_time = time.time()

            while True:
                # 获取主臂动作
                leader_obs = leader.get_observation()
                action = leader_obs["joint_positions"]

                # 执行动作并获取观察
                follower.send_action({"joint_positions": action})
                follower_obs = follower.get_observation()

                # 记录数据帧
                frame = {
                    "observation.state": follower_obs["joint_positions"],
                    "observation.images.front": follower_obs["cameras"]["front"],
                    "observation.images.wrist": follower_obs["cameras"]["wrist"],
                    "action": action,
                    "timestamp": time.time() - start_time,
                }
                episode_data.append(frame)

                # 检查是否结束（例如按键或达到最大长度）
                if len(episode_data) >= 500 or check_stop_condition():
                    break

                time.sleep(1/30)

            # 添加回合到数据集
            dataset.add_episode(episode_data)
            print(f"回合 {episode_idx + 1} 完成，收集了 {len(episode_data)} 帧")

    finally:
        leader.disconnect()
        follower.disconnect()

    # 4. 整理并保存
    dataset.consolidate()
    dataset.save("./teleoperation_data")

    # 5. 上传到 Hub
    # SUBSTITUTION: the Hub is the test's in-memory one (tests/hub_server.py), not huggingface.co
    dataset.push_to_hub(
        repo_id="my-username/teleoperation-data",
        private=False
    )

    # --- checks ---
    saved = _LeRobotDataset("my-username/teleoperation-data", root=tmp_path / "teleoperation_data")
    assert saved.num_episodes == 2 and len(saved) == 12
    assert saved[0]["observation.images.wrist"].shape == (3, 24, 32)
    assert ("dataset", "my-username/teleoperation-data") in guidea_hub.repos
