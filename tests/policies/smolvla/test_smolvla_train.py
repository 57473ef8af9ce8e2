"""lerobot-train with SmolVLA at a tiny size on a local dataset with task strings: from --policy.type
(the backbone folder given by --policy.vlm_model_name), fine-tuning from --policy.path, the
freezing options, and a checkpoint that reloads with identical actions."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tests.policies.smolvla.conftest import IMAGE_HW, TASKS, write_language_dataset

from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy
from lerobot.scripts.train import main

VISION = "model.vlm_with_expert.vlm.model.vision_model.embeddings.patch_embedding.weight"
TEXT = "model.vlm_with_expert.vlm.model.text_model.layers.0.mlp.up_proj.weight"
EXPERT = "model.vlm_with_expert.lm_expert.layers.0.mlp.up_proj.weight"


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lang") / "ds"
    write_language_dataset(root)
    return root


def _flags(dataset_root: Path, out: Path, steps: int) -> list[str]:
    return [
        "--dataset.repo_id=test/lang",
        f"--dataset.root={dataset_root}",
        f"--output_dir={out}",
        f"--steps={steps}",
        "--batch_size=4",
        "--num_workers=0",
        "--log_freq=1",
        f"--save_freq={steps}",
        "--seed=1",
        "--policy.device=cpu",
        "--policy.scheduler_warmup_steps=0",
        "--policy.optimizer_lr=1e-2",
    ]


TINY = [
    "--policy.type=smolvla",
    "--policy.chunk_size=4",
    "--policy.n_action_steps=4",
    "--policy.max_state_dim=4",
    "--policy.max_action_dim=4",
    "--policy.resize_imgs_with_padding=[16, 16]",
    "--policy.num_vlm_layers=2",
    "--policy.num_steps=2",
    "--policy.tokenizer_max_length=8",
]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoints" / "last" / "pretrained_model" / "model.safetensors"))


def test_train_from_type_then_fine_tune_from_path(
    tiny_backbone: Path, dataset_root: Path, tmp_path: Path
) -> None:
    first = tmp_path / "first"
    assert main([*_flags(dataset_root, first, 2), *TINY, f"--policy.vlm_model_name={tiny_backbone}"]) == 0
    ckpt = first / "checkpoints" / "last" / "pretrained_model"
    assert (ckpt / tiny_backbone.name / "tokenizer.json").is_file()
    start = _weights(first)

    second = tmp_path / "second"
    flags = [*_flags(dataset_root, second, 2), f"--policy.path={ckpt}", "--policy.train_expert_only=false"]
    assert main(flags) == 0
    tuned = _weights(second)
    # Vision tower frozen (freeze_vision_encoder=true by default); the text layers and the expert train.
    assert torch.equal(tuned[VISION], start[VISION])
    assert not torch.equal(tuned[TEXT], start[TEXT]) and not torch.equal(tuned[EXPERT], start[EXPERT])

    policy = SmolVLAPolicy.from_pretrained(second / "checkpoints" / "last" / "pretrained_model")
    obs = {
        "observation.state": torch.zeros(1, 3),
        "observation.images.front": torch.full((1, 3, *IMAGE_HW), 0.5),
        "task": TASKS[0],
    }
    noise = torch.randn(1, 4, 4)
    again = SmolVLAPolicy.from_pretrained(second / "checkpoints" / "last" / "pretrained_model")
    torch.testing.assert_close(
        policy.predict_action_chunk(obs, noise=noise),
        again.predict_action_chunk(obs, noise=noise),
        rtol=0,
        atol=0,
    )


def test_train_expert_only_leaves_the_vlm_untouched(
    tiny_backbone: Path, dataset_root: Path, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    from tests.policies.smolvla.conftest import tiny_config

    policy = SmolVLAPolicy(tiny_config(tiny_backbone))  # train_expert_only=True by default
    trainable = {n for n, p in policy.named_parameters() if p.requires_grad}
    assert trainable and all(not n.startswith("model.vlm_with_expert.vlm.") for n in trainable)
    assert "model.state_proj.weight" in trainable
    policy.train()
    assert not policy.model.vlm_with_expert.vlm.training and policy.model.vlm_with_expert.lm_expert.training
    frozen_proj = SmolVLAPolicy(tiny_config(tiny_backbone, train_state_proj=False))
    assert not frozen_proj.model.state_proj.weight.requires_grad
