"""Hostile checkpoints and configs (issue 17, findings 6 and 7): a checkpoint never makes us read a file
outside its folder, remote code never runs, and a config too large for this machine is refused before
anything is allocated.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest
import torch
from tests.policies.conftest import act_config, make_stats

from lerobot.policies import pretrained
from lerobot.policies.act.modeling_act import ACTPolicy
from lerobot.policies.config import CheckpointError, PreTrainedConfig

SRC = Path(__file__).resolve().parents[2] / "src" / "lerobot"
PRE = "policy_preprocessor.json"


def save_checkpoint(folder: Path, seed: int) -> ACTPolicy:
    torch.manual_seed(seed)
    config = act_config(image=False)
    stats = make_stats({**config.input_features, **config.output_features})
    if seed:  # another run's statistics: loading them instead would silently change every action
        stats = {k: {s: v * 10 + seed for s, v in st.items()} for k, st in stats.items()}
    policy = ACTPolicy(config, dataset_stats=stats)
    policy.save_pretrained(folder)
    return policy


@pytest.fixture
def checkpoints(tmp_path) -> tuple[Path, Path]:
    """Our checkpoint, and a stranger's folder next to it with other statistics."""
    ours, other = tmp_path / "ckpt", tmp_path / "other"
    save_checkpoint(ours, 0)
    save_checkpoint(other, 7)
    return ours, other


def set_state_file(folder: Path, value: str) -> None:
    path = folder / PRE
    pipeline = json.loads(path.read_text())
    for step in pipeline["steps"]:
        if "state_file" in step:
            step["state_file"] = value
    path.write_text(json.dumps(pipeline))


def other_stats_file(other: Path) -> Path:
    return next(other.glob("policy_preprocessor_step_*.safetensors"))


def test_untouched_checkpoint_loads(checkpoints):
    ours, _ = checkpoints
    policy = ACTPolicy.from_pretrained(ours)
    assert policy.normalize_inputs.flat_stats()


@pytest.mark.parametrize("how", ["absolute", "parent", "home"])
def test_state_file_outside_the_checkpoint_is_refused(checkpoints, how):
    ours, other = checkpoints
    target = other_stats_file(other)
    value = {
        "absolute": str(target),
        "parent": f"../{other.name}/{target.name}",
        "home": "~/stats.safetensors",
    }[how]
    set_state_file(ours, value)
    with pytest.raises(CheckpointError, match="not a path inside the checkpoint"):
        ACTPolicy.from_pretrained(ours)


def test_state_file_symlinked_outside_the_checkpoint_is_refused(checkpoints):
    ours, other = checkpoints
    own = next(ours.glob("policy_preprocessor_step_*.safetensors"))
    own.unlink()
    own.symlink_to(other_stats_file(other))
    with pytest.raises(CheckpointError, match="outside the checkpoint"):
        ACTPolicy.from_pretrained(ours)


@pytest.mark.parametrize("value", ["/etc/passwd", "../../weights.pth", "~/.ssh/id_rsa", "a/b/c.pth"])
def test_backbone_weights_named_outside_the_checkpoint_are_not_followed(checkpoints, value):
    ours, _ = checkpoints
    path = ours / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "pretrained_backbone_weights": value}))
    with pytest.warns(UserWarning, match="points outside the checkpoint and is not followed"):
        config = PreTrainedConfig.from_pretrained(ours)
    assert config.pretrained_backbone_weights is None


@pytest.mark.parametrize("value", ["ResNet18_Weights.IMAGENET1K_V1", "org/backbone", None])
def test_hub_style_backbone_names_are_kept(checkpoints, value):
    ours, _ = checkpoints
    path = ours / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "pretrained_backbone_weights": value}))
    assert PreTrainedConfig.from_pretrained(ours).pretrained_backbone_weights == value


def test_backbone_file_inside_the_checkpoint_is_kept(checkpoints):
    ours, _ = checkpoints
    (ours / "backbone").mkdir()
    (ours / "backbone/resnet.pth").write_bytes(b"")
    path = ours / "config.json"
    path.write_text(
        json.dumps({**json.loads(path.read_text()), "pretrained_backbone_weights": "backbone/resnet.pth"})
    )
    assert PreTrainedConfig.from_pretrained(ours).pretrained_backbone_weights == "backbone/resnet.pth"


def test_user_override_of_a_file_field_is_trusted(checkpoints, tmp_path):
    ours, _ = checkpoints
    chosen = str(tmp_path / "my_resnet.pth")
    assert (
        PreTrainedConfig.from_pretrained(ours, pretrained_backbone_weights=chosen).pretrained_backbone_weights
        == chosen
    )


def test_no_code_path_enables_remote_code():
    """Nothing in the library loads remote code; if a loader ever takes ``trust_remote_code`` it must come
    from the user (a config field defaulting to False), never be hard-wired on."""
    hits = [
        f"{path.relative_to(SRC)}:{n}"
        for path in SRC.rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"trust_remote_code\s*=\s*True", line)
    ]
    assert hits == []


# ------------------------------------------------------------------ finding 7: memory estimate


def test_huge_config_is_refused_before_allocating():
    config = act_config(image=False, dim_feedforward=2_000_000_000)
    started = time.perf_counter()
    with pytest.raises(
        MemoryError, match=r"needs [\d.]+ GiB for its parameters alone but [\d.]+ GiB .* available"
    ):
        ACTPolicy(config)
    assert time.perf_counter() - started < 5


def test_huge_config_in_a_checkpoint_is_refused(checkpoints):
    ours, _ = checkpoints
    path = ours / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "dim_feedforward": 2_000_000_000}))
    with pytest.raises(MemoryError, match="dim_feedforward"):
        ACTPolicy.from_pretrained(ours)


def test_estimate_counts_what_the_real_build_allocates(monkeypatch):
    config = act_config(image=False)
    needed, largest = pretrained.parameter_bytes(ACTPolicy, config)
    policy = ACTPolicy(config)
    real = sum(t.numel() * t.element_size() for t in [*policy.parameters(), *policy.buffers()])
    assert needed == real and "(" in largest
    monkeypatch.setattr(pretrained, "available_memory_bytes", lambda: needed - 1)
    with pytest.raises(MemoryError, match=rf"{needed / 2**30:.2f} GiB .* but {(needed - 1) / 2**30:.2f} GiB"):
        ACTPolicy(config)


def test_available_memory_is_known_here():
    available = pretrained.available_memory_bytes()
    assert available is not None and available > 0


def test_peer_checkpoint_fixture_copy_still_loads(tmp_path):
    from tests.conftest import SHARED_FIXTURES

    src = SHARED_FIXTURES / "peer_act_checkpoint"
    if not src.is_dir():
        pytest.skip(f"{src} is absent (../shared is not part of a user's clone)")
    shutil.copytree(src, tmp_path / "ckpt")
    policy = ACTPolicy.from_pretrained(tmp_path / "ckpt")
    assert policy.unnormalize_outputs.flat_stats()
