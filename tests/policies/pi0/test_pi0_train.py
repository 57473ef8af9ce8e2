"""lerobot-train fine-tunes a tiny π0 / π0.5 checkpoint (--policy.path) on a local dataset with task strings,
and the guide's ``predict(images=, states=, instruction=)`` call drives it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from tests.policies.pi0.conftest import tiny_config
from tests.policies.smolvla.conftest import IMAGE_HW, TASKS, write_language_dataset

from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.factory import get_policy_class
from lerobot.policies.vla_common import load_tokenizer
from lerobot.scripts.train import main

FEATURES = dict(
    input_features={
        "observation.state": PolicyFeature(FeatureType.STATE, (3,)),
        "observation.images.front": PolicyFeature(FeatureType.VISUAL, (3, *IMAGE_HW)),
    },
    output_features={"action": PolicyFeature(FeatureType.ACTION, (2,))},
)
EXPERT = "model.paligemma_with_expert.gemma_expert.model.layers.0.mlp.up_proj.weight"
VISION = (
    "model.paligemma_with_expert.paligemma.model.vision_tower.vision_model.embeddings.patch_embedding.weight"
)


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lang") / "ds"
    write_language_dataset(root)
    return root


def checkpoint(kind: str, folder: Path, tokenizer_folder: Path) -> Path:
    torch.manual_seed(0)
    policy = get_policy_class(kind)(tiny_config(kind, **FEATURES))
    policy.set_tokenizer(load_tokenizer(tokenizer_folder))
    return policy.save_pretrained(folder)


@pytest.mark.parametrize("kind", ["pi0", "pi05"])
def test_fine_tune_from_path_then_reload(kind, dataset_root, tokenizer_folder, tmp_path):
    start = checkpoint(kind, tmp_path / "start", tokenizer_folder)
    run = tmp_path / "run"
    flags = [
        "--dataset.repo_id=test/lang",
        f"--dataset.root={dataset_root}",
        f"--output_dir={run}",
        "--steps=2",
        "--batch_size=4",
        "--num_workers=0",
        "--log_freq=1",
        "--save_freq=2",
        "--seed=1",
        f"--policy.path={start}",
        "--policy.device=cpu",
        "--policy.scheduler_warmup_steps=0",
        "--policy.optimizer_lr=1e-2",
        "--policy.freeze_vision_encoder=true",
    ]
    assert main(flags) == 0
    tuned_dir = run / "checkpoints" / "last" / "pretrained_model"
    before, after = (
        load_file(str(start / "model.safetensors")),
        load_file(str(tuned_dir / "model.safetensors")),
    )
    assert torch.equal(before[VISION], after[VISION]) and not torch.equal(before[EXPERT], after[EXPERT])
    assert (tuned_dir / "tokenizer" / "tokenizer.json").is_file()
    policy = get_policy_class(kind).from_pretrained(tuned_dir)
    again = get_policy_class(kind).from_pretrained(tuned_dir)
    obs = {
        "observation.state": torch.randn(1, 3),
        "observation.images.front": torch.rand(1, 3, *IMAGE_HW),
        "task": TASKS[0],
    }
    noise = torch.randn(1, policy.config.chunk_size, policy.config.max_action_dim)
    torch.testing.assert_close(
        policy.predict_action_chunk(obs, noise=noise), again.predict_action_chunk(obs, noise=noise)
    )


def test_guide_predict_call(tokenizer_folder, tmp_path):
    features = {**FEATURES, "output_features": {"action": PolicyFeature(FeatureType.ACTION, (4,))}}
    policy = get_policy_class("pi0")(tiny_config("pi0", **features))
    policy.set_tokenizer(load_tokenizer(tokenizer_folder))
    frame = np.random.default_rng(0).integers(0, 255, (*IMAGE_HW, 3), dtype=np.uint8)
    out = policy.predict(
        images={"wrist": frame}, states=np.zeros(3), instruction=TASKS[1], rename_map={"wrist": "front"}
    )
    assert out["joint_positions"].shape == (3,) and isinstance(out["gripper"], float)
    with pytest.raises(ValueError, match="front"):
        policy.predict(images={"wrist": frame}, states=np.zeros(3), instruction=TASKS[1])


def test_train_a_new_tiny_pi05_from_type(dataset_root, tokenizer_folder, tmp_path):
    """--policy.type with variant_sizes and a local tokenizer: a small π0.5 trains offline."""
    import json

    from tests.policies.pi0.conftest import TINY_SIZES

    run = tmp_path / "run"
    flags = [
        "--dataset.repo_id=test/lang",
        f"--dataset.root={dataset_root}",
        f"--output_dir={run}",
        "--steps=2",
        "--batch_size=4",
        "--num_workers=0",
        "--save_freq=2",
        "--policy.type=pi05",
        f"--policy.variant_sizes={json.dumps(TINY_SIZES)}",
        "--policy.image_resolution=[16, 16]",
        "--policy.chunk_size=4",
        "--policy.n_action_steps=4",
        "--policy.max_state_dim=4",
        "--policy.max_action_dim=4",
        "--policy.num_inference_steps=2",
        "--policy.tokenizer_max_length=32",
        f"--policy.tokenizer_name={tokenizer_folder}",
        "--policy.device=cpu",
    ]
    assert main(flags) == 0
    ckpt = run / "checkpoints" / "last" / "pretrained_model"
    config = json.loads((ckpt / "config.json").read_text())
    assert "tokenizer_name" not in config and config["variant_sizes"] == TINY_SIZES
    policy = get_policy_class("pi05").from_pretrained(ckpt)
    assert policy.tokenizer_name == "tokenizer" and policy._tokenizer_dir == ckpt
    chunk = policy.predict_action_chunk(
        {
            "observation.state": torch.randn(1, 3),
            "observation.images.front": torch.rand(1, 3, *IMAGE_HW),
            "task": TASKS[0],
        }
    )
    assert chunk.shape == (1, 4, 2) and torch.isfinite(chunk).all()
