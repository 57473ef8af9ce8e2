"""lerobot-record with so100_sim + the scripted expert, replay on a fresh twin, crash and resume, collect_demonstrations."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from tests.datasets.validate import validate_v30

from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.robots.sim import SO100Sim
from lerobot.scripts.collect import collect_demonstrations
from lerobot.scripts.record import parse_record_config, record
from lerobot.scripts.replay import replay_episode

CAMERAS = '--robot.cameras={"front": {"width": 64, "height": 64, "fps": 30}}'
REPLAY_TOLERANCE_DEG = 1e-3  # measured: 0 (bit-identical physics from the same seed and actions)


def record_args(root, n):
    return ["--robot.type=so100_sim", CAMERAS, "--teleop.type=expert", "--teleop.env=so100",
            "--teleop.task=pick_cube", "--control-mode=scripted", "--dataset.repo_id=me/pick",
            f"--dataset.root={root}", f"--dataset.num_episodes={n}", "--dataset.episode_time_s=3.5",
            "--dataset.reset_time_s=0", "--dataset.single_task=pick the cube", "--realtime=false"]  # fmt: skip


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    root = tmp_path_factory.mktemp("rec") / "ds"
    record(parse_record_config(record_args(root, 2)))
    return root


def test_scripted_recording_is_valid_and_episodes_succeed(recorded):
    validate_v30(recorded)
    ds = LeRobotDataset("me/pick", root=recorded)
    assert ds.num_episodes == 2 and len(ds) == 2 * 105 and ds.meta.robot_type == "so100_sim"
    assert ds.features["observation.images.front"]["shape"] == (64, 64, 3)
    assert ds[0]["observation.images.front"].shape == (3, 64, 64) and ds[0]["task"] == "pick the cube"
    for episode in range(2):  # replaying the expert's actions from the episode's seed lifts the cube
        robot = SO100Sim()
        with robot:
            replay_episode(robot, LeRobotDataset("me/pick", root=recorded), episode, realtime=False)
            assert robot.check_task_completion()


def test_replay_reproduces_recorded_states(recorded):
    ds = LeRobotDataset("me/pick", root=recorded)
    frames = ds.get_episode(1)
    states = ds.hf_dataset.column("observation.state").to_numpy(zero_copy_only=False)[
        frames.start : frames.stop
    ]
    robot = SO100Sim()
    with robot:
        observations = replay_episode(robot, ds, 1, realtime=False)
    replayed = np.array([[obs[k] for k in robot.action_features] for obs in observations])
    np.testing.assert_allclose(replayed, np.stack(states), atol=REPLAY_TOLERANCE_DEG, rtol=0)


CRASH = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {repo!r})
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    original = LeRobotDataset.add_frame
    def add_frame(self, frame, task=None):  # killed 20 frames into the second episode
        original(self, frame, task=task)
        if self.meta.total_episodes == 1:
            self._n = getattr(self, "_n", 0) + 1
            if self._n == 20:
                os.kill(os.getpid(), signal.SIGKILL)
    LeRobotDataset.add_frame = add_frame
    from tests.scripts.test_collect_and_replay import record_args
    from lerobot.scripts.record import parse_record_config, record
    record(parse_record_config(record_args({root!r}, 3)))
    """
)


def test_kill_mid_episode_then_resume_keeps_finished_episodes(tmp_path):
    root = tmp_path / "ds"
    repo = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    env = {**os.environ, "MUJOCO_GL": "egl", "PYNPUT_BACKEND": "dummy"}
    proc = subprocess.run([sys.executable, "-c", CRASH.format(repo=repo, root=str(root))], env=env,
                          capture_output=True, timeout=300)  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    assert LeRobotDataset("me/pick", root=root).num_episodes == 1  # episode 0 survived the kill
    record(parse_record_config([*record_args(root, 2), "--resume=true"]))
    ds = LeRobotDataset("me/pick", root=root)
    assert ds.num_episodes == 2 and len(ds) == 210
    validate_v30(root)


def test_resume_with_another_camera_resolution_is_refused(recorded, tmp_path):
    args = [a.replace('"width": 64', '"width": 96') for a in record_args(recorded, 3)]
    with pytest.raises(ValueError, match="observation.images.front"):
        record(parse_record_config([*args, "--resume=true"]))


