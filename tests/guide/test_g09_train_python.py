"""G9 (guide line 543): train ACT from Python with the guide's keywords."""

from pathlib import Path

import pytest


@pytest.mark.slow
def test_g09_train_python(guidea_datasets, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from lerobot.scripts.train import train

    # 使用�置�练 ACT 模�
    train(
        policy_name="act",
        dataset_repo_id=guidea_datasets["aloha_mobile_cabinet"],  # SUBSTITUTION: a local folder for "lerobot/aloha_mobile_cabinet"
        output_dir="./outputs/act_aloha",
        training_steps=2,  # SUBSTITUTION: 2 steps instead of 100000
        batch_size=4,  # SUBSTITUTION: 4 instead of 32
        learning_rate=1e-4,
        eval_freq=5000,
        save_freq=10000,
        num_workers=4,
        device="cuda",  # no substitution needed: an unavailable device falls back to cpu with a warning
        seed=42
    )

    # Checks (not in the guide): a loadable final checkpoint and the training log.
    from lerobot.policies.act.modeling_act import ACTPolicy

    run = Path("outputs/act_aloha")
    policy = ACTPolicy.from_pretrained(run / "checkpoints/last/pretrained_model")
    assert policy.config.output_features["action"].shape == (14,)
    import pandas as pd

    log = pd.read_csv(run / "train_log.csv")
    assert log["step"].iloc[-1] == 2 and log["learning_rate"].iloc[-1] == pytest.approx(1e-4)
    assert log["inference_ms"].iloc[-1] > 0  # the inference time the guide monitors
