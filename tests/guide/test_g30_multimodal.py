"""G30 (高级特性 / 多模态融合): a vision + state + touch policy on torchvision's ResNet-18.

``resnet18(pretrained=True)`` downloads ImageNet weights: marked ``network`` (rule in README). The rest
of the block (fusion, loss) is torch's own.
"""

import types

import pytest


@pytest.mark.network
def test_g30_multimodal():
    # --- the block ---
    import torch
    import torch.nn as nn
    from torchvision.models import resnet18

    class MultiModalPolicy(nn.Module):
        """多模态策略：融合视觉、状态和触觉"""

        def __init__(self, config):
            super().__init__()

            # 视觉编码器
            self.vision_encoder = resnet18(pretrained=True)
            self.vision_encoder.fc = nn.Identity()

            # 状态编码器
            self.state_encoder = nn.Sequential(
                nn.Linear(config.state_dim, 128),
                nn.ReLU(),
                nn.Linear(128, 256),
            )

            # 触觉编码器
            self.tactile_encoder = nn.Sequential(
                nn.Linear(config.tactile_dim, 64),
                nn.ReLU(),
                nn.Linear(64, 128),
            )

            # 融合层
            self.fusion = nn.Sequential(
                nn.Linear(512 + 256 + 128, 512),
                nn.ReLU(),
                nn.Linear(512, config.action_dim),
            )

        def forward(self, batch):
            # 处理视觉输入
            images = batch["observation.images.front"]
            vision_features = self.vision_encoder(images)

            # 处理状态输入
            states = batch["observation.state"]
            state_features = self.state_encoder(states)

            # 处理触觉输入
            tactile = batch["observation.tactile"]
            tactile_features = self.tactile_encoder(tactile)

            # 融合所有模态
            combined = torch.cat([vision_features, state_features, tactile_features], dim=-1)
            action = self.fusion(combined)

            # 计算损失
            target_action = batch["action"]
            loss = nn.functional.mse_loss(action, target_action)

            return {"loss": loss, "predicted_actions": action}

    # --- checks: the user's config and batch ---
    policy = MultiModalPolicy(types.SimpleNamespace(state_dim=6, tactile_dim=16, action_dim=6))
    out = policy({"observation.images.front": torch.rand(2, 3, 64, 64), "observation.state": torch.randn(2, 6),
                  "observation.tactile": torch.randn(2, 16), "action": torch.randn(2, 6)})  # fmt: skip
    out["loss"].backward()
    assert out["predicted_actions"].shape == (2, 6)