def test_collect_demonstrations_with_the_expert(tmp_path):
    ds = collect_demonstrations(robot="so100_sim", control_device="expert", num_episodes=1, task="pick_cube",
                                root=tmp_path / "c", episode_time_s=3.5, use_videos=False)  # fmt: skip
    assert ds.num_episodes == 1 and len(ds) == 105 and ds[0]["task"] == "pick_cube"
    with pytest.raises(ValueError, match="leader=SO100LeaderConfig"):
        from lerobot.robots.myrobot import MyRobot

        collect_demonstrations(robot=MyRobot(), control_device="leader", root=tmp_path / "d")
    with pytest.raises(ValueError, match="choose one of keyboard, gamepad"):
        collect_demonstrations(robot="so100_sim", control_device="telepathy")


def test_collect_leaves_a_caller_connected_robot_connected_and_a_second_call_adds_a_dataset():
    """The guide connects and calibrates the robot, collects, then trains and deploys on the same robot;
    collecting twice with the default id gives two datasets (``..._2``) instead of an error."""
    robot = SO100Sim(cameras={}, realtime=False)
    robot.connect()
    try:
        kwargs = dict(
            robot=robot, control_device="expert", num_episodes=1, task="pick_cube", episode_time_s=0.2
        )
        first = collect_demonstrations(**kwargs, use_videos=False)
        assert robot.is_connected
        second = collect_demonstrations(**kwargs, use_videos=False)
        assert robot.is_connected
    finally:
        robot.disconnect()
    assert first.repo_id == "local/so100_sim_pick_cube" and second.repo_id == "local/so100_sim_pick_cube_2"
    assert first.num_episodes == second.num_episodes == 1


def test_teleoperation_mode_alone_picks_the_leader_arm(tmp_path):
    """``--control-mode=teleoperation`` without --teleop: a twin gets its simulated leader; a real arm's
    error names the leader flags."""
    ds = record(parse_record_config([
        "--robot.type=so100_sim", "--robot.cameras={}", "--control-mode=teleoperation", "--repo-id=me/lead",
        f"--dataset.root={tmp_path / 'lead'}", "--num-episodes=1", "--episode-length=0.2", "--realtime=false",
        "--dataset.video=false",
    ]))  # fmt: skip
    assert ds.num_episodes == 1 and len(ds) == 6
    with pytest.raises(ValueError, match="--teleop.type=so100_leader --teleop.port="):
        record(parse_record_config([
            "--robot-type=so100", "--robot.port=/dev/null", "--control-mode=teleoperation", "--repo-id=me/x",
            f"--dataset.root={tmp_path / 'x'}",
        ]))  # fmt: skip


def test_policy_driven_recording(recorded, tmp_path):
    """--control-mode=policy: a checkpoint drives the twin and the rollout is stored as a dataset."""
    from lerobot.configs.types import FeatureType, dataset_to_policy_features
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy

    demos = LeRobotDataset("me/pick", root=recorded)
    features = dataset_to_policy_features(demos.features)
    cfg = ACTConfig(
        input_features={k: f for k, f in features.items() if f.type is not FeatureType.ACTION},
        output_features={"action": features["action"]},
        dim_model=16, n_heads=2, dim_feedforward=32, n_encoder_layers=1, n_decoder_layers=1,
        n_vae_encoder_layers=1, latent_dim=4, chunk_size=4, n_action_steps=4,
        pretrained_backbone_weights=None,
    )  # fmt: skip
    ckpt = ACTPolicy(cfg, dataset_stats=demos.meta.stats).save_pretrained(tmp_path / "ckpt")
    root = tmp_path / "rollout"
    args = [a for a in record_args(root, 1) if not a.startswith(("--teleop", "--control-mode"))]
    record(
        parse_record_config(
            [*args, "--control-mode=policy", f"--policy.path={ckpt}", "--dataset.episode_time_s=0.3"]
        )
    )
    validate_v30(root)
    rollout = LeRobotDataset("me/pick", root=root)
    assert rollout.num_episodes == 1 and len(rollout) == 9  # 0.3 s at 30 fps
    with pytest.raises(ValueError, match="--control-mode=policy needs --policy.path"):
        record(parse_record_config([*args, "--control-mode=policy"]))
