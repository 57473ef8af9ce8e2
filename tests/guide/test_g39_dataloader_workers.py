"""G39 (故障排查 / 常见问题): a faster DataLoader with more worker processes."""

import pytest
from tests.guide._guideb_fixtures import pusht_dataset


@pytest.mark.slow
def test_g39_dataloader_workers():
    # --- prelude: names the guide uses without importing ---
    from torch.utils.data import DataLoader

    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    dataset = LeRobotDataset("lerobot/pusht", root=pusht_dataset())  # the user's dataset (SUBSTITUTION: local folder)

    # --- the block ---
    # 增加 workers
    dataloader = DataLoader(
        dataset,
        batch_size=32,
        num_workers=8,  # 增加工作进程
        prefetch_factor=2,
        persistent_workers=True
    )

    # --- checks: it delivers every frame ---
    batches = list(dataloader)
    assert sum(len(b["index"]) for b in batches) == len(dataset) == 24
    assert batches[0]["observation.image"].shape[1:] == (3, 32, 32)
