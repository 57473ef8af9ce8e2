"""G16 (模型部署与评估 / 实时推理): an ACT policy drives ``MyRobot`` from its joints and front camera.

The camera frame goes to the policy as a uint8 CHW tensor (0-255); the policy treats it exactly as the
same frame in [0, 1] (tests/policies/test_policies.py checks the equality).
"""

import numpy as np
import pytest
from tests.guide._guideb_fixtures import act_checkpoint


@pytest.mark.slow
def test_g16_realtime_inference():
    # --- prelude: names the guide uses without importing ---
    import time

    from lerobot.common.robot_config import RobotConfig

    # the user's own robot config: MyRobot with a front camera (simulated: no webcam in a test)
    robot_config = RobotConfig(robot_type="myrobot", cameras={"front": {"type": "sim", "resolution": (64, 48), "fps": 30}})

    # --- the block ---
    from lerobot.common.policies.act.modeling_act import ACTPolicy
    from lerobot.robots.myrobot import MyRobot
    import torch

    # 1. 加载预训练模型
    policy = ACTPolicy.from_pretrained(act_checkpoint("myrobot"))  # SUBSTITUTION: local checkpoint folder for lerobot/act_aloha_mobile_cabinet
    policy.eval()
    policy.to("cpu")  # SUBSTITUTION: "cpu" for "cuda"

    # 2. 连接机器人
    robot = MyRobot(config=robot_config)
    robot.connect()

    # 3. 推理循环
    sent = []  # (not in the guide) what the loop sent, for the checks below
    try:
        for step in range(12):  # SUBSTITUTION: smaller size, 12 steps for 1000
            # 获取观察
            obs = robot.get_observation()

            # 准备输入
            observation = {
                "observation.state": torch.tensor(obs["joint_positions"]).unsqueeze(0).to("cpu"),  # SUBSTITUTION: cpu
                "observation.images.front": torch.tensor(obs["cameras"]["front"]).permute(2, 0, 1).unsqueeze(0).to("cpu"),  # SUBSTITUTION: cpu
            }

            # 推理
            with torch.no_grad():
                output = policy.select_action(observation)
                action = output["action"][0].cpu().numpy()

            # 执行动作
            robot.send_action({"joint_positions": action})
            sent.append(action)

            # 控制频率
            time.sleep(1/30)

    finally:
        robot.disconnect()

    # --- checks ---
    assert not robot.is_connected and len(sent) == 12
    assert all(a.shape == (6,) and np.isfinite(a).all() for a in sent)
