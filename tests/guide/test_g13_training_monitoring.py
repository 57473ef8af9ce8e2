"""G13 (guide line 696): W&B tracking, from ``lerobot-train`` flags and from Python.

The block is a python fence holding a shell command and then Python; it is split by language:
the command runs in a shell, the Python as Python. W&B runs offline (WANDB_MODE=offline): its
runs are written under WANDB_DIR instead of uploaded.
"""

import subprocess

import pytest

from tests.guide._guidea_helpers import console_script


@pytest.mark.slow
def test_g13_training_monitoring(guidea_datasets, guidea_cli_env, tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="W&B is in the `train` extra: pip install 'lerobot[train]'")
    monkeypatch.chdir(tmp_path)

    # --- the shell part ---
    # �用 Weights & Biases 跟踪
    command = [
        console_script("lerobot-train"),
        "--policy=act",
        f"--dataset.repo_id={guidea_datasets['aloha_mobile_cabinet']}",  # SUBSTITUTION: local folder for lerobot/aloha_mobile_cabinet
        "--wandb.enable=true",
        "--wandb.project=lerobot-experiments",
        "--wandb.entity=my-username",
        "--wandb.run_name=act-aloha-v1",
        "--training.num_steps=2",  # SUBSTITUTION: 2 steps (the guide keeps the default)
        "--training.batch_size=4",  # SUBSTITUTION: 4 samples per step (the guide keeps the default)
        "--output_dir=./outputs/act_wandb",  # SUBSTITUTION: a named folder (the default is dated)
    ]
    result = subprocess.run(command, env=guidea_cli_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    offline_runs = list((tmp_path / "outputs/act_wandb/wandb").glob("offline-run-*"))  # kept with the run
    assert offline_runs, result.stderr[-2000:]

    # --- the Python part ---
    monkeypatch.setenv("WANDB_MODE", "offline")  # SUBSTITUTION: offline (no network here)
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    # 或在代���用
    import wandb

    wandb.init(
        project="lerobot-experiments",
        name="act-aloha-v1",
        config={
            "policy": "act",
            "dataset": "lerobot/aloha_mobile_cabinet",
            "batch_size": 32,
            "learning_rate": 1e-4,
        }
    )

    try:
        assert wandb.run is not None and wandb.run.name == "act-aloha-v1"
        assert wandb.run.config["batch_size"] == 32
    finally:
        wandb.finish()
