"""lerobot-train: both flag spellings, a tiny ACT that learns, checkpoint layout, exact resume, DDP, loggers."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tests.scripts.point_reach import record_point_dataset

from lerobot.configs.parser import ConfigError
from lerobot.policies.act.modeling_act import ACTPolicy
from lerobot.scripts.train import main, train, train_policy
from lerobot.scripts.train_config import parse_train_config

TINY_ACT = {
    "chunk_size": 5,
    "n_action_steps": 5,
    "dim_model": 32,
    "n_heads": 2,
    "dim_feedforward": 64,
    "n_encoder_layers": 1,
    "n_vae_encoder_layers": 1,
    "latent_dim": 8,
    "pretrained_backbone_weights": None,
}
TINY_ACT_FLAGS = [f"--policy.{k}={v}" for k, v in TINY_ACT.items()]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("point") / "ds"
    record_point_dataset(root, n_episodes=10)
    return root


def base_flags(dataset_root: Path, output_dir: Path, steps: int, **extra) -> list[str]:
    flags = {
        "policy.type": "act",
        "policy.device": "cpu",
        "dataset.repo_id": "test/point_reach",
        "dataset.root": dataset_root,
        "output_dir": output_dir,
        "steps": steps,
        "batch_size": 8,
        "num_workers": 0,
        "log_freq": 5,
        "seed": 3,
        **extra,
    }
    return [f"--{k}={v}" for k, v in flags.items()] + TINY_ACT_FLAGS


# ---- flags ------------------------------------------------------------------------------------------
def test_guide_and_lerobot_spellings_parse_to_equal_configs(tmp_path):
    common = [
        "--dataset.repo_id=me/demo",
        f"--output_dir={tmp_path}",
        "--policy.chunk_size=20",
        "--policy.n_action_steps=8",
    ]
    guide = parse_train_config(
        common
        + [
            "--policy=act",
            "--training.num_steps=500",
            "--training.batch_size=4",
            "--training.learning_rate=3e-4",
            "--training.eval_freq=100",
            "--training.save_freq=250",
            "--training.gradient_accumulation_steps=2",
            "--training.use_amp=true",
            "--device=cpu",
        ]
    )
    lerobot = parse_train_config(
        common
        + [
            "--policy.type=act",
            "--steps=500",
            "--batch_size=4",
            "--optimizer.lr=3e-4",
            "--env_eval_freq=100",
            "--save_freq=250",
            "--gradient_accumulation_steps=2",
            "--policy.use_amp=true",
            "--policy.device=cpu",
        ]
    )
    assert guide == lerobot
    assert guide.to_dict() == lerobot.to_dict()
    assert (guide.steps, guide.batch_size, guide.optimizer.lr, guide.eval_freq) == (500, 4, 3e-4, 100)
    assert guide.policy.n_action_steps == 8 and guide.policy.use_amp and guide.device == "cpu"


def test_config_file_then_flags(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(
        json.dumps(
            {
                "policy": {"type": "act", "chunk_size": 10, "n_action_steps": 10},
                "dataset": {"repo_id": "a/b"},
                "steps": 7,
            }
        )
    )
    cfg = parse_train_config([f"--config_path={path}", "--steps=9", f"--output_dir={tmp_path / 'o'}"])
    assert (cfg.policy.chunk_size, cfg.steps, cfg.dataset.repo_id) == (10, 9, "a/b")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--policy=act", "--dataset.repo_id=a/b", "--stpes=3"], "Did you mean --steps"),
        (["--policy=act", "--dataset.repo_id=a/b", "--training.num_step=3"], "Did you mean"),
        (
            ["--policy=act", "--dataset.repo_id=a/b", "--policy.chunk_sze=3"],
            "Did you mean --policy.chunk_size",
        ),
        (["--policy=actt", "--dataset.repo_id=a/b"], "Did you mean 'act'"),
        (["--dataset.repo_id=a/b"], "--policy.type=act"),
        (["--policy=act"], "--dataset.repo_id"),
        (["--policy=act", "--dataset.repo_id=a/b", "--resume=true"], "--output_dir"),
        (
            ["--policy=act", "--dataset.repo_id=a/b", "--dataset.first_frames_repeat=0"],
            "first_frames_repeat >= 1",
        ),
    ],
)
def test_bad_flags_fail_with_a_suggestion(flags, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("'", ".")):
        parse_train_config(flags)


# ---- training -----------------------------------------------------------------------------------------
def test_tiny_act_overfits_and_writes_checkpoints_logs_and_plots(dataset_root, tmp_path):
    out = tmp_path / "run"
    assert (
        main(
            base_flags(
                dataset_root, out, 200, save_freq=100, log_freq=25, val_freq=100, **{"optimizer.lr": 1e-3}
            )
        )
        == 0
    )

    import pandas as pd

    log = pd.read_csv(out / "train_log.csv")
    assert list(log.columns[:5]) == ["step", "train_loss", "val_loss", "success_rate", "learning_rate"]
    assert (log["loss"] == log["train_loss"]).all()  # the guide's short name (G42 plots logs["loss"])
    assert log["step"].tolist() == list(range(25, 201, 25))
    first, last = log["train_loss"].iloc[0], log["train_loss"].iloc[-1]
    assert last < first / 10, f"loss only went from {first} to {last}"
    assert log["val_loss"].notna().sum() == 2  # steps 100 and 200 (one val episode held out of 10)
    assert log["success_rate"].isna().all()  # no --env given
    assert (log["learning_rate"] == 1e-3).all()

    ckpts = out / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["000100", "000200", "last"]
    assert (ckpts / "last").is_symlink() and os.readlink(ckpts / "last") == "000200"
    pretrained = ckpts / "last" / "pretrained_model"
    assert {"config.json", "model.safetensors", "train_config.json", "policy_preprocessor.json",
            "policy_postprocessor.json"} <= {p.name for p in pretrained.iterdir()}  # fmt: skip
    state = ckpts / "last" / "training_state"
    assert {p.name for p in state.iterdir()} == {
        "optimizer_state.safetensors",
        "optimizer_param_groups.json",
        "scheduler_state.json",
        "rng_state.safetensors",
        "training_step.json",
    }
    assert json.loads((state / "training_step.json").read_text())["step"] == 200
    assert "state/0/exp_avg" in load_file(str(state / "optimizer_state.safetensors"))
    assert not list(ckpts.glob(".tmp*"))
    assert (out / "train_curves.png").stat().st_size > 0
    assert list((out / "tensorboard").iterdir())

    # The saved policy acts like the trained one.
    policy = ACTPolicy.from_pretrained(pretrained)
    trained = ACTPolicy.from_pretrained(ckpts / "000200" / "pretrained_model")
    obs = {
        "observation.state": torch.tensor([[0.1, -0.2]]),
        "observation.environment_state": torch.tensor([[0.5, 0.5]]),
    }
    torch.testing.assert_close(
        policy.predict_action_chunk(obs), trained.predict_action_chunk(obs), rtol=0, atol=0
    )


def run_then_resume_from_half(flags: list[str], tmp_path: Path, steps: int) -> tuple[Path, list[Path]]:
    """Train ``steps`` saving every ``steps // 2``; copy the run as it was at the half (as if killed there)
    and resume the copy twice: by --output_dir and by the checkpoint's train_config.json."""
    full = tmp_path / "full"
    main([*flags, f"--output_dir={full}", f"--steps={steps}", f"--save_freq={steps // 2}"])
    half = f"{steps // 2:06d}"
    resumed = []
    for how in ("output_dir", "config_path"):
        killed = tmp_path / f"killed_{how}"
        (killed / "checkpoints").mkdir(parents=True)
        shutil.copytree(full / "checkpoints" / half, killed / "checkpoints" / half)
        (killed / "checkpoints" / "last").symlink_to(half)
        shutil.copy(full / "train_log.csv", killed / "train_log.csv")  # rows past the half: dropped on resume
        if how == "output_dir":
            main(["--resume=true", f"--output_dir={killed}"])
        else:  # LeRobot's spelling; the checkpoint's train_config.json names the run
            config = killed / "checkpoints" / half / "pretrained_model" / "train_config.json"
            main(["--resume=true", f"--config_path={config}", f"--output_dir={killed}"])
        resumed.append(killed)
    final = f"{steps:06d}"
    for killed in resumed:
        for part in sorted((full / "checkpoints" / final).rglob("*.safetensors")):
            relative = part.relative_to(full / "checkpoints" / final)
            a, b = load_file(str(part)), load_file(str(killed / "checkpoints" / final / relative))
            assert a.keys() == b.keys()
            for key in a:
                assert torch.equal(a[key], b[key]), f"{relative}: {key} differs after resume"
    return full, resumed


