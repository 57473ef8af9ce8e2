"""G11 (guide line 579): a custom ACT config and the user's own training loop."""

import pytest


@pytest.mark.slow
def test_g11_custom_training(guidea_datasets, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoints").mkdir()  # the user's own setup: the guide saves into ./checkpoints/

    from lerobot.common.policies.act.configuration_act import ACTConfig
    from lerobot.common.policies.act.modeling_act import ACTPolicy
    import torch

    # 1. 创建自定义�置
    config = ACTConfig(
        # 模���
        input_shapes={
            "observation.state": [14],
            "observation.images.front": [3, 24, 32],  # SUBSTITUTION: the stand-in dataset's 24x32 images instead of 480x640
        },
        output_shapes={
            "action": [14],
        },
        # ACT 特定�数
        chunk_size=100,
        n_obs_steps=1,
        dim_model=64,  # SUBSTITUTION: a smaller model (64 instead of 512)
        n_heads=8,
        dim_feedforward=128,  # SUBSTITUTION: 128 instead of 3200
        n_encoder_layers=1,  # SUBSTITUTION: 1 instead of 4
        n_decoder_layers=1,  # SUBSTITUTION: 1 instead of 7
        # �练�数
        lr=1e-5,
        weight_decay=1e-4,
        kl_weight=10,
    )

    # 2. 创建模�
    policy = ACTPolicy(config)

    # 3. 准备数�
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from torch.utils.data import DataLoader

    dataset = LeRobotDataset(guidea_datasets["aloha_mobile_cabinet"])  # SUBSTITUTION: local folder for "lerobot/aloha_mobile_cabinet"
    dataloader = DataLoader(
        dataset,
        batch_size=32,
        shuffle=True,
        num_workers=0  # SUBSTITUTION: 0 worker processes instead of 4 (ten epochs of a tiny dataset)
    )

    # 4. �练循�
    optimizer = torch.optim.AdamW(
        policy.parameters(),
        lr=config.lr,
        weight_decay=config.weight_decay
    )

    policy.train()
    policy.to("cpu")  # SUBSTITUTION: "cpu" for "cuda"

    for epoch in range(10):  # SUBSTITUTION: 10 epochs instead of 100
        for batch_idx, batch in enumerate(dataloader):
            # 移动到设备
            batch = {k: v.to("cpu") for k, v in batch.items()}  # SUBSTITUTION: "cpu" for "cuda"

            # ��传�
            output = policy(batch)
            loss = output["loss"]

            # ��传�
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

            if batch_idx % 100 == 0:
                print(f"Epoch {epoch}, Batch {batch_idx}, Loss: {loss.item():.4f}")

        # ��检查点
        if (epoch + 1) % 10 == 0:
            torch.save(
                policy.state_dict(),
                f"./checkpoints/act_epoch_{epoch+1}.pt"
            )

    # Checks (not in the guide): the saved weights load into a fresh policy of the same config.
    fresh = ACTPolicy(config)
    fresh.load_state_dict(torch.load("./checkpoints/act_epoch_10.pt"))
    assert torch.isfinite(loss)
