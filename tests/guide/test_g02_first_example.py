"""G2 (guide line 149): the first example, reading a dataset."""

from pathlib import Path


def test_g02_first_example(guidea_datasets, monkeypatch):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    # � Hugging Face Hub 加载数�集
    # SUBSTITUTION: a local folder made by the project instead of the Hub id "lerobot/aloha_mobile_cabinet"
    dataset = LeRobotDataset(guidea_datasets["aloha_mobile_cabinet"])

    # 访问数�（自动处�视频解�）
    episode_index = 0
    print(f"动作维度: {dataset[episode_index]['action'].shape}")
    print(f"观察键: {dataset[episode_index].keys()}")

    # ��数�集
    for i in range(min(5, len(dataset))):
        sample = dataset[i]
        print(f"样本 {i}: 动作={sample['action'][:3]}")

    # Checks (not in the guide): what the prints above show.
    assert dataset[0]["action"].shape == (14,)
    assert {"observation.state", "observation.images.front", "action"} <= set(dataset[0].keys())
    folder = Path(guidea_datasets["aloha_mobile_cabinet"])
    monkeypatch.chdir(folder.parent)  # a relative folder works as well (not $HF_LEROBOT_HOME/<id>)
    assert LeRobotDataset(f"./{folder.name}").root == Path(f"./{folder.name}")
