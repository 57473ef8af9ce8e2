"""LoRA fine-tuning of a tiny SmolVLA through lerobot-train's --peft.* flags: what trains, what the
checkpoint holds (folded weights + peft's adapter files), reloading, exact resume; bf16 autocast."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tests.policies.smolvla.conftest import IMAGE_HW, TASKS, tiny_config, write_language_dataset
from tests.policies.smolvla.test_smolvla_train import TEXT, VISION, _flags
from tests.scripts.test_train import run_then_resume_from_half

from lerobot.policies.peft_adapters import PeftConfig, wrap_with_peft
from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy
from lerobot.scripts.train import run_training
from lerobot.scripts.train_config import parse_train_config

pytest.importorskip("peft")

Q_PROJ = "model.vlm_with_expert.vlm.model.text_model.layers.0.self_attn.q_proj.weight"
EXPERT_Q = "model.vlm_with_expert.lm_expert.layers.0.self_attn.q_proj.weight"
OUT_PROJ = "model.action_out_proj.weight"


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lang") / "ds"
    write_language_dataset(root)
    return root


@pytest.fixture(scope="module")
def base(tiny_backbone: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return SmolVLAPolicy(tiny_config(tiny_backbone)).save_pretrained(tmp_path_factory.mktemp("base") / "ckpt")


def _obs() -> dict:
    return {
        "observation.state": torch.zeros(1, 3),
        "observation.images.front": torch.full((1, 3, *IMAGE_HW), 0.5),
        "task": TASKS[0],
    }


def test_lora_trains_only_adapters_and_saves_a_checkpoint_that_loads_without_peft(
    base: Path, dataset_root: Path, tmp_path: Path
) -> None:
    flags = [*_flags(dataset_root, tmp_path / "run", 3), f"--policy.path={base}"]
    result = run_training(
        parse_train_config([*flags, "--peft.method_type=LORA", "--peft.r=4", "--peft.lora_alpha=8"])
    )
    policy = result.policy
    trainable = {n for n, p in policy.named_parameters() if p.requires_grad}
    assert trainable and all(
        ".lora_" in n or n.startswith("model.action") or "state_proj" in n for n in trainable
    )
    assert any("lm_expert" in n and ".lora_" in n for n in trainable)

    ckpt = result.checkpoint_dir / "pretrained_model"
    start, tuned = load_file(str(base / "model.safetensors")), load_file(str(ckpt / "model.safetensors"))
    assert tuned.keys() == start.keys()  # the policy's own names: no base_layer / lora_ keys
    assert torch.equal(tuned[VISION], start[VISION]) and torch.equal(tuned[TEXT], start[TEXT])  # frozen
    for key in (Q_PROJ, EXPERT_Q, OUT_PROJ):  # adapters folded in, full-training module trained
        assert not torch.equal(tuned[key], start[key]), key
    assert json.loads((ckpt / "config.json").read_text())["use_peft"] is False
    adapter_cfg = json.loads((ckpt / "adapter_config.json").read_text())
    assert (adapter_cfg["r"], adapter_cfg["lora_alpha"], adapter_cfg["base_model_name_or_path"]) == (
        4,
        8,
        str(base),
    )
    assert adapter_cfg["auto_mapping"] == {  # the layout LeRobot 0.6.1's PEFT checkpoints have
        "base_model_class": "SmolVLAPolicy",
        "parent_library": "lerobot.policies.smolvla.modeling_smolvla",
    }
    adapters = load_file(str(ckpt / "adapter_model.safetensors"))
    assert f"base_model.model.{Q_PROJ[: -len('.weight')]}.lora_A.weight" in adapters

    noise = torch.randn(1, 4, 4)
    policy.eval()
    live = policy.predict_action_chunk(_obs(), noise=noise)
    first, second = SmolVLAPolicy.from_pretrained(ckpt), SmolVLAPolicy.from_pretrained(ckpt)
    reloaded = first.predict_action_chunk(_obs(), noise=noise)
    torch.testing.assert_close(second.predict_action_chunk(_obs(), noise=noise), reloaded, rtol=0, atol=0)
    torch.testing.assert_close(reloaded, live, rtol=1e-5, atol=1e-5)  # folding rounds, nothing more


def test_lora_resume_is_exact(base: Path, dataset_root: Path, tmp_path: Path) -> None:
    flags = [
        f
        for f in _flags(dataset_root, tmp_path / "unused", 4)
        if not f.startswith(("--output_dir", "--steps", "--save_freq"))
    ]
    flags += [f"--policy.path={base}", "--peft.method_type=LORA", "--peft.r=4"]
    full, _ = run_then_resume_from_half(flags, tmp_path, 4)  # every .safetensors bit-equal, adapters included
    assert (full / "checkpoints" / "last" / "pretrained_model" / "adapter_model.safetensors").is_file()


def test_target_modules_by_name_on_any_policy_and_clear_errors(tiny_backbone: Path) -> None:
    policy = SmolVLAPolicy(tiny_config(tiny_backbone))
    wrap_with_peft(policy, PeftConfig(r=2, target_modules=["up_proj"], full_training_modules=[]))
    trainable = [n for n, p in policy.named_parameters() if p.requires_grad]
    assert trainable and all("up_proj.lora_" in n for n in trainable)
    with pytest.raises(ValueError, match="matches no layer"):
        wrap_with_peft(SmolVLAPolicy(tiny_config(tiny_backbone)), PeftConfig(target_modules=["nope_proj"]))
    with pytest.raises(ValueError, match="only LORA"):
        PeftConfig(method_type="IA3").validate()

    from tests.scripts.point_reach import tiny_act_config

    from lerobot.policies.act.modeling_act import ACTPolicy

    act = ACTPolicy(tiny_act_config())
    with pytest.raises(ValueError, match="no default LoRA targets.*--peft.target_modules"):
        wrap_with_peft(act, PeftConfig())
    wrap_with_peft(
        act, PeftConfig(r=2, target_modules=["linear1", "linear2"], full_training_modules=["action_head"])
    )
    assert {n for n, p in act.named_parameters() if p.requires_grad} >= {"model.action_head.weight"}


def test_bf16_autocast_trains_smolvla(tiny_backbone: Path) -> None:
    """The loop's autocast (--policy.use_amp on CUDA) on the CPU: finite loss and gradients in bf16."""
    torch.manual_seed(0)
    policy = SmolVLAPolicy(tiny_config(tiny_backbone, train_expert_only=False))
    policy.train()
    batch = {
        "observation.state": torch.randn(2, 3),
        "observation.images.front": torch.rand(2, 3, *IMAGE_HW),
        "action": torch.randn(2, 4, 2),
        "task": TASKS,
    }
    grads, losses = [], []
    for bf16 in (False, True):
        policy.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = policy(batch, noise=torch.ones(2, 4, 4), time=torch.tensor([0.3, 0.6]))["loss"]
        loss.backward()
        losses.append(loss.item())
        grads.append({n: p.grad for n, p in policy.named_parameters() if p.grad is not None})
    assert grads[1].keys() == grads[0].keys() and any("text_model" in n for n in grads[1])
    assert all(torch.isfinite(g).all() for g in grads[1].values())
    assert losses[1] == pytest.approx(losses[0], rel=0.05)  # bf16 rounding only


