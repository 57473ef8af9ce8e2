"""lerobot.export: each format round-trips with parity, refusals say why, the runtimes serve exported models.

Tiny policies (tests/policies/conftest.py); each export is made once per module and shared.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from tests.policies.conftest import act_config, diffusion_config, make_stats

from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.export import ExportedModel, export_policy, load_exported, read_metadata
from lerobot.policies.act.modeling_act import ACTPolicy
from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy
from lerobot.policies.pretrained import PreTrainedPolicy
from lerobot.policies.tdmpc.modeling_tdmpc import TDMPCPolicy
from lerobot.policies.vqbet.modeling_vqbet import VQBeTPolicy


def _stats(config):
    return make_stats({**config.input_features, **config.output_features})


def act_policy(image: bool) -> ACTPolicy:
    torch.manual_seed(0)
    config = act_config(image=image)
    return ACTPolicy(config, dataset_stats=_stats(config))


def diffusion_policy() -> DiffusionPolicy:
    """State-only DDPM Diffusion with a 4-D action: fits the 4-joint test robot, has per-step noise."""
    torch.manual_seed(0)
    config = diffusion_config(
        image=False,
        output_features={"action": PolicyFeature(FeatureType.ACTION, (4,))},
        noise_scheduler_type="DDPM",
        num_inference_steps=2,
    )
    return DiffusionPolicy(config, dataset_stats=_stats(config))


def tdmpc_policy(plan: bool) -> TDMPCPolicy:
    """Tiny TD-MPC: the prior alone with a 48 px camera, or MPPI planning (every draw an input) on state."""
    from tests.policies.tdmpc.test_tdmpc import tiny

    torch.manual_seed(0)
    repeats = dict(n_action_repeats=1, n_action_steps=2) if plan else {}  # the prior: each action twice
    config = tiny(image=not plan, use_mpc=plan, **repeats)
    policy = TDMPCPolicy(config, dataset_stats=_stats(config))
    with torch.no_grad():  # as trained: the reward and Q heads start at zero, which ties every plan's value
        for param in policy.model.parameters():
            if not param.any():
                param.normal_(0.0, 0.5)
    return policy


def vqbet_policy() -> VQBeTPolicy:
    """Tiny VQ-BeT sampling its codes (the draws as uniform inputs)."""
    from tests.policies.vqbet.test_vqbet import vqbet_config

    torch.manual_seed(0)
    config = vqbet_config()
    return VQBeTPolicy(config, dataset_stats=_stats(config))


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """{name: (policy, folder)}, made on first use."""
    made = {}

    def get(name: str):
        if name not in made:
            policy_name, fmt = name.split("-")
            policy = {
                "actimage": lambda: act_policy(True),
                "act": lambda: act_policy(False),
                "diffusion": diffusion_policy,
                "tdmpc": lambda: tdmpc_policy(False),
                "tdmpcplan": lambda: tdmpc_policy(True),
                "vqbet": vqbet_policy,
            }[policy_name]()
            folder = tmp_path_factory.mktemp(name)
            export_policy(policy, format=fmt, output=folder)
            made[name] = (policy, folder)
        return made[name]

    return get


@pytest.mark.parametrize(
    "name",
    [
        "actimage-onnx",
        "act-torchscript",
        "act-torch_export",
        "act-int8",
        "diffusion-onnx",
        "diffusion-torch_export",
        "tdmpc-onnx",
        "tdmpc-torch_export",
        "tdmpcplan-onnx",
        "tdmpcplan-torch_export",
        "vqbet-onnx",
        "vqbet-torch_export",
    ],
)
def test_each_format_round_trips_with_parity(exports, name):
    policy, folder = exports(name)
    meta = read_metadata(folder)
    fmt = name.split("-")[1]
    assert meta["format"] == fmt and (folder / meta["file"]).is_file()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [meta["file"], "metadata.json"]
    )  # no temp files left
    assert meta["policy"]["type"] == policy.name and meta["outputs"][0]["name"] == "action"
    assert meta["parity"]["passed"] and meta["parity"]["observations"] == 8
    if fmt == "int8":
        assert meta["parity"]["tolerance"] == 0.05 and meta["parity"]["max_scaled_diff"] <= 0.05
    else:
        assert meta["parity"]["max_scaled_diff"] <= 1e-4
    names = [spec["name"] for spec in meta["inputs"]]
    assert names[: len(policy.config.input_features)] == list(policy.config.input_features)
    if "actimage" in name:  # the camera's own format: uint8 (batch, H, W, C)
        image = meta["inputs"][names.index("observation.images.top")]
        assert image["dtype"] == "uint8" and image["shape"] == ["batch", 32, 32, 3]
    if policy.name == "diffusion":  # every draw is an input: initial noise and DDPM's per-step noise
        assert [s["name"] for s in meta["inputs"] if s["random"]] == ["noise", "step_noise"]
        assert meta["inputs"][-1]["shape"] == ["batch", 1, 8, 4] and "DDPM" in meta["random_draws"]
    elif name.startswith(
        "tdmpcplan"
    ):  # MPPI's draws: prior noise, Gaussian samples, the pick, terminal Q heads
        random = ["pi_noise", "plan_noise", "terminal_noise", "elite_pick", "terminal_heads"]
        assert [s["name"] for s in meta["inputs"] if s["random"]] == random and "MPPI" in meta["random_draws"]
    elif policy.name == "vqbet":  # the code draws, uniform
        assert [s["name"] for s in meta["inputs"] if s["random"]] == ["code_uniforms"]
        assert meta["inputs"][-1]["shape"] == ["batch", 3, 2] and "inverse CDF" in meta["random_draws"]
    else:
        assert not any(s["random"] for s in meta["inputs"]) and meta["random_draws"].startswith("none")

    # Run it again here at batch 3 with the draws the eager policy makes from the same generator.
    graph = policy.export_graph()
    gen = torch.Generator().manual_seed(5)
    obs = [x for spec, x in zip(graph.inputs, graph.example_inputs(3, gen), strict=False) if not spec.random]
    observation = dict(zip(list(policy.config.input_features), obs, strict=True))
    draws = graph.draw_inputs(3, torch.Generator().manual_seed(9)) if graph.draws == "input" else ()
    random_names = [s.name for s in graph.inputs if s.random]
    exported = ExportedModel(folder)(
        {
            **{k: v.numpy() for k, v in observation.items()},
            **dict(zip(random_names, [d.numpy() for d in draws], strict=True)),
        }
    )
    kwargs = {"generator": torch.Generator().manual_seed(9)} if random_names else {}
    eager = policy.predict_action_chunk(observation, **kwargs).numpy()
    tolerance = 0.05 * 4 * 2.0 if fmt == "int8" else 1e-4  # 5% of 4 std (std < 1.5 in make_stats)
    np.testing.assert_allclose(exported, eager, atol=tolerance, rtol=1e-4)


def test_exported_policy_acts_like_the_eager_policy_step_by_step(exports):
    policy, folder = exports("act-torchscript")
    exported = load_exported(folder)
    policy.reset()
    gen = torch.Generator().manual_seed(1)
    for _ in range(7):  # crosses a chunk boundary (n_action_steps = 5)
        obs = {
            name: torch.randn(ft.shape, generator=gen) for name, ft in policy.config.input_features.items()
        }
        torch.testing.assert_close(
            exported.select_action(obs).action, policy.select_action(obs).action, atol=1e-4, rtol=1e-4
        )


def test_exported_tdmpc_repeats_actions_and_vqbet_draws_uniform_codes(exports):
    policy, folder = exports("tdmpc-torch_export")
    exported = load_exported(folder)
    policy.reset()
    gen = torch.Generator().manual_seed(2)
    for _ in range(5):  # each of the prior's actions runs n_action_repeats = 2 steps, in both
        obs = {
            "observation.state": torch.randn(4, generator=gen),
            "observation.image": torch.randint(0, 256, (48, 48, 3), dtype=torch.uint8, generator=gen),
        }
        torch.testing.assert_close(
            exported.select_action(obs).action, policy.select_action(obs).action, atol=1e-4, rtol=1e-4
        )

    vqbet, folder = exports("vqbet-onnx")
    meta = read_metadata(folder)
    assert [(s["name"], s["distribution"]) for s in meta["inputs"] if s["random"]] == [
        ("code_uniforms", "uniform")
    ]
    served = load_exported(folder)
    frame, _ = served._frame(
        {name: np.ones(ft.shape, np.float32) for name, ft in vqbet.config.input_features.items()}
    )
    draws = served._inputs(frame)["code_uniforms"]  # uniform, as the exported inverse CDF expects
    assert draws.shape == (1, 3, 2) and (draws >= 0).all() and (draws < 1).all()
    assert served.select_action(frame).action.shape == (1, *vqbet.config.action_feature.shape)


def test_a_format_or_policy_that_cannot_export_says_why_and_what_can(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"Unknown export format 'tflite'; choose one of \['onnx', 'torchscript', 'torch_export', 'int8'\]",
    ):
        export_policy(act_policy(False), format="tflite", output=tmp_path)

    class NoGraph(ACTPolicy):  # a policy that has not added its export graph yet
        name = "nograph"
        _export_graph = PreTrainedPolicy._export_graph

    config = act_config(image=False)
    with pytest.raises(
        ValueError, match=r"'nograph' policy cannot be exported to onnx.*Policies that export.*act.*diffusion"
    ):
        export_policy(NoGraph(config, dataset_stats=_stats(config)), format="onnx", output=tmp_path)


def test_inputs_that_do_not_match_name_the_key(exports):
    _, folder = exports("act-torchscript")
    model = ExportedModel(folder)
    good = {
        "observation.state": np.zeros((1, 4), np.float32),
        "observation.environment_state": np.zeros((1, 3), np.float32),
    }
    assert model(good).shape == (1, 5, 2)
    with pytest.raises(KeyError, match="needs input 'observation.environment_state' float32 \\(batch, 3\\)"):
        model({"observation.state": good["observation.state"]})
    with pytest.raises(
        ValueError,
        match="Input 'observation.state' is float32 \\(1, 5\\); the exported model takes float32 \\(batch, 4\\)",
    ):
        model({**good, "observation.state": np.zeros((1, 5), np.float32)})
    with pytest.raises(KeyError, match="The observation has no 'observation.environment_state'"):
        load_exported(folder).select_action({"observation.state": np.zeros(4, np.float32)})


def test_onnxruntime_threads_sleep_when_the_process_asks_for_passive_waiting(exports, monkeypatch):
    _, folder = exports("actimage-onnx")  # any ONNX export: the round trip's (no export of its own)
    entry = "session.intra_op.allow_spinning"
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    assert ExportedModel(folder)._session.get_session_options().get_session_config_entry(entry) == "0"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    options = ExportedModel(folder)._session.get_session_options()
    with pytest.raises(RuntimeError, match="does not have configuration"):  # ONNX Runtime's default: spin
        options.get_session_config_entry(entry)


def test_missing_runtime_names_the_extra(exports, monkeypatch):
    _, folder = exports("act-int8")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'lerobot\[export\]'"):
        load_exported(folder)


def test_deploy_and_policy_server_serve_an_onnx_export(exports):
    from lerobot.async_inference.policy_server import PolicyServer, load_policy
    from lerobot.async_inference.robot_client import RemotePredictor
    from lerobot.robots.myrobot import MyRobot, MyRobotConfig
    from lerobot.scripts.deploy import deploy_policy

    policy, folder = exports("diffusion-onnx")
    served = load_policy(str(folder), backend="onnxruntime")
    assert type(served).__name__ == "ExportedPolicy" and served.config.type == "diffusion"
    with pytest.raises(ValueError, match="--policy.backend=onnxruntime"):
        load_policy(str(folder), backend="torch")

    robot = MyRobot(
        MyRobotConfig(id="export", max_speed_deg_s=1e7, joints=["joint_1", "joint_2", "joint_3", "gripper"])
    )
    report = deploy_policy(served, robot, safety_checks=True, control_frequency=200, max_steps=6)
    assert report.steps == 6 and not robot.is_connected

    server = PolicyServer(served, port=0).start()
    try:
        chunk = RemotePredictor(f"127.0.0.1:{server.port}").predict_chunk(
            {"observation.state": np.ones(4, np.float32)}
        )
    finally:
        server.stop()
    assert chunk.shape == (4, 4) and np.isfinite(chunk).all()


def test_cli_exports_with_dataset_parity_and_refuses_with_numbers(tmp_path, capsys):
    from tests.guide._guideb_fixtures import act_checkpoint, pusht_dataset

    from lerobot.async_inference.policy_server import load_policy
    from lerobot.scripts.export import main

    checkpoint = act_checkpoint("pusht_dataset")
    with pytest.raises(
        ValueError, match="--policy.backend=onnxruntime runs an exported model.*lerobot-export"
    ):
        load_policy(str(checkpoint), backend="onnxruntime")
    out = tmp_path / "ts"
    args = [f"--policy.path={checkpoint}", "--format=torchscript", f"--output={out}", "--n_observations=4"]
    assert main([*args, "--dataset.repo_id=lerobot/pusht", f"--dataset.root={pusht_dataset()}"]) == 0
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["parity"]["observations_source"].startswith("dataset lerobot/pusht")
    assert meta["parity"]["observations"] == 4 and meta["parity"]["passed"]
    assert "Parity over 4 observations" in capsys.readouterr().out

    refused = [
        f"--policy.path={checkpoint}",
        "--format=int8",
        f"--output={tmp_path / 'q'}",
        "--n_observations=2",
        "--int8_tolerance=1e-9",
    ]
    assert main(refused) == 1
    err = capsys.readouterr().err
    assert "Refused: the int8 export" in err and "Largest difference" in err and "tolerance 1e-09" in err
    assert list((tmp_path / "q").iterdir()) == []  # no model, no metadata, no temporary folder