def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(dataset_root, tmp_path):
    """ACT (dropout, VAE noise) with grad accumulation and a warm-up cosine schedule: bit-identical."""
    extra = {
        "gradient_accumulation_steps": 2,
        "scheduler.type": "cosine",
        "scheduler.num_warmup_steps": 4,
        "optimizer.lr": 1e-3,
    }
    flags = [f for f in base_flags(dataset_root, tmp_path / "unused", 20, **extra) if "output_dir" not in f]
    full, resumed = run_then_resume_from_half(flags, tmp_path, 20)
    import pandas as pd

    timing = ["samples_per_s", "inference_ms"]  # wall-clock times are the columns that may differ
    full_log = pd.read_csv(full / "train_log.csv").drop(columns=timing)
    assert full_log["step"].tolist() == [5, 10, 15, 20]
    for killed in resumed:
        pd.testing.assert_frame_equal(pd.read_csv(killed / "train_log.csv").drop(columns=timing), full_log)
        sched = json.loads(
            (killed / "checkpoints" / "last" / "training_state" / "scheduler_state.json").read_text()
        )
        assert sched["last_epoch"] == 20


def test_resume_with_diffusion_ema(dataset_root, tmp_path):
    """Diffusion with EMA: the live weights and the average both continue exactly."""
    flags = [
        f
        for f in base_flags(dataset_root, tmp_path / "unused", 8)
        if not f.startswith(("--policy.", "--output_dir"))
    ]
    flags += ["--policy.type=diffusion", "--policy.device=cpu", "--policy.horizon=8", "--policy.n_action_steps=4",
              "--policy.down_dims=[16, 32]", "--policy.use_ema=true", "--policy.pretrained_backbone_weights=None"]  # fmt: skip
    full, _ = run_then_resume_from_half(flags, tmp_path, 8)
    state = full / "checkpoints" / "last" / "training_state"
    assert (state / "ema_state.safetensors").is_file() and (state / "live_model.safetensors").is_file()


