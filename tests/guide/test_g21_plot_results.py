"""G21 (模型评估 / 可视化评估结果): seaborn bar chart of success rates and the training curves.

``plot_training_curves`` reads the training log: the test feeds it a ``train_log.csv`` written by the
library's own training logger (the columns step, train_loss, val_loss, success_rate, learning_rate).
"""

import pytest
from tests.guide._guideb_fixtures import headless_plots, in_tmp_dir  # noqa: F401

from lerobot.utils.logging_utils import TrainLogger


def _training_log(folder):
    """The user's log file: what ``lerobot-train`` writes (train_log.csv), for 4 logged steps."""
    from types import SimpleNamespace

    log = TrainLogger(folder, {}, resume_step=None, tensorboard=False, wandb_cfg=SimpleNamespace(enable=False))
    for step in (10, 20, 30, 40):
        log.log(step, {"train_loss": 1.0 / step, "val_loss": 1.2 / step, "success_rate": step / 50,
                       "learning_rate": 1e-4})  # fmt: skip
    return log.csv_path


@pytest.mark.filterwarnings("ignore:Glyph")  # the default font has no CJK glyphs: boxes, not an error
def test_g21_plot_results(in_tmp_dir, headless_plots):  # noqa: F811
    # --- the block ---
    import matplotlib.pyplot as plt
    import seaborn as sns

    # 可视化成功率
    def plot_success_rates(results_dict):
        """
        results_dict: {"模型名称": 成功率}
        """
        plt.figure(figsize=(10, 6))
        models = list(results_dict.keys())
        success_rates = list(results_dict.values())

        sns.barplot(x=models, y=success_rates)
        plt.ylabel("成功率")
        plt.title("不同模型在任务上的成功率比较")
        plt.ylim(0, 1)
        plt.xticks(rotation=45)
        plt.tight_layout()
        plt.savefig("success_rates.png", dpi=300)
        plt.show()

    # 可视化训练曲线
    def plot_training_curves(log_file):
        import pandas as pd

        df = pd.read_csv(log_file)

        fig, axes = plt.subplots(2, 2, figsize=(15, 10))

        # 训练损失
        axes[0, 0].plot(df["step"], df["train_loss"])
        axes[0, 0].set_xlabel("步数")
        axes[0, 0].set_ylabel("训练损失")
        axes[0, 0].set_title("训练损失曲线")

        # 验证损失
        axes[0, 1].plot(df["step"], df["val_loss"])
        axes[0, 1].set_xlabel("步数")
        axes[0, 1].set_ylabel("验证损失")
        axes[0, 1].set_title("验证损失曲线")

        # 成功率
        axes[1, 0].plot(df["step"], df["success_rate"])
        axes[1, 0].set_xlabel("步数")
        axes[1, 0].set_ylabel("成功率")
        axes[1, 0].set_title("评估成功率")

        # 学习率
        axes[1, 1].plot(df["step"], df["learning_rate"])
        axes[1, 1].set_xlabel("步数")
        axes[1, 1].set_ylabel("学习率")
        axes[1, 1].set_title("学习率调度")

        plt.tight_layout()
        plt.savefig("training_curves.png", dpi=300)
        plt.show()

    # --- the user's calls (the block defines the functions only) ---
    plot_success_rates({"ACT": 0.8, "Diffusion": 0.65})
    plot_training_curves(_training_log(in_tmp_dir / "run"))
    plt.close("all")
    assert (in_tmp_dir / "success_rates.png").stat().st_size > 0
    assert (in_tmp_dir / "training_curves.png").stat().st_size > 0
