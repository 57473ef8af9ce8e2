"""G36 (最佳实践 / 部署优化): a controller that checks joint limits, speed and workspace before acting.

The block defines the class; the test runs it on the SO-100 twin (an allowed substitution for the
user's arm). ``robot.forward_kinematics`` is the arm's kinematic chain. The policy is the user's own:
one that nudges every joint by a degree and answers one robot's action (A,) -- the block's limit
check iterates joints, so a batched (1, A) action would not do.
"""

import numpy as np
import pytest


class NudgePolicy:
    """The user's own policy: every joint one degree further than observed."""

    def select_action(self, observation):
        return {"action": observation["observation.state"] + 1.0}


@pytest.mark.slow
def test_g36_safe_controller(capsys):
    # --- prelude: names the guide uses without importing ---
    import torch

    # --- the block ---
    class SafeRobotController:
        """带安全检查的机器人控制器"""

        def __init__(self, robot, policy, safety_config):
            self.robot = robot
            self.policy = policy
            self.config = safety_config

            # 安全限制
            self.joint_limits = safety_config["joint_limits"]
            self.velocity_limits = safety_config["velocity_limits"]
            self.workspace_bounds = safety_config["workspace_bounds"]

            # 监控
            self.action_history = []
            self.emergency_stop = False

        def execute_action(self, observation):
            """安全地执行动作"""

            # 1. 预测动作
            with torch.no_grad():
                action = self.policy.select_action(observation)["action"]

            # 2. 安全检查
            if not self.is_action_safe(action):
                print("⚠️ 不安全的动作被阻止")
                return self.get_safe_action()

            # 3. 执行
            self.robot.send_action({"joint_positions": action})
            self.action_history.append(action)

            return action

        def is_action_safe(self, action):
            """检查动作是否安全"""

            # 检查关节限制
            for i, (pos, (min_pos, max_pos)) in enumerate(zip(action, self.joint_limits)):
                if pos < min_pos or pos > max_pos:
                    print(f"关节 {i} 超出限制: {pos} not in [{min_pos}, {max_pos}]")
                    return False

            # 检查速度限制
            if len(self.action_history) > 0:
                velocity = action - self.action_history[-1]
                if torch.abs(velocity).max() > self.velocity_limits:
                    print(f"速度过大: {velocity.max()}")
                    return False

            # 检查工作空间
            ee_pos = self.robot.forward_kinematics(action)
            if not self.is_in_workspace(ee_pos):
                print(f"超出工作空间: {ee_pos}")
                return False

            return True

        def get_safe_action(self):
            """获取安全的备用动作"""
            current_obs = self.robot.get_observation()
            return current_obs["joint_positions"]  # 保持当前位置

        def is_in_workspace(self, position):
            """检查位置是否在工作空间内"""
            x, y, z = position
            x_min, x_max = self.workspace_bounds["x"]
            y_min, y_max = self.workspace_bounds["y"]
            z_min, z_max = self.workspace_bounds["z"]

            return (x_min <= x <= x_max and
                    y_min <= y <= y_max and
                    z_min <= z <= z_max)

    # --- the user's robot, policy and limits; then the controller at work ---
    from lerobot.robots.sim import SO100Sim

    robot = SO100Sim(cameras={}, realtime=False)  # SUBSTITUTION: the simulated twin of the user's SO-100
    robot.connect()
    try:
        obs = robot.get_observation()
        home = torch.tensor(obs["joint_positions"])
        controller = SafeRobotController(robot, NudgePolicy(), {
            "joint_limits": [(-180.0, 180.0)] * 5,
            "velocity_limits": 30.0,
            "workspace_bounds": {"x": (-0.5, 0.5), "y": (-0.5, 0.5), "z": (-0.1, 0.6)},
        })  # fmt: skip
        for _ in range(3):
            action = controller.execute_action({"observation.state": torch.tensor(robot.get_observation()["joint_positions"])})
        assert len(controller.action_history) == 3 and isinstance(action, torch.Tensor)
        # an action outside the joint limits is refused and the present pose is returned
        controller.joint_limits = [(-1.0, 1.0)] * 5
        held = controller.execute_action({"observation.state": home})
        assert "超出限制" in capsys.readouterr().out and len(controller.action_history) == 3
        np.testing.assert_allclose(held, robot.get_observation()["joint_positions"], atol=1e-4)
    finally:
        robot.disconnect()
