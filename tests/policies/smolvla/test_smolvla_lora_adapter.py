"""LoRA checkpoints that hold only adapters (LeRobot 0.6.1's PEFT layout): loading, saving, fine-tuning on.

tests/fixtures/lerobot061_smolvla_lora is a folder LeRobot 0.6.1 wrote (``lerobot-train
--policy.path=<the shared tiny SmolVLA> --peft.method_type=LORA --peft.r=4``, 2 steps; see
benchmarks/smolvla_reference_adapter.py): adapter_config.json + adapter_model.safetensors (26 LoRA
tensors), config.json with use_peft=true, the processor files with the dataset's statistics, no
model.safetensors. Its base is ../shared/fixtures/wave2/peer_smolvla_checkpoint, named by the absolute
path it had when the reference trained. ``.expected.json`` holds what the reference computed on it from
the shared fixture's inputs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tests.conftest import SHARED_FIXTURES, TESTS_DIR
from tests.policies.conftest import make_stats
from tests.policies.smolvla.conftest import (
    IMAGE_HW,
    TASKS,
    expected_train_batch,
    tiny_config,
    write_language_dataset,
)
from tests.policies.smolvla.test_smolvla_train import _flags
from tests.scripts.test_train import run_then_resume_from_half

from lerobot.policies.config import CheckpointError, PreTrainedConfig
from lerobot.policies.factory import make_policy
from lerobot.policies.peft_adapters import PeftConfig, is_wrapped, wrap_with_peft
from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy
from lerobot.scripts.train import run_training
from lerobot.scripts.train_config import parse_train_config

pytest.importorskip("peft")

ADAPTER = TESTS_DIR / "fixtures" / "lerobot061_smolvla_lora"
BASE = SHARED_FIXTURES / "wave2" / "peer_smolvla_checkpoint"
needs_base = pytest.mark.skipif(
    not BASE.is_dir(),
    reason=f"the adapter's base checkpoint lives in ../shared ({BASE}), absent in this clone",
)
ATOL = 1e-4


def _name_base(adapter: Path, name: str) -> None:
    """Point the adapter folder at its base, as the reference names it (both files)."""
    for file, key in (("adapter_config.json", "base_model_name_or_path"), ("config.json", "pretrained_path")):
        config = json.loads((adapter / file).read_text())
        config[key] = name
        (adapter / file).write_text(json.dumps(config, indent=2))


@pytest.fixture
def reference_adapter(tmp_path: Path) -> Path:
    """The reference's folder with its base at an absolute path on this machine, as after its training run."""
    base = shutil.copytree(BASE, tmp_path / "base")
    adapter = shutil.copytree(ADAPTER, tmp_path / "adapter")
    _name_base(adapter, str(base))
    return adapter


def _reference_inputs() -> dict:
    return json.loads((BASE.parent / f"{BASE.name}.expected.json").read_text())["inputs"]


def _acts_as_the_reference(policy: SmolVLAPolicy) -> None:
    inputs = _reference_inputs()
    expected = json.loads(ADAPTER.with_name(f"{ADAPTER.name}.expected.json").read_text())["outputs"]
    obs = {**{k: torch.tensor(v) for k, v in inputs["observation"].items()}, "task": inputs["task"]}
    noise = torch.tensor(inputs["noise"])
    chunk = policy.predict_action_chunk(obs, noise=noise)
    torch.testing.assert_close(chunk, torch.tensor(expected["chunk"]), atol=ATOL, rtol=0)
    policy.reset()
    actions = torch.stack([policy.select_action(obs, noise=noise).action for _ in range(3)])
    torch.testing.assert_close(actions, torch.tensor(expected["select"]), atol=ATOL, rtol=0)
    train = inputs["train_batch"]
    batch = expected_train_batch(train)
    policy.train()
    with torch.no_grad():
        loss = policy.forward(batch, noise=torch.tensor(train["noise"]), time=torch.tensor(train["time"]))[
            "loss"
        ]
    assert loss.item() == pytest.approx(expected["loss"], abs=ATOL)


@needs_base
def test_lerobot_adapter_only_folder_acts_as_lerobot_does(reference_adapter: Path) -> None:
    assert not (reference_adapter / "model.safetensors").exists()
    policy = SmolVLAPolicy.from_pretrained(reference_adapter, device="cpu")
    assert is_wrapped(policy)
    trainable = {n for n, p in policy.named_parameters() if p.requires_grad}  # fine-tuning continues these
    assert len(trainable) == 26 and all(".lora_" in n for n in trainable)
    _acts_as_the_reference(policy)

    # --policy.path in lerobot-eval / lerobot-train: the folder's config, then make_policy
    config = PreTrainedConfig.from_pretrained(reference_adapter, device="cpu")
    config.pretrained_path = str(reference_adapter)
    _acts_as_the_reference(make_policy(config))


@needs_base
def test_where_the_base_may_be(reference_adapter: Path, tmp_path: Path, monkeypatch) -> None:
    base = tmp_path / "base"
    inside = shutil.move(base, reference_adapter / "base")  # a folder inside the checkpoint, named relatively
    _name_base(reference_adapter, "base")
    assert is_wrapped(SmolVLAPolicy.from_pretrained(reference_adapter, device="cpu"))

    _name_base(reference_adapter, str(tmp_path / "gone"))
    with pytest.raises(
        FileNotFoundError, match=r"base checkpoint .*gone.* not there.*base_model_name_or_path"
    ):
        SmolVLAPolicy.from_pretrained(reference_adapter)
    # ... or name it yourself
    assert is_wrapped(SmolVLAPolicy.from_pretrained(reference_adapter, device="cpu", base_model=inside))

    _name_base(reference_adapter, "../base")
    with pytest.raises(CheckpointError, match="not followed"):
        SmolVLAPolicy.from_pretrained(reference_adapter)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _name_base(reference_adapter, "nobody/no_such_base")
    with pytest.raises(FileNotFoundError, match=r"nobody/no_such_base.*not available.*hf download"):
        SmolVLAPolicy.from_pretrained(reference_adapter)


