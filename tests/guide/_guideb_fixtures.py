"""Shared setup of the guide-block tests G16..G43 (see tests/guide/README.md).

The guide loads Hub checkpoints and datasets (``lerobot/act_pusht``, ``lerobot/pusht``); the only
substitution allowed is a local folder holding the same kind of thing made by this project. The
checkpoints here are tiny ACT policies (one layer, 32 wide; ResNet-18 without downloaded weights)
whose features are what the block feeds them, saved with ``save_pretrained`` once per test process
and shared by the modules that import them. Shell blocks run their commands through
:func:`run_shell_command`, i.e. the venv's console scripts in a subprocess.
"""

from __future__ import annotations

import functools
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.policies.conftest import TINY_ACT

from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.act.configuration_act import ACTConfig
from lerobot.policies.act.modeling_act import ACTPolicy

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv's console scripts (lerobot-eval, ...)
_SCRATCH = Path(tempfile.mkdtemp(prefix="lerobot_guide_"))


def _vector(dim: int) -> PolicyFeature:
    return PolicyFeature(FeatureType.STATE, (dim,))


# name -> (state dim, {camera feature: (C, H, W)}, action dim, stats scale of state/action)
CHECKPOINTS: dict[str, tuple[int, dict[str, tuple[int, int, int]], int, float]] = {
    # G16: MyRobot's six arm joints and its "front" camera (resolution (64, 48) in the test's config)
    "myrobot": (6, {"observation.images.front": (3, 48, 64)}, 6, 1.0),
    # G20: PushT's agent position (pixels, 0..512) and its 96x96 image, fed as observation.images.top
    "pusht": (2, {"observation.images.top": (3, 96, 96)}, 2, 100.0),
    # G17/G25/G32: ALOHA's 14 joints; the sim's top camera made 48x64 (--env.image_size)
    "aloha": (14, {"observation.images.top": (3, 48, 64)}, 14, 1.0),
    # G32: ALOHA's 14 joints with a "front" camera, as the block's dummy input (made 48x64)
    "aloha_front": (14, {"observation.images.front": (3, 48, 64)}, 14, 1.0),
    # G36/G42: the tiny PushT-like dataset below (state 2, observation.image 32x32)
    "pusht_dataset": (2, {"observation.image": (3, 32, 32)}, 2, 100.0),
    # G18: LIBERO's features (state 8, two 256x256 cameras, 7-D action) as in its config
    "libero": (
        8,
        {"observation.images.image": (3, 256, 256), "observation.images.image2": (3, 256, 256)},
        7,
        1.0,
    ),
}


def tiny_act(name: str) -> ACTPolicy:
    """An untrained tiny ACT with plausible normalisation statistics for the features of ``name``."""
    state_dim, cameras, action_dim, scale = CHECKPOINTS[name]
    inputs = {"observation.state": _vector(state_dim)}
    inputs.update({key: PolicyFeature(FeatureType.VISUAL, shape) for key, shape in cameras.items()})
    config = ACTConfig(
        input_features=inputs,
        output_features={"action": PolicyFeature(FeatureType.ACTION, (action_dim,))},
        **TINY_ACT,
    )
    stats = {
        "observation.state": {"mean": np.full(state_dim, scale), "std": np.full(state_dim, scale)},
        "action": {"mean": np.full(action_dim, scale), "std": np.full(action_dim, scale)},
    }
    for key in cameras:
        stats[key] = {"mean": np.full((3, 1, 1), 0.5), "std": np.full((3, 1, 1), 0.25)}
    torch.manual_seed(0)
    return ACTPolicy(config, dataset_stats=stats)


@functools.cache
def act_checkpoint(name: str) -> Path:
    """A checkpoint folder (``config.json``, ``model.safetensors``, processor files), made once per process."""
    return tiny_act(name).save_pretrained(_SCRATCH / f"act_{name}")


