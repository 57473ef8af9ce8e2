"""G26 (实际应用场景 / 场景2: 低成本机械臂学习): SO-100 from connection to deployment in one script.

The arm is an emulated servo chain (``/dev/ttyUSB0`` -> the emulator's port); ``robot.calibrate()``
asks a person to move the arm, so the test answers the prompts by moving the emulated joints.
``control_device="phone"`` needs a phone running the pose app (hardware no test has): the call as
written must end in one clear error naming what to install; the script then runs with the smallest
substitution, the keyboard (no key pressed: the arm holds its pose). Sizes made small.
"""

import pytest
from tests.robots.arm_helpers import REST, scripted_calibration_input

from lerobot.motors.emulator import start_emulated_arm


@pytest.mark.slow
def test_g26_low_cost_arm(tmp_path, monkeypatch):
    # --- prelude: names the guide uses without importing ---
    from lerobot.scripts.collect import collect_demonstrations
    from lerobot.scripts.deploy import deploy_policy
    from lerobot.scripts.train import train_policy

    with start_emulated_arm("so100_follower") as emulator:
        monkeypatch.setattr("builtins.input", scripted_calibration_input(emulator, REST, 600))  # the person calibrating
        monkeypatch.chdir(tmp_path)

        # --- the block ---
        from lerobot.robots.so100 import SO100Robot
        from lerobot.common.policies.diffusion import DiffusionPolicy

        # 1. 连接 SO-100
        robot = SO100Robot(port=emulator.port)  # SUBSTITUTION: the emulator's port for /dev/ttyUSB0
        robot.connect()

        # 2. 校准
        robot.calibrate()

        # 3. 收集演示数据
        with pytest.raises(ImportError, match="HEBI Mobile I/O app"):  # (not in the guide) as written: no phone here
            collect_demonstrations(robot=robot, control_device="phone", num_episodes=30, task="pick_and_place")
        assert not robot.is_connected  # (not in the guide) a failed session turns the torque off
        robot.connect()  # (not in the guide) so the script goes on from step 3 as if the phone were there
        dataset = collect_demonstrations(
            robot=robot,
            control_device="keyboard",  # SUBSTITUTION: the keyboard for the phone (no phone in a test)
            num_episodes=2,  # SUBSTITUTION: smaller size (30)
            task="pick_and_place",
            episode_time_s=0.4,  # SUBSTITUTION: smaller size (30 s episodes)
        )

        # 4. 训练策略
        policy = train_policy(
            policy_type="diffusion",
            dataset=dataset,
            training_steps=2,  # SUBSTITUTION: smaller size (50000)
            output_dir=str(tmp_path / "train"),  # SUBSTITUTION: a named folder (default: a dated one under ./outputs)
        )

        # 5. 部署
        report = deploy_policy(
            policy=policy,
            robot=robot,
            safety_checks=True,
            max_steps=5,  # SUBSTITUTION: smaller size (runs until Ctrl-C)
        )

        # --- checks ---
        assert isinstance(policy, DiffusionPolicy) and dataset.num_episodes == 2
        assert report.steps == 5 and robot.is_connected  # the caller connected it: it stays connected
        robot.disconnect()
