"""lerobot-train with SmolVLA at a tiny size on a local dataset with task strings: from --policy.type
(the backbone folder given by --policy.vlm_model_name), fine-tuning from --policy.path, the
freezing options, and a checkpoint that reloads with identical actions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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


def test_fine_tune_a_checkpoint_with_other_camera_names(
    tiny_backbone: Path, dataset_root: Path, tmp_path: Path
) -> None:
    """smolvla_base expects camera1..camera3; a dataset with one 'front' camera trains through --rename_map."""
    import json

    from tests.policies.smolvla.conftest import tiny_config

    from lerobot.configs.types import FeatureType, PolicyFeature

    cams = {f"observation.images.camera{i}": PolicyFeature(FeatureType.VISUAL, (3, 32, 32)) for i in (1, 2)}
    config = tiny_config(
        tiny_backbone,
        input_features={"observation.state": PolicyFeature(FeatureType.STATE, (3,)), **cams},
    )
    torch.manual_seed(0)
    start = SmolVLAPolicy(config).save_pretrained(tmp_path / "base")
    base = [*_flags(dataset_root, tmp_path / "plain", 1), f"--policy.path={start}"]
    with pytest.raises(ValueError, match=r"camera1.*observation.images.front.*--rename_map"):
        main(base)
    run = tmp_path / "renamed"
    rename = '{"observation.images.front": "observation.images.camera1"}'
    assert main([*_flags(dataset_root, run, 2), f"--policy.path={start}", f"--rename_map={rename}"]) == 0
    ckpt = run / "checkpoints" / "last" / "pretrained_model"
    pre = json.loads((ckpt / "policy_preprocessor.json").read_text())
    assert pre["steps"][0]["config"]["rename_map"] == json.loads(rename)

    # The guide's call on the fine-tuned policy: the robot's 'front' camera maps through the saved map.
    policy = SmolVLAPolicy.from_pretrained(ckpt)
    image = np.zeros((*IMAGE_HW, 3), dtype=np.uint8)
    with pytest.warns(UserWarning, match="camera2"):
        out = policy.predict(images={"front": image}, states=np.zeros(2), gripper=0.5, instruction=TASKS[0])
    assert out["joint_positions"].shape == (2,) and "gripper" not in out  # 2 action values for 2 joints
    with pytest.raises(ValueError, match=r"cameras \['observation.images.wrist'\] do not match"):
        policy.predict(images={"wrist": image}, states=np.zeros(3), instruction=TASKS[0])
    with pytest.raises(ValueError, match=r"states has 1 values; the policy's state has 3"):
        policy.predict(images={"front": image}, states=np.zeros(1), instruction=TASKS[0])
    with pytest.raises(ValueError, match="add gripper="):
        policy.predict(images={"front": image}, states=np.zeros(2), instruction=TASKS[0])
    with pytest.raises(ValueError, match="needs instruction"):
        policy.predict(images={"front": image}, states=np.zeros(3))


def test_gradient_checkpointing_gives_the_same_gradients(tiny_backbone: Path) -> None:
    from tests.policies.smolvla.conftest import tiny_config

    torch.manual_seed(0)
    policy = SmolVLAPolicy(tiny_config(tiny_backbone, train_expert_only=False))
    batch = {
        "observation.state": torch.randn(2, 3),
        "observation.images.front": torch.rand(2, 3, *IMAGE_HW),
        "action": torch.randn(2, 4, 2),
        "task": TASKS,
    }
    fixed = {"noise": torch.randn(2, 4, 4), "time": torch.tensor([0.2, 0.7])}
    grads = []
    for enable in (False, True):
        policy.gradient_checkpointing_enable(enable)
        policy.train()
        policy.zero_grad()
        policy.forward(batch, **fixed)["loss"].backward()
        grads.append({n: p.grad.clone() for n, p in policy.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and any("text_model" in n for n in grads[0])
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, msg=name)
