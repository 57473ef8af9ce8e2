"""Expert demonstrations recorded in the env's own units, ready for lerobot-train + lerobot-eval."""

import numpy as np
import torch
from tests.datasets.validate import validate_v30

from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.envs import make_env
from lerobot.scripts.record_expert import main


def test_recorded_actions_replay_to_success(tmp_path, capsys):
    root = tmp_path / "ds"
    assert main(["--env.type=so100", "--env.obs_type=state", "--repo_id=me/pick", f"--root={root}",
                 "--num_episodes=2", "--first_seed=7", "--video=false"]) == 0  # fmt: skip
    assert "Recorded 2 episodes" in capsys.readouterr().out
    validate_v30(root)
    ds = LeRobotDataset("me/pick", root=root)
    assert ds.meta.robot_type == "so100_sim" and ds[0]["task"] == "so100 pick_cube"
    assert set(ds.features) >= {"observation.state", "observation.environment_state", "action"}
    # Episode 1 was seed 8: its stored actions, replayed open loop from that seed, lift the cube again.
    env = make_env("so100", obs_type="state")
    obs, info = env.reset(seed=8)
    ep = ds.get_episode(1)
    np.testing.assert_allclose(obs["agent_pos"], ds[ep.start]["observation.state"].numpy(), atol=1e-6)
    for i in range(ep.start, ep.stop):
        obs, _, terminated, _, info = env.step(ds[i]["action"].numpy())
    env.close()
    assert info["is_success"] and terminated


def test_dart_noise_perturbs_executed_actions_but_stores_the_experts(tmp_path):
    from lerobot.envs import resolve_env_config
    from lerobot.envs.recording import record_expert_dataset

    env = resolve_env_config("so100", obs_type="state")
    clean, _ = record_expert_dataset(env, "me/clean", tmp_path / "clean", 1, use_videos=False)
    noisy, share = record_expert_dataset(env, "me/noisy", tmp_path / "noisy", 1, use_videos=False,
                                         action_noise=0.01)  # fmt: skip
    assert 0.0 < share <= 1.0 and noisy.meta.total_episodes == 1  # failed tries are dropped, not saved
    a, b = clean[0], noisy[0]  # same seed, same first observation: the expert's action is the same
    np.testing.assert_array_equal(a["action"].numpy(), b["action"].numpy())
    assert not np.array_equal(clean[5]["observation.state"].numpy(), noisy[5]["observation.state"].numpy())


def test_camera_task_records_png_frames_without_video(tmp_path):
    """``--video=false`` on a camera env stored nothing: the env declares its cameras as ``video`` and the
    dataset refused them. They are now stored as lossless PNG frames that read back as the env rendered."""
    root = tmp_path / "ds"
    assert main(["--env.type=so100", "--env.obs_type=pixels_agent_pos", "--env.episode_length=3",
                 "--repo_id=me/pix", f"--root={root}", "--num_episodes=1", "--video=false"]) == 0  # fmt: skip
    validate_v30(root)
    ds = LeRobotDataset("me/pix", root=root)
    assert ds.features["observation.images.front"]["dtype"] == "image"
    assert not list(root.rglob("*.mp4"))
    frame = ds[0]["observation.images.front"]
    assert frame.shape == (3, 96, 96) and frame.dtype == torch.float32
    env = make_env("so100", obs_type="pixels_agent_pos")
    obs, _ = env.reset(seed=0)
    env.close()
    rendered = torch.from_numpy(obs["pixels"]["front"]).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(frame, rendered, rtol=0, atol=0)  # same pixels, same channel order


def test_rewards_are_stored_with_the_step_that_earned_them(tmp_path):
    """``--rewards=true``: LeRobot's ``next.reward`` / ``next.done`` / ``next.success`` columns, each frame
    holding what its own action earned (the data TD-MPC's offline + online training seeds its buffer with)."""
    root = tmp_path / "ds"
    assert main(["--env.type=so100", "--env.task=reach", "--env.obs_type=state", "--repo_id=me/reach",
                 f"--root={root}", "--num_episodes=1", "--first_seed=3", "--video=false",
                 "--rewards=true"]) == 0  # fmt: skip
    validate_v30(root)
    ds = LeRobotDataset("me/reach", root=root)
    assert ds.features["next.reward"]["dtype"] == "float32" and ds.features["next.done"]["dtype"] == "bool"
    env = make_env("so100", task="reach", obs_type="state")
    env.reset(seed=3)
    for i in range(len(ds)):
        _, reward, terminated, _, info = env.step(ds[i]["action"].numpy())
        assert ds[i]["next.reward"].item() == np.float32(reward)
        assert bool(ds[i]["next.done"]) == terminated and bool(ds[i]["next.success"]) == info["is_success"]
    env.close()
    # The reach expert goes straight above the cube within a second and holds it; reach never ends early.
    success = [bool(ds[i]["next.success"]) for i in range(len(ds))]
    assert len(ds) == 100 and not terminated and all(success[40:]) and not success[0]
    from lerobot.envs import resolve_env_config
    from lerobot.envs.recording import record_expert_dataset

    plain, _ = record_expert_dataset(resolve_env_config("so100", task="reach", obs_type="state"), "me/plain",
                                     tmp_path / "plain", 1, use_videos=False)  # fmt: skip
    assert not {"next.reward", "next.done", "next.success"} & set(plain.features)  # off by default
