"""Diffusion Policy's vision encoder: resize, crop, ResNet, spatial-softmax keypoints, linear.

Parameter names are LeRobot's (``backbone``, ``pool.nets``, ``out``), so its checkpoints load.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lerobot.policies.backbones import SpatialSoftmax, make_resnet
from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig


class DiffusionRgbEncoder(nn.Module):
    """(N, 3, H, W) normalised images -> (N, 2 * keypoints) features: resize, crop, ResNet, spatial softmax."""

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        if config.use_group_norm:

            def norm_layer(c: int) -> nn.Module:
                return nn.GroupNorm(num_groups=c // 16, num_channels=c)
        else:
            norm_layer = nn.BatchNorm2d
        resnet = make_resnet(
            config.vision_backbone, config.pretrained_backbone_weights, norm_layer=norm_layer
        )
        self.backbone = nn.Sequential(*list(resnet.children())[:-2])  # up to layer4: drop pool and fc
        self.resize_shape = config.resize_shape
        self.crop_size = config.crop_size
        self.crop_is_random = config.crop_is_random

        channels = next(iter(config.image_features.values())).shape[0]
        height, width = self.crop_size or config.image_size
        self.backbone.eval()  # size probe only: leave the batch-norm running stats untouched
        with torch.no_grad():
            fmap = self.backbone(torch.zeros(1, channels, height, width))
        self.backbone.train()
        num_kp = config.spatial_softmax_num_keypoints
        self.pool = SpatialSoftmax(fmap.shape[1], fmap.shape[2], fmap.shape[3], num_kp=num_kp)
        self.feature_dim = num_kp * 2
        self.out = nn.Linear(num_kp * 2, self.feature_dim)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        if self.resize_shape is not None and tuple(x.shape[-2:]) != self.resize_shape:
            import torchvision.transforms.functional as TF  # noqa: N812

            x = TF.resize(x, list(self.resize_shape), antialias=True)
        if self.crop_size is not None:
            random = self.training and self.crop_is_random
            x = random_crop(x, self.crop_size) if random else center_crop(x, self.crop_size)
        keypoints = self.pool(self.backbone(x))
        return self.relu(self.out(keypoints.flatten(1)))


def center_crop(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Central (h, w) window of (..., H, W); offsets rounded as torchvision's CenterCrop does."""
    h, w = size
    height, width = int(x.shape[-2]), int(x.shape[-1])  # ints also while torch.jit.trace records sizes
    top = int(round((height - h) / 2.0))
    left = int(round((width - w) / 2.0))
    return x[..., top : top + h, left : left + w]


def random_crop(x: Tensor, size: tuple[int, int]) -> Tensor:
    """An independent random (h, w) window for every image of the (N, C, H, W) batch."""
    n, _, height, width = x.shape
    h, w = size
    top = torch.randint(0, height - h + 1, (n, 1), device=x.device) + torch.arange(h, device=x.device)
    left = torch.randint(0, width - w + 1, (n, 1), device=x.device) + torch.arange(w, device=x.device)
    rows = x.gather(2, top[:, None, :, None].expand(-1, x.shape[1], -1, width))  # (N, C, h, W)
    return rows.gather(3, left[:, None, None, :].expand(-1, x.shape[1], h, -1))  # (N, C, h, w)
