"""G29 (高级特性 / 自定义策略开发): a custom policy on ``PolicyProtocol``; the test trains and runs it."""

import types

from tests.guide._guideb_fixtures import in_tmp_dir  # noqa: F401


def test_g29_custom_policy(in_tmp_dir):  # noqa: F811
    # --- the block ---
    from lerobot.common.policies.policy_protocol import PolicyProtocol
    import torch
    import torch.nn as nn

    class MyCustomPolicy(nn.Module, PolicyProtocol):
        """自定义策略示例"""

        def __init__(self, config):
            super().__init__()
            self.config = config

            # 定义网络层
            self.encoder = nn.Sequential(
                nn.Linear(config.state_dim, 256),
                nn.ReLU(),
                nn.Linear(256, 512),
                nn.ReLU(),
            )

            self.actor = nn.Linear(512, config.action_dim)

        def forward(self, batch):
            """训练时前向传播"""
            states = batch["observation.state"]
            actions = batch["action"]

            # 编码
            features = self.encoder(states)

            # 预测动作
            predicted_actions = self.actor(features)

            # 计算损失
            loss = nn.functional.mse_loss(predicted_actions, actions)

            return {"loss": loss, "predicted_actions": predicted_actions}

        def select_action(self, observation):
            """推理时选择动作"""
            with torch.no_grad():
                states = observation["observation.state"]
                features = self.encoder(states)
                action = self.actor(features)

            return {"action": action}

        @classmethod
        def from_pretrained(cls, path):
            """从预训练模型加载"""
            # 实现加载逻辑
            pass

        def save_pretrained(self, path):
            """保存模型"""
            torch.save(self.state_dict(), f"{path}/policy.pt")

    # --- checks: the user's config; it trains, acts, saves, and satisfies the protocol ---
    config = types.SimpleNamespace(state_dim=4, action_dim=2)  # the user's own config
    policy = MyCustomPolicy(config)
    assert isinstance(policy, PolicyProtocol)
    batch = {"observation.state": torch.randn(8, 4), "action": torch.randn(8, 2)}
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-3)
    first = policy(batch)["loss"].item()
    for _ in range(20):
        loss = policy(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < first
    assert policy.select_action({"observation.state": torch.randn(1, 4)})["action"].shape == (1, 2)
    policy.save_pretrained(str(in_tmp_dir))
    assert (in_tmp_dir / "policy.pt").stat().st_size > 0
