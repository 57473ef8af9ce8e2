"""Simulated twins: the real robots' features, cameras rendered by MuJoCo, deterministic physics, clear errors."""

import numpy as np
import pytest

from lerobot.cameras import SimCameraConfig
from lerobot.robots import ROBOT_CONFIGS, make_robot_from_config
from lerobot.robots.koch_follower import KochFollower
from lerobot.robots.sim import AlohaSim, KochSim, SO100Sim
from lerobot.robots.so100_follower import SO100Follower

CAM = {"front": SimCameraConfig(width=64, height=48, fps=30)}


def test_so100_and_koch_twins_declare_the_real_features():
    for twin, real in ((SO100Sim, SO100Follower), (KochSim, KochFollower)):
        robot = twin(cameras=CAM, realtime=False)
        real_cfg = real.config_class(port="/dev/null", cameras={})
        assert list(robot.action_features) == list(real(real_cfg).action_features)
        assert robot.observation_features["front"] == (48, 64, 3)
    assert ROBOT_CONFIGS.get("so101_sim") is not None and len(AlohaSim().action_features) == 14


@pytest.mark.parametrize("twin,cam", [(SO100Sim, "front"), (KochSim, "top"), (AlohaSim, "top")])
def test_twin_observes_renders_and_moves(twin, cam):
    robot = twin(cameras={cam: SimCameraConfig(width=64, height=48, fps=30)}, realtime=False)
    with robot:
        robot.reset(seed=0)
        obs = robot.get_observation()
        assert obs["cameras"][cam].shape == (48, 64, 3) and obs[cam].std() > 5  # a scene, not a blank
        goal = {k: obs[k] for k in robot.action_features}
        first = next(iter(goal))
        goal[first] += 10.0 if robot.config.use_degrees else 20.0
        for _ in range(40):
            sent = robot.send_action(goal)
        assert sent[first] == pytest.approx(goal[first])
        moved = robot.get_observation()[first] - obs[first]
        assert moved == pytest.approx(goal[first] - obs[first], abs=2.0)
        assert not robot.check_task_completion()


def test_threaded_cameras_deliver_frames_and_stop():
    robot = SO100Sim(cameras={"front": SimCameraConfig(width=64, height=64, fps=30),
                              "top": SimCameraConfig(width=32, height=32, fps=30)})  # fmt: skip
    robot.connect()
    try:
        frame = robot.cameras["top"].async_read(timeout_ms=2000)
        assert frame.shape == (32, 32, 3)
        assert robot.get_observation()["front"].shape == (64, 64, 3)
    finally:
        robot.disconnect()
    assert not robot.cameras["front"].is_connected


def test_same_seed_same_scene_and_deterministic_steps():
    a, b = SO100Sim(), SO100Sim()
    trajectories = []
    for robot in (a, b):
        with robot:
            robot.reset(seed=7)
            action = {k: 5.0 for k in robot.action_features}
            trajectories.append([list(robot.send_action(action).values()) + list(robot.get_observation().values())
                                 for _ in range(10)])  # fmt: skip
    np.testing.assert_array_equal(trajectories[0], trajectories[1])
    np.testing.assert_array_equal(a.sim.cube_pose, b.sim.cube_pose)


def test_clear_errors():
    with pytest.raises(ValueError, match="Unknown robot type 'so100_simm'. Did you mean 'so100_sim'"):
        ROBOT_CONFIGS.get("so100_simm")
    with pytest.raises(ValueError, match=r"no camera view \['wrist'\]; its views are"):
        SO100Sim(cameras={"wrist": SimCameraConfig(width=64, height=64, fps=30)})
    with pytest.raises(ValueError, match="Unknown so100_sim task 'stack'"):
        SO100Sim(task="stack")
    robot = make_robot_from_config(ROBOT_CONFIGS.get("so100_sim")())
    with robot:
        with pytest.raises(ValueError, match=r"expects 5 joint positions"):
            robot.send_action({"joint_positions": [0.0] * 4, "gripper": 50.0})
        with pytest.raises(ValueError, match="missing keys"):
            robot.send_action({"shoulder_pan.pos": 0.0})
        sent = robot.send_action({"joint_positions": [0, 0, 0, 0, 0], "gripper": 500.0})
        assert sent["gripper.pos"] == 100.0  # clipped to the jaw's range, and reported as sent
