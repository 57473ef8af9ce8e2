"""G10 (guide line 564): ``lerobot-train`` with the guide's flags."""

import subprocess
from pathlib import Path

import pytest

from tests.guide._guidea_helpers import console_script


@pytest.mark.slow
def test_g10_train_cli(guidea_datasets, guidea_cli_env, tmp_path):
    command = [
        console_script("lerobot-train"),
        "--policy=act",
        f"--dataset.repo_id={guidea_datasets['aloha_mobile_cabinet']}",  # SUBSTITUTION: local folder for lerobot/aloha_mobile_cabinet
        "--training.num_steps=2",  # SUBSTITUTION: 2 instead of 100000
        "--training.batch_size=4",  # SUBSTITUTION: 4 instead of 32
        "--training.learning_rate=1e-4",
        "--training.eval_freq=5000",
        "--training.save_freq=10000",
        "--output_dir=./outputs/act_aloha",
        "--device=cuda",  # no substitution needed: an unavailable device falls back to cpu with a warning
    ]
    result = subprocess.run(command, cwd=tmp_path, env=guidea_cli_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Trained policy: outputs/act_aloha/checkpoints/last/pretrained_model" in result.stdout
    assert "inference" in result.stderr and "ms" in result.stderr  # logged with each step's loss
    assert (tmp_path / "outputs/act_aloha/checkpoints/last/pretrained_model/model.safetensors").is_file()
    assert Path(tmp_path / "outputs/act_aloha/train_log.csv").read_text().splitlines()[-1].startswith("2,")