@functools.cache
def tdmpc_metaworld_checkpoint() -> Path:
    """An untrained tiny TD-MPC for Meta-World's features (state 4, a 64x64 ``observation.image``,
    4-D action in [-1, 1]), standing for ``lerobot/tdmpc_metaworld``; MPPI planning kept, CPU-sized."""
    from lerobot.policies.tdmpc.configuration_tdmpc import TDMPCConfig
    from lerobot.policies.tdmpc.modeling_tdmpc import TDMPCPolicy

    config = TDMPCConfig(
        input_features={
            "observation.state": _vector(4),
            "observation.image": PolicyFeature(FeatureType.VISUAL, (3, 64, 64)),
        },
        output_features={"action": PolicyFeature(FeatureType.ACTION, (4,))},
        latent_dim=16,
        mlp_dim=32,
        image_encoder_hidden_dim=8,
        state_encoder_hidden_dim=32,
        horizon=3,
        n_gaussian_samples=16,
        n_pi_samples=4,
        n_elites=4,
        cem_iterations=2,
    )
    stats = {
        "observation.state": {"min": np.full(4, -1.0), "max": np.full(4, 1.0)},
        "action": {"min": np.full(4, -1.0), "max": np.full(4, 1.0)},
        "observation.image": {"mean": np.full((3, 1, 1), 0.5), "std": np.full((3, 1, 1), 0.25)},
    }
    torch.manual_seed(0)
    return TDMPCPolicy(config, dataset_stats=stats).save_pretrained(_SCRATCH / "tdmpc_metaworld")


@functools.cache
def pusht_dataset() -> Path:
    """A PushT-like dataset (2 episodes of 12 frames, 32x32 video), standing for ``lerobot/pusht``."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = _SCRATCH / "pusht_dataset"
    features = {
        "observation.state": {"dtype": "float32", "shape": (2,), "names": ["x", "y"]},
        "observation.image": {
            "dtype": "video",
            "shape": (32, 32, 3),
            "names": ["height", "width", "channels"],
        },
        "action": {"dtype": "float32", "shape": (2,), "names": ["x", "y"]},
    }
    ds = LeRobotDataset.create("lerobot/pusht", fps=10, features=features, root=root, robot_type="2d pointer")
    rng = np.random.default_rng(0)
    for _ in range(2):
        start = rng.uniform(100, 400, 2)
        for t in range(12):
            state = (start + 5 * t).astype(np.float32)
            image = np.zeros((32, 32, 3), np.uint8)
            image[int(state[1]) % 32, int(state[0]) % 32] = 255
            ds.add_frame({"observation.state": state, "observation.image": image, "action": state + 5},
                         task="Push the T-shaped block onto the T-shaped target.")  # fmt: skip
        ds.save_episode()
    ds.finalize()
    return root


@pytest.fixture
def in_tmp_dir(tmp_path, monkeypatch) -> Path:
    """Run the block in an empty folder: its relative paths (``./eval_results``, ``policy.onnx``) land there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def headless_plots(monkeypatch) -> None:
    """``plt.show()`` returns at once (no display in tests)."""
    import matplotlib

    matplotlib.use("Agg")


def run_shell_command(command: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    """One command of a shell block, as a user's shell would run it (backslash continuations joined).

    The first word is a console script of this venv (``lerobot-eval``); it runs in a subprocess that
    inherits this process's environment (PYTHONPATH, HF_LEROBOT_HOME, HF_HUB_OFFLINE) and folder.
    """
    words = shlex.split(command.replace("\\\n", " "), comments=True)
    program = BIN / words[0]
    argv = [str(program) if program.exists() else words[0], *words[1:]]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=dict(os.environ))
    if check and result.returncode != 0:
        raise AssertionError(
            f"{words[0]} exited with {result.returncode}\n--- stdout\n{result.stdout[-3000:]}\n"
            f"--- stderr\n{result.stderr[-3000:]}"
        )
    return result