def test_fine_tune_from_policy_path(dataset_root, tmp_path):
    from tests.scripts.point_reach import tiny_act_config

    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    stats = LeRobotDataset("test/point_reach", root=dataset_root).meta.stats
    start = ACTPolicy(tiny_act_config(), dataset_stats=stats).save_pretrained(tmp_path / "start")
    flags = [f for f in base_flags(dataset_root, tmp_path / "run", 2) if not f.startswith("--policy.")]
    assert main([*flags, f"--policy.path={start}", "--policy.device=cpu", "--policy.n_action_steps=3"]) == 0
    saved = json.loads(
        (tmp_path / "run" / "checkpoints" / "last" / "pretrained_model" / "config.json").read_text()
    )
    assert (saved["dim_model"], saved["n_action_steps"], saved["pretrained_path"]) == (32, 3, str(start))
    with pytest.raises(ConfigError, match="exclude each other"):
        parse_train_config([*flags, f"--policy.path={start}", "--policy.type=act"])


def test_existing_output_dir_needs_resume(dataset_root, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "something").write_text("x")
    with pytest.raises(FileExistsError, match="--resume=true"):
        main(base_flags(dataset_root, tmp_path / "run", 2))


def test_policy_whose_features_the_dataset_lacks(dataset_root, tmp_path):
    features = json.dumps(
        {
            "observation.state": {"type": "STATE", "shape": [2]},
            "observation.images.top": {"type": "VISUAL", "shape": [3, 8, 8]},
        }
    )
    flags = base_flags(dataset_root, tmp_path / "run", 2) + [
        f"--policy.input_features={features}",
        '--policy.output_features={"action": {"type": "ACTION", "shape": [2]}}',
    ]
    with pytest.raises(ValueError, match=r"observation\.images\.top"):
        main(flags)


