"""SmolVLA checkpoints: what save_pretrained writes (LeRobot's layout, a self-contained backbone folder),
identical actions after reloading, safe resolution of the backbone name, and backbone weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from tests.conftest import SHARED_FIXTURES
from tests.policies.smolvla.conftest import IMAGE_HW, TASKS, tiny_config

from lerobot.policies.config import CheckpointError
from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy, UnknownBackboneError

PEER = SHARED_FIXTURES / "wave2" / "peer_smolvla_checkpoint"
PRE_STEPS = [
    "rename_observations_processor",
    "to_batch_processor",
    "smolvla_new_line_processor",
    "tokenizer_processor",
    "device_processor",
    "normalizer_processor",
]


def _stats() -> dict:
    return {
        "observation.state": {"mean": torch.tensor([0.1, -0.2, 0.3]), "std": torch.tensor([1.5, 0.5, 2.0])},
        "action": {"mean": torch.tensor([1.0, -1.0]), "std": torch.tensor([0.5, 3.0])},
    }


def _observation() -> dict:
    gen = torch.Generator().manual_seed(1)
    return {
        "observation.state": torch.randn(1, 3, generator=gen),
        "observation.images.front": torch.rand(1, 3, *IMAGE_HW, generator=gen),
        "task": TASKS[1],
    }


def test_save_reload_acts_identically(tiny_backbone: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    policy = SmolVLAPolicy(tiny_config(tiny_backbone), dataset_stats=_stats())
    ckpt = policy.save_pretrained(tmp_path / "ckpt")
    # The backbone folder travels inside the checkpoint, named relatively, without weight files.
    config = json.loads((ckpt / "config.json").read_text())
    assert config["type"] == "smolvla" and config["vlm_model_name"] == tiny_backbone.name
    assert (ckpt / tiny_backbone.name / "config.json").is_file()
    assert (ckpt / tiny_backbone.name / "tokenizer.json").is_file()
    assert policy.config.vlm_model_name == str(tiny_backbone)  # the live config is unchanged
    pre = json.loads((ckpt / "policy_preprocessor.json").read_text())
    assert [s["registry_name"] for s in pre["steps"]] == PRE_STEPS
    tokenizer_step = pre["steps"][3]["config"]
    assert tokenizer_step["tokenizer_name"] == tiny_backbone.name and tokenizer_step["max_length"] == 8
    assert pre["steps"][5]["state_file"] == "policy_preprocessor_step_5_normalizer_processor.safetensors"
    with safe_open(str(ckpt / "model.safetensors"), "pt") as f:
        assert set(f.keys()) == set(policy.model.state_dict(prefix="model."))

    reloaded = SmolVLAPolicy.from_pretrained(ckpt)
    noise = torch.randn(1, 4, 4)
    torch.testing.assert_close(
        reloaded.predict_action_chunk(_observation(), noise=noise),
        policy.predict_action_chunk(_observation(), noise=noise),
        rtol=0,
        atol=0,
    )
    reloaded.save_pretrained(tmp_path / "again")  # a relative backbone name saves again
    assert json.loads((tmp_path / "again" / "config.json").read_text()) == config


@pytest.mark.skipif(
    not PEER.is_dir(), reason=f"the peer SmolVLA checkpoint lives in ../shared ({PEER}), absent"
)
def test_peer_checkpoint_saves_back_to_the_same_files(tmp_path: Path) -> None:
    ckpt = SmolVLAPolicy.from_pretrained(PEER, device="cpu").save_pretrained(tmp_path / "ckpt")
    for name in ("config.json", "policy_preprocessor.json", "policy_postprocessor.json"):
        assert json.loads((ckpt / name).read_text()) == json.loads((PEER / name).read_text()), name
    # Weights identical; of the statistics, the ones the normaliser uses (LeRobot also keeps min/max).
    for name in ("model.safetensors", "policy_preprocessor_step_5_normalizer_processor.safetensors"):
        with safe_open(str(ckpt / name), "pt") as ours, safe_open(str(PEER / name), "pt") as theirs:
            keys = set(ours.keys())
            assert keys == set(theirs.keys()) if name == "model.safetensors" else keys <= set(theirs.keys())
            assert all(torch.equal(ours.get_tensor(k), theirs.get_tensor(k)) for k in keys)


def _checkpoint_naming(tmp_path: Path, tiny_backbone: Path, name: str) -> Path:
    torch.manual_seed(0)
    ckpt = SmolVLAPolicy(tiny_config(tiny_backbone), dataset_stats=_stats()).save_pretrained(
        tmp_path / "ckpt"
    )
    config = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps({**config, "vlm_model_name": name}))
    return ckpt


def test_a_checkpoint_cannot_name_a_backbone_outside_it(tiny_backbone: Path, tmp_path: Path) -> None:
    for name in (str(tiny_backbone), f"../{tiny_backbone.name}", "../../etc"):
        ckpt = _checkpoint_naming(tmp_path, tiny_backbone, name)
        with pytest.raises(CheckpointError, match="not followed"):
            SmolVLAPolicy.from_pretrained(ckpt)


def test_unknown_backbone_is_one_clear_error(tiny_backbone: Path, tmp_path: Path) -> None:
    from transformers import LlamaConfig

    ckpt = _checkpoint_naming(tmp_path, tiny_backbone, "llama")
    LlamaConfig(
        hidden_size=16, num_attention_heads=2, num_key_value_heads=2, num_hidden_layers=1
    ).save_pretrained(ckpt / "llama")
    import shutil

    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(ckpt / tiny_backbone.name / f, ckpt / "llama" / f)
    with pytest.raises(UnknownBackboneError, match="LlamaConfig.*needs a SmolVLM backbone"):
        SmolVLAPolicy.from_pretrained(ckpt)


def test_missing_tokenizer_names_the_folder(tiny_backbone: Path, tmp_path: Path) -> None:
    import shutil

    from lerobot.policies.vla_common import MissingPretrainedFilesError

    folder = tmp_path / "no_tokenizer"
    folder.mkdir()
    shutil.copy(tiny_backbone / "config.json", folder / "config.json")
    with pytest.raises(MissingPretrainedFilesError, match="no_tokenizer"):
        SmolVLAPolicy(tiny_config(folder))


def test_load_vlm_weights_reads_the_backbone_only_for_a_new_policy(
    tiny_backbone: Path, tmp_path: Path
) -> None:
    import shutil

    from transformers import AutoConfig, SmolVLMForConditionalGeneration

    torch.manual_seed(3)
    with_weights = tmp_path / "smolvlm_with_weights"
    shutil.copytree(tiny_backbone, with_weights)
    vlm = SmolVLMForConditionalGeneration(AutoConfig.from_pretrained(tiny_backbone))
    vlm.save_pretrained(with_weights)
    key = "model.vision_model.embeddings.patch_embedding.weight"
    pretrained = vlm.state_dict()[key]

    def patch_weight(p: SmolVLAPolicy) -> torch.Tensor:
        return p.model.vlm_with_expert.vlm.state_dict()[key]

    torch.manual_seed(0)
    fresh = SmolVLAPolicy(tiny_config(with_weights))
    assert not torch.equal(patch_weight(fresh), pretrained)
    loaded = SmolVLAPolicy(tiny_config(with_weights, load_vlm_weights=True))
    assert torch.equal(patch_weight(loaded), pretrained)
    ckpt = loaded.save_pretrained(tmp_path / "ckpt")
    assert not list(
        (ckpt / with_weights.name).glob("*.safetensors")
    )  # weights live in model.safetensors only
    assert torch.equal(patch_weight(SmolVLAPolicy.from_pretrained(ckpt)), pretrained)
