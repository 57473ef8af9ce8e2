"""G5 (guide line 336): load a dataset, inspect it, read samples, episodes and batches."""


def test_g05_load_dataset(guidea_datasets):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    import torch

    # 1. � Hub 加载数�集
    dataset = LeRobotDataset(
        # SUBSTITUTION: a local folder made by the project instead of "lerobot/aloha_mobile_cabinet"
        repo_id=guidea_datasets["aloha_mobile_cabinet"],
        split="train"
    )

    # 2. 查看数�集信�
    print(f"数�集大�: {len(dataset)}")
    print(f"特�列: {dataset.features}")
    print(f"��数: {dataset.num_episodes}")
    print(f"帧数: {dataset.num_frames}")

    # 3. 访问�个样本
    sample = dataset[0]
    print(f"�用键: {sample.keys()}")
    print(f"动作形状: {sample['action'].shape}")
    print(f"状�形状: {sample['observation.state'].shape}")

    # 4. 访问图�数�
    if 'observation.images.front' in sample:
        image = sample['observation.images.front']
        print(f"图�形状: {image.shape}")  # [H, W, C]

    # 5. 按��访问
    episode_0 = dataset.get_episode(0)
    print(f"��0长度: {len(episode_0)}")

    # 6. 批�加载
    from torch.utils.data import DataLoader

    dataloader = DataLoader(
        dataset,
        batch_size=32,
        shuffle=True,
        num_workers=4
    )

    for batch in dataloader:
        actions = batch['action']
        states = batch['observation.state']
        # �练模�...
        break

    # Checks (not in the guide).
    assert len(dataset) == dataset.num_frames == 36 and dataset.num_episodes == 3
    assert len(episode_0) == 12
    assert actions.shape == (32, 14) and states.shape == (32, 14) and actions.dtype == torch.float32
