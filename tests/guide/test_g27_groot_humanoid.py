"""G27 (实际应用场景 / 场景3: 人形机器人控制): GR00T N1.5 on Reachy 2 -- waits for the VLA issue."""

import pytest


@pytest.mark.xfail(strict=True, raises=ModuleNotFoundError, reason="needs VLA / GR00T (lerobot.common.policies.groot)")
def test_g27_groot_humanoid():
    # --- prelude: names the guide uses without importing ---
    import torch

    # --- the block ---
    from lerobot.common.policies.groot import GR00TPolicy
    from lerobot.robots.reachy2 import Reachy2Robot

    # 1. 加载预训练 VLA 模型
    policy = GR00TPolicy.from_pretrained("lerobot/groot_n1.5")
    policy.eval()
    policy.to("cpu")  # SUBSTITUTION: "cpu" for "cuda"

    # 2. 连接 Reachy 2
    robot = Reachy2Robot()
    robot.connect()

    # 3. 语言条件控制
    task_instruction = "请拿起桌面上的红色方块，放到蓝色盒子里"

    while True:
        # 获取观察（包括视觉）
        obs = robot.get_observation()

        # VLA 推理
        with torch.no_grad():
            action = policy.predict(
                images=obs["cameras"],
                states=obs["joint_positions"],
                instruction=task_instruction
            )

        # 执行动作
        robot.send_action(action)

        # 检查任务完成
        if robot.check_task_completion():
            break
