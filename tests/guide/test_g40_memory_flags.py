"""G40 (故障排查 / 常见问题): out-of-memory remedies, given as ``lerobot-train`` flags.

The python fence holds flag fragments, not Python (rule: the smallest substitution -- they are
passed to ``lerobot-train`` on a tiny local dataset, which must accept all three).
"""

import pytest
from tests.guide._guideb_fixtures import in_tmp_dir, pusht_dataset, run_shell_command  # noqa: F401


@pytest.mark.slow
def test_g40_memory_flags(in_tmp_dir):  # noqa: F811
    flags = """
# 减小批次大小
--training.batch_size=16

# 使用梯度累积
--training.gradient_accumulation_steps=2

# 启用混合精度训练
--training.use_amp=true
"""
    # SUBSTITUTION: the fragments go to a lerobot-train command on a local dataset, 2 steps
    run_shell_command(
        f"lerobot-train --policy=act --dataset.repo_id={pusht_dataset()} --training.num_steps=2 "
        f"--output_dir=./run {' '.join(line for line in flags.splitlines() if line.startswith('--'))}"
    )
    import pandas as pd

    log = pd.read_csv(in_tmp_dir / "run" / "train_log.csv")
    assert log["step"].tolist()[-1] == 2 and log["train_loss"].notna().all()
