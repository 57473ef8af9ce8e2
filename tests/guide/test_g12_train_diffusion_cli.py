"""G12 (guide line 660): ``lerobot-train`` of Diffusion Policy on PushT with the guide's flags."""

import subprocess

import pytest

from tests.guide._guidea_helpers import console_script


@pytest.mark.slow
def test_g12_train_diffusion_cli(guidea_datasets, guidea_cli_env, tmp_path):
    command = [
        console_script("lerobot-train"),
        "--policy=diffusion",
        f"--dataset.repo_id={guidea_datasets['pusht']}",  # SUBSTITUTION: local folder for lerobot/pusht
        "--policy.n_action_steps=8",
        "--policy.num_inference_steps=10",
        "--policy.down_dims=[32, 64, 128]",  # SUBSTITUTION: '[32, 64, 128]' instead of '[256, 512, 1024]' (the shell removes the quotes)
        "--training.num_steps=2",  # SUBSTITUTION: 2 instead of 200000
        "--training.batch_size=4",  # SUBSTITUTION: 4 instead of 64
        "--output_dir=./outputs/diffusion_pusht",
    ]
    result = subprocess.run(command, cwd=tmp_path, env=guidea_cli_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    config = (tmp_path / "outputs/diffusion_pusht/checkpoints/last/pretrained_model/config.json").read_text()
    assert '"n_action_steps": 8' in config and '"num_inference_steps": 10' in config
