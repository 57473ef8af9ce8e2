"""G6 (guide line 410): dataset editing tools: delete, split, slice, add/remove features, merge, push."""

from pathlib import Path


def test_g06_dataset_tools(guidea_datasets, guidea_hub, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    # 加载数�集
    # SUBSTITUTION: a local folder made by the project instead of the Hub id "lerobot/pusht"
    dataset = LeRobotDataset(guidea_datasets["pusht"])

    # 1. 删除特定��
    dataset.delete_episodes([0, 5, 10])

    # 2. 切分数�集
    train_dataset, val_dataset = dataset.split([0.8, 0.2])

    # 3. 按索引切分
    train_dataset = dataset[:80]  # SUBSTITUTION: 80 of this dataset's 120 frames instead of 8000 of pusht's 25650
    val_dataset = dataset[80:]  # SUBSTITUTION: as above

    # 4. 添加新特�
    dataset.add_feature(
        name="observation.new_sensor",
        dtype="float32",
        shape=(10,)
    )

    # 5. 删除特�
    dataset.remove_feature("observation.unused_camera")

    # 6. �并多个数�集
    from lerobot.datasets.utils import merge_datasets

    merged = merge_datasets([
        # SUBSTITUTION: local folders made by the project instead of the Hub ids
        guidea_datasets["aloha_mobile_cabinet"],  # "lerobot/aloha_mobile_cabinet"
        guidea_datasets["aloha_mobile_chair"],  # "lerobot/aloha_mobile_chair"
    ])

    # 7. ��到 Hub
    # SUBSTITUTION: the Hub is the test's in-memory one (tests/hub_server.py), not huggingface.co
    dataset.push_to_hub(
        repo_id="my-username/my-robot-dataset",
        private=False
    )

    # Checks (not in the guide).
    assert len(train_dataset) == 80 and len(val_dataset) == 40
    assert merged.num_episodes == 5 and merged.num_frames == 60
    assert ("dataset", "my-username/my-robot-dataset") in guidea_hub.repos
    root = guidea_datasets["pusht"]
    added = LeRobotDataset(root + "_add_feature")  # the editing tools never touch their input
    assert added[7]["observation.new_sensor"].tolist() == [0.0] * 10  # a declared sensor: zeros so far
    assert "observation.unused_camera" not in LeRobotDataset(root + "_remove_feature").features
    assert LeRobotDataset(root + "_delete_episodes").num_episodes == 9 and dataset.num_episodes == 12
    assert merged.root == Path(guidea_datasets["aloha_mobile_cabinet"] + "_merge")