def test_python_api_with_eval_in_sim_and_wandb_offline(dataset_root, tmp_path):
    pytest.importorskip("wandb")
    result = train(
        policy_name="act",
        dataset_repo_id="test/point_reach",
        output_dir=tmp_path / "api",
        training_steps=6,
        batch_size=4,
        learning_rate=1e-3,
        eval_freq=3,
        save_freq=0,
        num_workers=0,
        device="cpu",
        seed=0,
        log_freq=3,
        policy=TINY_ACT,
        env={"type": "test_point_reach"},
        eval={"n_episodes": 2, "batch_size": 2, "max_videos": 1},
        wandb={"enable": True, "mode": "offline", "project": "tests"},
        **{"dataset.root": str(dataset_root)},
    )
    assert isinstance(result.policy, ACTPolicy)
    import pandas as pd

    log = pd.read_csv(result.log_path)
    assert log["step"].tolist() == [3, 6] and log["success_rate"].between(0, 1).all()
    assert (tmp_path / "api" / "eval" / "eval_info_step_000003.json").is_file()
    assert list((tmp_path / "api" / "eval" / "videos_step_000006").glob("*.mp4"))
    assert (tmp_path / "api" / "wandb").is_dir()
    assert (
        result.checkpoint_dir / "pretrained_model"
        == tmp_path / "api" / "checkpoints" / "last" / "pretrained_model"
    )


def test_train_policy_takes_a_dataset_object(dataset_root, tmp_path, monkeypatch, caplog):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    monkeypatch.chdir(tmp_path)  # the default output_dir is relative: outputs/train/...
    ds = LeRobotDataset("test/point_reach", root=dataset_root)
    policy = train_policy(policy_type="act", dataset=ds, training_steps=3, batch_size=4, num_workers=0, device="cpu",
                          policy=TINY_ACT, log_freq=1, learning_rate=2e-4)  # fmt: skip
    assert isinstance(policy, ACTPolicy)
    (log,) = (tmp_path / "outputs" / "train").glob("*/*_act/train_log.csv")
    run = log.parent
    assert f"the run (final checkpoint, train_log.csv) goes to {run.relative_to(tmp_path)}" in caplog.text
    # the caller holds the policy: on disk only the final checkpoint (no per-save_freq copies)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["000003", "last"]
    import pandas as pd

    logged = pd.read_csv(log)
    assert logged["learning_rate"].iloc[0] == pytest.approx(2e-4)  # the guide's keyword name
    assert (logged["inference_ms"] > 0).all()  # one select_action timed at every logging step


