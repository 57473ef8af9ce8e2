"""``lerobot-train`` learning from interaction: TD-MPC in the so100 ``reach`` sim, purely online and
seeded by a dataset, with checkpoints that carry the replay buffer and resume exactly."""

import csv
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lerobot.configs.parser import ConfigError
from lerobot.scripts.train import main
from lerobot.scripts.train_config import parse_train_config

# A tiny TD-MPC that plans cheaply; 25-step episodes, 30 random steps before the first update.
FLAGS = [
    "--policy.type=tdmpc", "--policy.device=cpu", "--policy.latent_dim=8", "--policy.mlp_dim=16",
    "--policy.state_encoder_hidden_dim=16", "--policy.q_ensemble_size=2", "--policy.horizon=3",
    "--policy.cem_iterations=2", "--policy.n_gaussian_samples=16", "--policy.n_pi_samples=4",
    "--policy.n_elites=4", "--policy.td_n_steps=2",
    "--env.type=so100", "--env.task=reach", "--env.obs_type=state", "--env.episode_length=25",
    "--online.seed_steps=30", "--online.buffer_capacity=500", "--batch_size=4", "--log_freq=20",
    "--eval_freq=0", "--num_workers=0", "--seed=3", "--tensorboard=false",
]  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def episodes(run: Path) -> list[dict[str, str]]:
    with (run / "online_log.csv").open() as f:
        return list(csv.DictReader(f))


def test_online_run_acts_stores_updates_and_checkpoints_the_buffer(tmp_path):
    run = tmp_path / "run"
    assert main([*FLAGS, f"--output_dir={run}", "--steps=40"]) == 0
    log = episodes(run)
    # 30 random steps, then one update per env step: 40 updates end at env step 69, in the third episode.
    assert [int(r["env_step"]) for r in log] == [25, 50]
    assert all(float(r["return"]) < 0 for r in log)  # reward = -distance on every step
    with (run / "train_log.csv").open() as f:
        losses = [r for r in csv.DictReader(f)]
    assert [int(r["step"]) for r in losses] == [20, 40] and all(float(r["train_loss"]) > 0 for r in losses)
    state = run / "checkpoints" / "last" / "training_state"
    buffer = load_file(str(state / "replay_buffer.safetensors"))
    assert (
        buffer["episode_index"].shape[0] == 69 + 2
    )  # every step plus each finished episode's last observation
    assert (run / "checkpoints" / "last" / "pretrained_model" / "model.safetensors").is_file()
    cfg = parse_train_config(["--resume=true", f"--output_dir={run}"])
    assert cfg.online.enable and cfg.env.task == "reach" and not cfg.dataset.repo_id


def test_online_resume_reaches_the_same_weights_and_buffer(tmp_path):
    """Checkpoints fall due every 20 updates and are written at the next episode end (update 21, env step 50)."""
    full = tmp_path / "full"
    assert main([*FLAGS, f"--output_dir={full}", "--steps=60", "--save_freq=20"]) == 0
    saved = sorted(p.name for p in (full / "checkpoints").iterdir() if p.name != "last")
    assert saved == ["000021", "000046", "000060"]
    killed = tmp_path / "killed"
    (killed / "checkpoints").mkdir(parents=True)
    shutil.copytree(full / "checkpoints" / "000021", killed / "checkpoints" / "000021")
    (killed / "checkpoints" / "last").symlink_to("000021")
    shutil.copy(full / "online_log.csv", killed / "online_log.csv")  # later episodes: dropped on resume
    shutil.copy(full / "train_log.csv", killed / "train_log.csv")
    assert main(["--resume=true", f"--output_dir={killed}"]) == 0
    for part in sorted((full / "checkpoints" / "000060").rglob("*.safetensors")):
        relative = part.relative_to(full / "checkpoints" / "000060")
        a, b = load_file(str(part)), load_file(str(killed / "checkpoints" / "000060" / relative))
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{relative}: {key} differs after resume"
    assert episodes(killed) == episodes(full)


