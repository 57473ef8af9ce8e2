"""lerobot-train --policy.type=vqbet: the tokenizer phase, then the GPT phase, evaluation in a sim,
checkpoints and exact resume."""

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from tests.scripts.point_reach import record_point_dataset
from tests.scripts.test_train import run_then_resume_from_half

from lerobot.policies.vqbet.modeling_vqbet import VQBeTPolicy
from lerobot.scripts.train import main

TINY_FLAGS = {
    "n_obs_steps": 2,
    "n_action_pred_token": 2,
    "action_chunk_size": 3,
    "vqvae_n_embed": 4,
    "vqvae_embedding_dim": 8,
    "vqvae_enc_hidden_dim": 8,
    "gpt_block_size": 16,
    "gpt_input_dim": 16,
    "gpt_output_dim": 16,
    "gpt_n_layer": 1,
    "gpt_n_head": 2,
    "gpt_hidden_dim": 16,
    "scheduler_warmup_steps": 2,
    "device": "cpu",
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("point") / "ds"
    record_point_dataset(root, n_episodes=10)
    return root


def flags(dataset_root: Path, vq_steps: int, **extra) -> list[str]:
    common = {
        "policy.type": "vqbet",
        "dataset.repo_id": "test/point_reach",
        "dataset.root": dataset_root,
        "batch_size": 8,
        "num_workers": 0,
        "log_freq": 2,
        "seed": 5,
    }
    policy = {**TINY_FLAGS, "n_vqvae_training_steps": vq_steps, **extra}
    return [f"--{k}={v}" for k, v in common.items()] + [f"--policy.{k}={v}" for k, v in policy.items()]


def test_train_runs_both_phases_and_saves_a_trained_tokenizer(dataset_root, tmp_path):
    out = tmp_path / "run"
    evaluation = ["--env.type=test_point_reach", "--eval_freq=6", "--eval.n_episodes=2", "--eval.batch_size=2",
                  "--eval.max_videos=0"]  # fmt: skip
    assert (
        main([*flags(dataset_root, 3), f"--output_dir={out}", "--steps=6", "--save_freq=3", *evaluation]) == 0
    )
    first = VQBeTPolicy.from_pretrained(out / "checkpoints" / "000003" / "pretrained_model")
    last = VQBeTPolicy.from_pretrained(out)
    for policy in (first, last):
        assert bool(policy.vqbet.action_head.vqvae_model.discretized)
        assert int(policy.vqbet.action_head.vqvae_model.optimized_steps) == 3
    # the tokenizer is the same after phase 2; the GPT moved
    a, b = first.state_dict(), last.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if ".vqvae_model." in k)
    assert not torch.equal(a["vqbet.policy.transformer.wte.weight"], b["vqbet.policy.transformer.wte.weight"])
    groups = json.loads(
        (out / "checkpoints" / "last" / "training_state" / "optimizer_param_groups.json").read_text()
    )
    assert [g["initial_lr"] for g in groups] == [1e-4, 1e-3, 1e-4]  # the tokenizer has its own learning rate
    assert [g["weight_decay"] for g in groups] == [1e-6, 1e-4, 0.0]
    log = pd.read_csv(out / "train_log.csv")
    assert log["step"].tolist() == [2, 4, 6] and log["train_loss"].notna().all()
    assert log["success_rate"].iloc[-1] >= 0  # rolled out in the sim at the last step
    assert (out / "eval" / "eval_info_step_000006.json").is_file()
    obs = {
        "observation.state": torch.tensor([[0.1, -0.2]]),
        "observation.environment_state": torch.tensor([[0.5, 0.5]]),
    }
    assert last.select_action(obs)["action"].shape == (1, 2)


def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(dataset_root, tmp_path):
    """Resumed at step 4 of 8, in the tokenizer phase (5 steps): the resumed run switches to the GPT
    phase at the same step and ends with bit-identical checkpoints."""
    run_then_resume_from_half(flags(dataset_root, 5), tmp_path, 8)


def test_tiny_vqbet_learns_to_reach_the_point(dataset_root, tmp_path):
    """100 tokenizer steps and 200 GPT steps on 10 demos: the sampled rollouts reach the target
    (90% on this CPU; a policy that had not learnt the task stays near 0%)."""
    wider = {f"gpt_{k}": 64 for k in ("input_dim", "output_dim", "hidden_dim")}
    run = [*flags(dataset_root, 100, vqvae_n_embed=8, vqvae_embedding_dim=16, vqvae_enc_hidden_dim=64,
                  gpt_n_layer=2, scheduler_warmup_steps=20, optimizer_lr=1e-3, **wider),
           "--batch_size=32", "--seed=1", "--steps=300", "--log_freq=100", "--save_freq=0", f"--output_dir={tmp_path}",
           "--env.type=test_point_reach", "--eval_freq=300", "--eval.n_episodes=10", "--eval.batch_size=10",
           "--eval.max_videos=0"]  # fmt: skip
    assert main(run) == 0
    log = pd.read_csv(tmp_path / "train_log.csv")
    assert log["success_rate"].iloc[-1] >= 0.7, log


def test_two_processes_through_the_tokenizer_phase(dataset_root, tmp_path):
    """Under DDP the tokenizer phase leaves the GPT without gradients: the policy's
    ddp_find_unused_parameters makes DistributedDataParallel expect that (else step 2 fails)."""
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone", "-m",
           "lerobot.scripts.train", *flags(dataset_root, 2), f"--output_dir={out}", "--steps=3", "--save_freq=3"]  # fmt: skip
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    policy = VQBeTPolicy.from_pretrained(out)
    assert int(policy.vqbet.action_head.vqvae_model.optimized_steps) == 2
