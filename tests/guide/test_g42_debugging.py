"""G42 (故障排查 / 调试技巧): debug logging, an episode video, the model's output, the loss curve.

``policy``, ``sample_batch`` and ``training_logs.csv`` are the user's own: a checkpoint for the
dataset's features, a batch as ``lerobot-train`` feeds it (action chunks), and the CSV that
``lerobot-train`` writes (``train_log.csv``, which has the guide's ``loss`` column).
"""

import logging
import shutil
from types import SimpleNamespace

import pytest
from tests.guide._guideb_fixtures import act_checkpoint, headless_plots, in_tmp_dir, pusht_dataset  # noqa: F401

from lerobot.policies.act.modeling_act import ACTPolicy as _ACTPolicy
from lerobot.utils.logging_utils import TrainLogger


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    root.setLevel(level)
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)


@pytest.mark.slow
def test_g42_debugging(in_tmp_dir, headless_plots, restore_logging):  # noqa: F811
    # --- prelude: names the guide uses without importing, and the user's own objects ---
    import torch

    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    policy = _ACTPolicy.from_pretrained(act_checkpoint("pusht_dataset"))
    chunk = LeRobotDataset("lerobot/pusht", root=pusht_dataset(), delta_timestamps={"action": [i / 10 for i in range(5)]})
    sample_batch = next(iter(torch.utils.data.DataLoader(chunk, batch_size=4)))
    log = TrainLogger(in_tmp_dir / "run", {}, None, tensorboard=False, wandb_cfg=SimpleNamespace(enable=False))
    for step in (10, 20, 30):
        log.log(step, {"train_loss": 1.0 / step, "learning_rate": 1e-4})
    shutil.copy(log.csv_path, in_tmp_dir / "training_logs.csv")  # the user's log file

    # --- the block ---
    # 1. 启用详细日志
    import logging
    logging.basicConfig(level=logging.DEBUG)

    # 2. 可视化数据
    from lerobot.common.visualization import visualize_episode

    dataset = LeRobotDataset(str(pusht_dataset()))  # SUBSTITUTION: local folder for lerobot/pusht
    visualize_episode(dataset, episode_idx=0, output_path="episode_0.mp4")

    # 3. 检查模型输出
    policy.eval()
    with torch.no_grad():
        output = policy(sample_batch)
        print(f"输出形状: {output['action'].shape}")
        print(f"动作范围: [{output['action'].min()}, {output['action'].max()}]")

    # 4. 分析训练曲线
    import matplotlib.pyplot as plt
    import pandas as pd

    logs = pd.read_csv("training_logs.csv")
    plt.plot(logs["step"], logs["loss"])
    plt.xlabel("步数")
    plt.ylabel("损失")
    plt.savefig("training_curve.png")

    # --- checks ---
    plt.close("all")
    assert (in_tmp_dir / "episode_0.mp4").stat().st_size > 0
    assert output["action"].shape == (4, 5, 2) and torch.isfinite(output["loss"])
    assert (in_tmp_dir / "training_curve.png").stat().st_size > 0
