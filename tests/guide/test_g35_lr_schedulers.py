"""G35 (最佳实践 / 训练调优技巧): cosine and one-cycle learning-rate schedules (PyTorch's own)."""

import torch


def test_g35_lr_schedulers():
    # the user's own optimizer (the guide assumes one exists), here on a policy's parameters
    from tests.guide._guideb_fixtures import tiny_act

    optimizer = torch.optim.AdamW(tiny_act("pusht").parameters(), lr=1e-4)

    # --- the block ---
    from torch.optim.lr_scheduler import CosineAnnealingLR, OneCycleLR

    # Cosine 退火
    scheduler = CosineAnnealingLR(
        optimizer,
        T_max=100000,
        eta_min=1e-6
    )

    # One Cycle 策略
    scheduler = OneCycleLR(
        optimizer,
        max_lr=1e-4,
        total_steps=100000,
        pct_start=0.1,
    )

    # --- checks ---
    optimizer.step()
    scheduler.step()
    assert 0 < optimizer.param_groups[0]["lr"] < 1e-4
