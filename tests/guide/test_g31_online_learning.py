"""G31 (高级特性 / 在线学习与适应): ``OnlineLearner`` -- waits for the online-learning issue."""

import pytest


@pytest.mark.xfail(strict=True, raises=ModuleNotFoundError, reason="needs OnlineLearner (lerobot.common.online_learning)")
def test_g31_online_learning():
    # --- prelude: names the guide uses without importing ---
    import torch

    # --- the block ---
    from lerobot.common.online_learning import OnlineLearner

    class AdaptivePolicy:
        """支持在线学习的自适应策略"""

        def __init__(self, base_policy, learning_rate=1e-4):
            self.policy = base_policy
            self.optimizer = torch.optim.Adam(
                self.policy.parameters(),
                lr=learning_rate
            )
            self.replay_buffer = []

        def collect_and_adapt(self, robot, num_steps=100):
            """收集数据并在线适应"""

            for step in range(num_steps):
                # 执行动作
                obs = robot.get_observation()
                action = self.policy.select_action(obs)
                robot.send_action(action)

                # 获取反馈
                next_obs = robot.get_observation()
                reward = compute_reward(obs, action, next_obs)  # noqa: F821  (the user's own helper)

                # 存储经验
                self.replay_buffer.append({
                    "observation": obs,
                    "action": action,
                    "reward": reward,
                    "next_observation": next_obs,
                })

                # 在线更新
                if len(self.replay_buffer) >= 32:
                    self.update_policy()

        def update_policy(self):
            """使用最近的经验更新策略"""
            batch = self.sample_batch()

            output = self.policy(batch)
            loss = output["loss"]

            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()

            # 清理旧数据
            if len(self.replay_buffer) > 1000:
                self.replay_buffer = self.replay_buffer[-1000:]

    # --- checks: the block defines the class; OnlineLearner is what it imports from the library ---
    assert OnlineLearner is not None and AdaptivePolicy is not None