def test_offline_plus_online_seeds_the_buffer_from_a_dataset(tmp_path):
    """Expert demonstrations recorded with their rewards (``record_expert --rewards=true``) seed the buffer;
    the same recording without rewards is refused, naming the flag."""
    from lerobot.envs.configs import SO100EnvConfig
    from lerobot.envs.recording import record_expert_dataset

    env = SO100EnvConfig(task="reach", obs_type="state", episode_length=10)
    record_expert_dataset(env, "test/reach", tmp_path / "ds", 2, use_videos=False, rewards=True)
    record_expert_dataset(env, "test/plain", tmp_path / "plain", 1, use_videos=False)
    flags = [f for f in FLAGS if not f.startswith("--online.seed_steps")]
    with pytest.raises(ValueError, match="record_expert --rewards=true"):
        main([*flags, "--dataset.repo_id=test/plain", f"--dataset.root={tmp_path / 'plain'}",
              "--online.enable=true", f"--output_dir={tmp_path / 'refused'}", "--steps=1"])  # fmt: skip

    run = tmp_path / "run"
    assert main([*flags, "--online.seed_steps=0", "--dataset.repo_id=test/reach", f"--dataset.root={tmp_path / 'ds'}",
                 "--online.enable=true", f"--output_dir={run}", "--steps=10"]) == 0  # fmt: skip
    buffer = load_file(str(run / "checkpoints" / "last" / "training_state" / "replay_buffer.safetensors"))
    assert buffer["episode_index"].shape[0] == 20 + 10  # the dataset's frames, then the online ones
    assert buffer["episode_index"][20] == 2  # online episodes are numbered after the dataset's


def test_policy_whose_features_the_env_lacks(tmp_path):
    features = '{"observation.state": {"type": "STATE", "shape": [6]}, "observation.images.front": {"type": "VISUAL", "shape": [3, 64, 64]}}'
    flags = [*FLAGS, f"--output_dir={tmp_path / 'run'}", "--steps=1", f"--policy.input_features={features}",
             '--policy.output_features={"action": {"type": "ACTION", "shape": [6]}}']  # fmt: skip
    with pytest.raises(ValueError, match=r"observation\.images\.front.*obs_type=state"):
        main(flags)


def test_online_flags_need_an_env():
    with pytest.raises(ConfigError, match="--env.type"):
        parse_train_config(["--policy.type=tdmpc", "--online.enable=true"])
    with pytest.raises(ConfigError, match="learn online in a sim"):
        parse_train_config(["--policy.type=tdmpc"])
    with pytest.raises(ConfigError, match="gradient_accumulation_steps"):
        parse_train_config([*FLAGS, "--gradient_accumulation_steps=2"])


def test_purely_online_normalises_observations_with_the_seed_phase_statistics(tmp_path):
    """No dataset: with --policy.normalization_mapping asking for MEAN_STD, the observations' statistics are
    the replay buffer's after the random seed phase (30 steps), saved with the policy and kept on resume."""
    from lerobot.policies.tdmpc import TDMPCPolicy

    mapping = '{"VISUAL": "IDENTITY", "STATE": "MEAN_STD", "ENV": "MEAN_STD", "ACTION": "MIN_MAX"}'
    full = tmp_path / "full"
    flags = [*FLAGS, f"--policy.normalization_mapping={mapping}", "--save_freq=20"]
    assert main([*flags, f"--output_dir={full}", "--steps=60"]) == 0
    buffer = load_file(str(full / "checkpoints" / "last" / "training_state" / "replay_buffer.safetensors"))
    policy = TDMPCPolicy.from_pretrained(full / "checkpoints" / "last" / "pretrained_model")
    for key in ("observation.state", "observation.environment_state"):
        seed_phase = buffer[key][:31].double()  # 30 random steps + the final observation of the first episode
        stats = policy.normalize_inputs.feature_stats(key)
        torch.testing.assert_close(stats.mean.double(), seed_phase.mean(0), rtol=0, atol=1e-6)
        torch.testing.assert_close(
            stats.std.double(), seed_phase.std(0, unbiased=False).clamp_min(1e-3), rtol=0, atol=1e-6
        )
    assert policy.normalize_inputs.feature_stats("observation.environment_state").std.min() >= 1e-3
    killed = tmp_path / "killed"
    (killed / "checkpoints").mkdir(parents=True)
    shutil.copytree(full / "checkpoints" / "000021", killed / "checkpoints" / "000021")
    (killed / "checkpoints" / "last").symlink_to("000021")
    for name in ("online_log.csv", "train_log.csv"):
        shutil.copy(full / name, killed / name)
    assert main(["--resume=true", f"--output_dir={killed}"]) == 0
    a = load_file(str(full / "checkpoints" / "000060" / "pretrained_model" / "model.safetensors"))
    b = load_file(str(killed / "checkpoints" / "000060" / "pretrained_model" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
