"""G14 (guide line 723): distributed training launched by ``torchrun``.

``torchrun`` starts a Python *script*; ``lerobot-train`` is a console command, so as written torchrun
looks for a file named ``lerobot-train``. The rule (tests/guide/README.md): add ``--no-python``, which
makes torchrun run the command itself (``-m lerobot.scripts.train`` works too). Here: 2 processes on
the CPU (gloo) instead of 4 GPUs.
"""

import subprocess

import pytest

from tests.guide._guidea_helpers import console_script


@pytest.mark.slow
def test_g14_torchrun(guidea_datasets, guidea_cli_env, tmp_path):
    # 使用 torchrun 进行分布��练
    command = [
        console_script("torchrun"),
        "--nproc_per_node=2",  # SUBSTITUTION: 2 processes instead of 4
        "--no-python",  # SUBSTITUTION: lerobot-train is a command, not a Python file (the rule)
        "lerobot-train",
        "--policy=act",
        f"--dataset.repo_id={guidea_datasets['aloha_mobile_cabinet']}",  # SUBSTITUTION: local folder for lerobot/aloha_mobile_cabinet
        "--training.batch_size=4",  # SUBSTITUTION: 4 instead of 128
        "--training.num_steps=2",  # SUBSTITUTION: 2 instead of 100000
        "--output_dir=./outputs/act_ddp",  # SUBSTITUTION: a named folder (the default is dated)
    ]
    env = {**guidea_cli_env, "PATH": f"{console_script('lerobot-train').rsplit('/', 1)[0]}:{guidea_cli_env['PATH']}"}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "2 processes" in result.stderr
    assert (tmp_path / "outputs/act_ddp/checkpoints/last/pretrained_model/model.safetensors").is_file()