def test_fsdp_two_processes_on_cpu(base: Path, dataset_root: Path, tmp_path: Path) -> None:
    """--fsdp=true under torchrun (gloo, 2 CPU processes): the layers are sharded, and the checkpoint holds
    the gathered full weights and optimizer state, in the same files and keys as a one-process run."""
    import os
    import subprocess
    import sys

    out = tmp_path / "fsdp"
    flags = [
        *_flags(dataset_root, out, 2),
        f"--policy.path={base}",
        "--policy.train_expert_only=false",
        "--fsdp=true",
    ]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
           "-m", "lerobot.scripts.train", *flags]  # fmt: skip
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ckpt = out / "checkpoints" / "last"
    start, tuned = (
        load_file(str(base / "model.safetensors")),
        load_file(str(ckpt / "pretrained_model" / "model.safetensors")),
    )
    assert tuned.keys() == start.keys() and all(tuned[k].shape == start[k].shape for k in start)
    assert torch.equal(tuned[VISION], start[VISION]) and not torch.equal(tuned[TEXT], start[TEXT])
    state = ckpt / "training_state"
    assert json.loads((state / "training_step.json").read_text())["num_processes"] == 2
    groups = json.loads((state / "optimizer_param_groups.json").read_text())
    trainable = SmolVLAPolicy.from_pretrained(ckpt / "pretrained_model", train_expert_only=False)
    n_trainable = sum(p.requires_grad for p in trainable.parameters())
    assert sum(len(g["params"]) for g in groups) == n_trainable
    moments = load_file(str(state / "optimizer_state.safetensors"))
    assert (
        moments["state/0/exp_avg"].shape == next(p for p in trainable.parameters() if p.requires_grad).shape
    )
