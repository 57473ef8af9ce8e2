"""Exporting the vision-language-action policies (SmolVLA, π0, π0.5): parity, the instruction, the runtime.

Tiny random configs built here (tests/policies/conftest.py), so these always run; the LeRobot 0.6.1
fixture checkpoints (../shared) go through ``lerobot-export`` when present. Each export is made once.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tests.conftest import SHARED_FIXTURES
from tests.policies.conftest import make_stats, pi0_config, pi05_config, smolvla_config

pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")

from lerobot.export import ExportedModel, export_policy, load_exported, read_metadata  # noqa: E402
from lerobot.policies.factory import get_policy_class  # noqa: E402

PEERS = SHARED_FIXTURES / "wave2"
TASKS = ["pick up the red cube", "place the blue cube in the bin"]


def vla(kind: str):
    torch.manual_seed(0)
    config = {"smolvla": smolvla_config, "pi0": pi0_config, "pi05": pi05_config}[kind]()
    policy = get_policy_class(kind)(
        config, dataset_stats=make_stats({**config.input_features, **config.output_features})
    )
    if kind == "pi05":  # adaptive norms start time-independent (zero dense): give the time a say
        with torch.no_grad():
            for name, param in policy.named_parameters():
                if "dense" in name:
                    param.normal_(0.0, 0.02)
    return policy


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    made = {}

    def get(name: str):
        if name not in made:
            kind, fmt = name.split("-")
            policy = vla(kind)
            folder = tmp_path_factory.mktemp(name)
            export_policy(policy, format=fmt, output=folder)
            made[name] = (policy, folder)
        return made[name]

    return get


def observation(policy, batch: int, seed: int) -> dict[str, torch.Tensor]:
    """Raw observations: state in robot units, cameras as the camera's uint8 (H, W, C)."""
    gen = torch.Generator().manual_seed(seed)
    obs = {}
    for name, ft in policy.config.input_features.items():
        if len(ft.shape) == 3:
            c, h, w = ft.shape
            obs[name] = torch.randint(0, 256, (batch, h, w, c), dtype=torch.uint8, generator=gen)
        else:
            obs[name] = 2 * torch.randn(batch, *ft.shape, generator=gen)
    return obs


@pytest.mark.parametrize("name", ["smolvla-onnx", "pi0-torch_export", "pi05-onnx"])
def test_vla_export_acts_like_the_policy_given_an_instruction(exports, name):
    policy, folder = exports(name)
    kind, fmt = name.split("-")
    meta = read_metadata(folder)
    cfg = policy.config
    assert meta["parity"]["passed"] and meta["parity"]["max_scaled_diff"] <= 1e-4
    files = {p.name for p in folder.iterdir()}
    assert {"metadata.json", "tokenizer", meta["file"]} <= files and (
        folder / "tokenizer" / "tokenizer.json"
    ).is_file()
    if fmt == "onnx":  # weights beside the model: large models export
        assert "model.onnx.data" in files and "model.onnx.data" in meta["files"]
    instruction = meta["instruction"]
    assert instruction["tokenizer"] == "tokenizer" and instruction["padding"] == "max_length"
    assert instruction["max_length"] == cfg.tokenizer_max_length and instruction["padding_side"] == "right"
    names = [s["name"] for s in meta["inputs"]]
    tokens_name, mask_name = instruction["inputs"]
    assert names[-3:] == [tokens_name, mask_name, "noise"]
    assert (
        meta["inputs"][-1]["shape"] == ["batch", cfg.chunk_size, cfg.max_action_dim]
        and meta["inputs"][-1]["random"]
    )
    assert meta["outputs"][0]["shape"] == ["batch", cfg.chunk_size, cfg.action_feature.shape[0]]
    camera = meta["inputs"][names.index("observation.images.front")]
    assert camera["dtype"] == "uint8" and camera["shape"][-1] == 3
    if kind == "pi05":
        assert (
            tokens_name == "observation.language.task_tokens"
            and instruction["prompt"] == "Task: {task}, State:"
        )
        assert "inside the model" in instruction["state_in_prompt"]
    else:
        assert tokens_name == "observation.language.tokens" and instruction["prompt"] == "{task}\n"

    # Batch 2, two instructions, the runtime tokenising them; the eager policy with the same noise.
    obs = observation(policy, 2, seed=3)
    noise = torch.randn(2, cfg.chunk_size, cfg.max_action_dim, generator=torch.Generator().manual_seed(4))
    model = ExportedModel(folder)
    exported = model({**{k: v.numpy() for k, v in obs.items()}, "task": TASKS, "noise": noise.numpy()})
    eager = policy.predict_action_chunk({**obs, "task": TASKS}, noise=noise).numpy()
    np.testing.assert_allclose(exported, eager, atol=1e-4, rtol=1e-4)
    # The instruction and (π0.5: through the prompt) the state reach the actions.
    other_task = model(
        {**{k: v.numpy() for k, v in obs.items()}, "task": TASKS[::-1], "noise": noise.numpy()}
    )
    assert not np.allclose(other_task, exported, atol=1e-6)
    moved = {**obs, "observation.state": obs["observation.state"] + 3.0}
    other_state = model({**{k: v.numpy() for k, v in moved.items()}, "task": TASKS, "noise": noise.numpy()})
    assert not np.allclose(other_state, exported, atol=1e-6)
    eager_moved = policy.predict_action_chunk({**moved, "task": TASKS}, noise=noise).numpy()
    np.testing.assert_allclose(other_state, eager_moved, atol=1e-4, rtol=1e-4)


