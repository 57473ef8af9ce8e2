"""G7 (guide line 453): create a dataset, add episodes of frames, consolidate, save it to a folder."""


def test_g07_create_dataset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from pathlib import Path
    import numpy as np

    # 1. 创建新数�集
    dataset = LeRobotDataset.create(
        repo_id="my-username/custom-robot-data",
        fps=30,
        robot_type="my_robot",
        features={
            "observation.state": {"dtype": "float32", "shape": (7,)},
            "observation.images.front": {"dtype": "video", "shape": (48, 64, 3)},  # SUBSTITUTION: 48x64 instead of 480x640
            "action": {"dtype": "float32", "shape": (7,)},
        }
    )

    # 2. 添加��数�
    for episode_idx in range(2):  # SUBSTITUTION: 2 episodes instead of 10
        episode_data = []
        for frame_idx in range(10):  # SUBSTITUTION: 10 frames instead of 100
            frame = {
                "observation.state": np.random.randn(7),
                "observation.images.front": np.random.randint(0, 255, (48, 64, 3), dtype=np.uint8),  # SUBSTITUTION: 48x64
                "action": np.random.randn(7),
                "timestamp": frame_idx / 30.0,
            }
            episode_data.append(frame)

        dataset.add_episode(episode_data)

    # 3. 计算统计信�
    dataset.consolidate()

    # 4. ��
    dataset.save("./my_robot_dataset")

    # Checks (not in the guide): the saved folder is a complete dataset with the frames given.
    saved = LeRobotDataset("my-username/custom-robot-data", root=Path("./my_robot_dataset"))
    assert saved.num_episodes == 2 and saved.num_frames == 20 and saved.fps == 30
    assert saved.meta.robot_type == "my_robot"
    assert saved[13]["timestamp"].item() == np.float32(3 / 30.0)
    assert saved[13]["observation.images.front"].shape == (3, 48, 64)
    np.testing.assert_allclose(saved[13]["observation.state"].numpy(), episode_data[3]["observation.state"], rtol=1e-6)
    assert set(saved.meta.stats) >= {"observation.state", "action", "observation.images.front"}
