"""G34 (最佳实践 / 训练调优技巧): image and state augmentations from ``lerobot.common.datasets.transforms``."""

import torch


def test_g34_augmentation():
    # --- the block ---
    from lerobot.common.datasets.transforms import (
        RandomCrop,
        ColorJitter,
        AddGaussianNoise,
    )

    # 视觉增强
    transforms = [
        RandomCrop(scale=(0.8, 1.0)),
        ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2),
    ]

    # 状态增强
    state_transforms = [
        AddGaussianNoise(std=0.01),
    ]

    # --- checks: they transform a frame and a state as the guide's text says ---
    torch.manual_seed(0)
    image = torch.rand(3, 32, 32)
    for t in transforms:
        image = t(image)
    assert image.shape == (3, 32, 32) and 0 <= float(image.min()) and float(image.max()) <= 1
    state = torch.zeros(6)
    noisy = state_transforms[0](state)
    assert noisy.shape == (6,) and 0 < float(noisy.std()) < 0.05