def test_onnxruntime_backend_serves_a_vla_export_with_an_instruction(exports):
    from lerobot.async_inference.policy_server import load_policy

    policy, folder = exports("smolvla-onnx")
    served = load_policy(str(folder), backend="onnxruntime")
    assert type(served).__name__ == "ExportedPolicy" and served.config.type == "smolvla"
    frame = {k: v[0].numpy() for k, v in observation(policy, 1, seed=5).items()}
    with pytest.raises(KeyError, match="no 'task'.*instruction"):
        served.select_action(frame)
    actions = [
        served.select_action({**frame, "task": TASKS[0]}).action
        for _ in range(policy.config.n_action_steps + 1)
    ]
    assert all(
        a.shape == (1, policy.config.action_feature.shape[0]) and torch.isfinite(a).all() for a in actions
    )


def test_pi05_graph_writes_the_discretised_state_into_the_prompt():
    """The in-graph prompt equals tokenising the whole prompt, for every bin and a truncated long task."""
    from lerobot.policies.pi05.modeling_pi05 import StatePromptTokens, discretize_state, discretize_state_ops

    policy = vla("pi05")
    prompt = StatePromptTokens(policy.tokenizer, policy.config.tokenizer_max_length)
    tasks, states = policy._prompt_check_cases()
    assert torch.equal(discretize_state_ops(states), discretize_state(states))
    assert set(discretize_state(states).flatten().tolist()) == set(range(-1, 256))
    prompt.check(policy._tokenize_texts, tasks, states)  # raises when they differ
    edges = torch.tensor([[-1.5, -1.0, -0.9921875, 0.0, 0.9999999, 1.0, 7.0]])
    assert torch.equal(discretize_state_ops(edges), discretize_state(edges))


def test_a_vla_refuses_a_format_it_cannot_take_and_names_those_it_can(tmp_path):
    with pytest.raises(
        ValueError, match=r"'smolvla' policy cannot be exported to int8: .*exports to onnx, torch_export"
    ):
        export_policy(vla("smolvla"), format="int8", output=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fixture", "fmt"), [("peer_smolvla_checkpoint", "torch_export"), ("peer_pi0_checkpoint", "torch_export")]
)
def test_lerobot_export_on_the_reference_fixture_checkpoints(tmp_path, fixture, fmt):
    from lerobot.scripts.export import main

    checkpoint = PEERS / fixture
    if not checkpoint.is_dir():
        pytest.skip(
            f"the LeRobot 0.6.1 fixture checkpoints live in ../shared ({checkpoint}), absent in this clone"
        )
    out = tmp_path / fmt
    assert main([f"--policy.path={checkpoint}", f"--format={fmt}", f"--output={out}"]) == 0
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["parity"]["passed"] and meta["parity"]["max_scaled_diff"] <= 1e-4
    served = load_exported(out)
    expected = json.loads((PEERS / f"{fixture}.expected.json").read_text())
    task = expected["inputs"].get("task") or "pick up the cube"
    frame = {
        k: v[0].numpy() for k, v in observation(served, 1, seed=6).items() if k in served.model.input_names
    }
    chunk = served.predict_action_chunk({**frame, "task": task if isinstance(task, str) else task[0]})
    assert chunk.shape == (1, served.config.chunk_size, 6) and torch.isfinite(chunk).all()