def test_wandb_missing_says_how_to_install(dataset_root, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    with pytest.raises(ImportError, match="pip install wandb"):
        main(base_flags(dataset_root, tmp_path / "run", 2) + ["--wandb.enable=true"])


LAUNCHERS = {
    "torchrun": ["-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone"],
    # --multi_gpu picks accelerate's torchrun-style launcher; it works on CPU too (with --cpu,
    # accelerate would start a single process unless MPI is installed).
    "accelerate": ["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes=2", "--num_machines=1",
                   "--mixed_precision=no", "--dynamo_backend=no", "--main_process_port=0"],
}  # fmt: skip


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_two_processes_on_cpu(dataset_root, tmp_path, launcher):
    """DistributedDataParallel with gloo: both processes step in lockstep, rank 0 writes the checkpoint."""
    out = tmp_path / "ddp"
    cmd = [sys.executable, *LAUNCHERS[launcher],
           "-m", "lerobot.scripts.train", *base_flags(dataset_root, out, 4, save_freq=4, log_freq=2)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    state = out / "checkpoints" / "last" / "training_state"
    assert json.loads((state / "training_step.json").read_text())["num_processes"] == 2
    assert (state / "rng_state.safetensors").is_file() and (state / "rng_state_rank_1.safetensors").is_file()
    assert len(list(out.glob("train_log.csv"))) == 1


def test_console_script_prints_one_error_line_not_a_traceback(tmp_path):
    """Run as a console script, bad input ends in ``lerobot-train: error: ...`` and exit status 1."""
    script = Path(sys.executable).with_name("lerobot-train")
    proc = subprocess.run([str(script), "--stpes=3"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "lerobot-train: error: Unknown flag --stpes" in proc.stderr and "Traceback" not in proc.stderr
    env = {**os.environ, "LEROBOT_TRACEBACK": "1"}
    proc = subprocess.run([str(script), "--stpes=3"], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 1 and "Traceback" in proc.stderr


def test_samples_start_at_least_drop_n_last_frames_before_each_episode_end(dataset_root):
    """LeRobot's episode-aware sampling for Diffusion: no sample starts in an episode's last n frames."""
    import numpy as np

    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from lerobot.scripts.train_utils import ResumableShuffleSampler

    ds = LeRobotDataset("test/point_reach", root=dataset_root)
    starts = ds.sample_starts(7)
    first, last = {}, {}  # episode -> its first / last dataset position
    for pos in range(len(ds)):
        first.setdefault(int(ds[pos]["episode_index"]), pos)
        last[int(ds[pos]["episode_index"])] = pos
    episode = [int(ds[p]["episode_index"]) for p in range(len(ds))]
    expected = [p for p in range(len(ds)) if p <= max(first[episode[p]], last[episode[p]] - 7)]
    assert len(expected) < len(ds) and set(first.values()) <= set(expected)  # short episodes keep frame 0
    assert starts.tolist() == expected and len(ds.sample_starts(0)) == len(ds)
    stream = iter(ResumableShuffleSampler(starts, seed=3))
    drawn = [next(stream) for _ in range(len(starts))]
    assert sorted(drawn) == expected  # one epoch: each allowed start once
    resumed = iter(ResumableShuffleSampler(starts, seed=3, start=5))
    assert [next(resumed) for _ in range(3)] == drawn[5:8]
    assert np.isin(drawn, starts).all()


def test_first_frames_repeat_samples_each_episode_start_more_often(dataset_root):
    """--dataset.first_frames=2 --dataset.first_frames_repeat=3: an episode's first 2 frames are drawn 3x per pass."""
    from collections import Counter

    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    ds = LeRobotDataset("test/point_reach", root=dataset_root)
    counts = Counter(ds.sample_starts(7, first_frames=2, first_frames_repeat=3).tolist())
    frame_of = {pos: int(ds[pos]["frame_index"]) for pos in range(len(ds))}
    assert set(counts) == set(ds.sample_starts(7).tolist())
    assert all(n == (3 if frame_of[pos] < 2 else 1) for pos, n in counts.items())
    assert (
        sorted(ds.sample_starts(7, first_frames=2, first_frames_repeat=1).tolist())
        == ds.sample_starts(7).tolist()
    )


def test_dataset_metadata_is_read_once_per_training_start(dataset_root, tmp_path, monkeypatch):
    """The metadata loaded to choose episodes and build the policy is the one the datasets use."""
    from lerobot.datasets.metadata import LeRobotDatasetMetadata

    loads = []
    real_load = LeRobotDatasetMetadata.load
    monkeypatch.setattr(
        LeRobotDatasetMetadata, "load", lambda self: loads.append(self.root) or real_load(self)
    )
    main(base_flags(dataset_root, tmp_path / "run", 2, **{"dataset.val_split": 0.2, "val_freq": 1}))
    assert loads == [dataset_root]