def test_a_downloaded_adapter_may_not_name_a_local_base(tmp_path: Path) -> None:
    from lerobot.policies.pretrained import _adapter_base

    (tmp_path / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "base_model_name_or_path": "/etc"})
    )
    with pytest.raises(CheckpointError, match="downloaded.*not followed"):
        _adapter_base(tmp_path, local=False, base_model=None, local_files_only=True, hub={})


def _obs() -> dict:
    return {
        "observation.state": torch.full((1, 3), 0.3),
        "observation.images.front": torch.full((1, 3, *IMAGE_HW), 0.5),
        "task": TASKS[0],
    }


def test_our_adapter_only_save_round_trips(tiny_backbone: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = tiny_config(tiny_backbone)
    stats = make_stats({**config.input_features, **config.output_features})
    base = SmolVLAPolicy(config, dataset_stats=stats).save_pretrained(tmp_path / "base")
    policy = SmolVLAPolicy.from_pretrained(base)
    wrap_with_peft(policy, PeftConfig(r=2, lora_alpha=4))
    with torch.no_grad():  # as after training: every adapter and fully trained module moved
        for p in policy.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    noise = torch.randn(1, 4, 4)
    live = policy.predict_action_chunk(_obs(), noise=noise)

    folder = policy.save_pretrained(tmp_path / "adapter", adapter_only=True)
    assert not (folder / "model.safetensors").exists()
    config = json.loads((folder / "config.json").read_text())
    assert (config["use_peft"], config["pretrained_path"]) == (True, str(base))
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == str(base)
    assert policy.config.use_peft is False  # the live config is left as it was

    loaded = SmolVLAPolicy.from_pretrained(folder)
    torch.testing.assert_close(loaded.predict_action_chunk(_obs(), noise=noise), live, rtol=0, atol=1e-6)
    assert {n for n, p in loaded.named_parameters() if p.requires_grad} == {
        n for n, p in policy.named_parameters() if p.requires_grad
    }
    # saved whole again, it loads without peft and says so to LeRobot (use_peft=false)
    merged = loaded.save_pretrained(tmp_path / "merged")
    assert json.loads((merged / "config.json").read_text())["use_peft"] is False
    torch.testing.assert_close(
        SmolVLAPolicy.from_pretrained(merged).predict_action_chunk(_obs(), noise=noise),
        live,
        rtol=0,
        atol=1e-5,
    )
    with pytest.raises(ValueError, match="has none"):
        SmolVLAPolicy.from_pretrained(merged).save_pretrained(tmp_path / "x", adapter_only=True)
    # the folded checkpoint's own adapter files, on the base named by hand: the adapters again
    on_base = SmolVLAPolicy.from_pretrained(merged, base_model=base)
    assert is_wrapped(on_base)
    torch.testing.assert_close(on_base.predict_action_chunk(_obs(), noise=noise), live, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="holds no adapter_config.json"):
        SmolVLAPolicy.from_pretrained(base, base_model=base)


def test_lerobot_train_continues_an_adapter_checkpoint_and_resumes_exactly(
    tiny_backbone: Path, tmp_path: Path
) -> None:
    """--peft.save_adapter_only writes LeRobot's layout; --policy.path=<it> trains its adapters on (base
    frozen, the new checkpoint naming the same base); --peft.* with it is refused; resume is bit-exact."""
    dataset_root = tmp_path / "ds"
    write_language_dataset(dataset_root)
    torch.manual_seed(0)
    base = SmolVLAPolicy(tiny_config(tiny_backbone)).save_pretrained(tmp_path / "base")
    peft = ["--peft.method_type=LORA", "--peft.r=4", "--peft.save_adapter_only=true"]
    flags = [*_flags(dataset_root, tmp_path / "first", 1), f"--policy.path={base}", *peft]
    first = run_training(parse_train_config(flags)).checkpoint_dir / "pretrained_model"
    assert not (first / "model.safetensors").exists() and (first / "adapter_model.safetensors").is_file()

    with pytest.raises(ValueError, match="holds LoRA adapters.*drop the --peft"):
        run_training(
            parse_train_config(
                [*_flags(dataset_root, tmp_path / "twice", 1), f"--policy.path={first}", "--peft.r=4"]
            )
        )
    skip = ("--output_dir", "--steps", "--save_freq")
    flags = [f for f in _flags(dataset_root, tmp_path / "unused", 2) if not f.startswith(skip)]
    full, _ = run_then_resume_from_half([*flags, f"--policy.path={first}"], tmp_path, 2)
    second = full / "checkpoints" / "last" / "pretrained_model"
    assert json.loads((second / "adapter_config.json").read_text())["base_model_name_or_path"] == str(base)
    start, tuned = load_file(str(base / "model.safetensors")), load_file(str(second / "model.safetensors"))
    before, after = (
        load_file(str(first / "adapter_model.safetensors")),
        load_file(str(second / "adapter_model.safetensors")),
    )
    assert before.keys() == after.keys() and any(not torch.equal(before[k], after[k]) for k in before)
    frozen = "model.vlm_with_expert.vlm.model.text_model.layers.0.mlp.up_proj.weight"
    assert torch.equal(tuned[frozen], start[frozen])
