"""Fixtures for the guide-block tests G1..G15 (tests/guide/test_gNN_*.py; see tests/guide/README.md).

The guide loads Hub datasets (``lerobot/aloha_mobile_cabinet``, ``lerobot/pusht``); the only
substitution allowed is a local folder holding the same kind of dataset, made by this project. The
datasets here are written once per session with ``LeRobotDataset.create`` (the project's own writer),
tiny (a few episodes of a few frames, small images), and each test gets a private copy, because the
guide's editing blocks write new datasets next to the one they edit.

``gpu`` tests are skipped without CUDA and ``network`` tests unless ``LEROBOT_TEST_NETWORK=1``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from tests.guide._guidea_helpers import REPO_ROOT
from tests.hub_server import serve_online


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("gpu"):
        import torch

        if not torch.cuda.is_available():
            pytest.skip("needs a CUDA device (marked gpu; runs where one is present)")
    if item.get_closest_marker("network") and os.environ.get("LEROBOT_TEST_NETWORK") != "1":
        pytest.skip("needs the network (marked network; run with LEROBOT_TEST_NETWORK=1)")


def _write_dataset(
    root: Path,
    repo_id: str,
    state_dim: int,
    cameras: dict[str, tuple[int, int, int]],
    episodes: int,
    frames: int,
    seed: int,
    fps: int = 30,
) -> None:
    """A dataset like the Hub one it stands for: same state/action sizes, small camera images."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    features = {
        "observation.state": {"dtype": "float32", "shape": (state_dim,)},
        "action": {"dtype": "float32", "shape": (state_dim,)},
        **{key: {"dtype": "video", "shape": shape} for key, shape in cameras.items()},
    }
    rng = np.random.default_rng(seed)
    ds = LeRobotDataset.create(repo_id, fps=fps, features=features, root=root, robot_type="aloha")
    for _ in range(episodes):
        phase = rng.uniform(0, 2 * np.pi, state_dim)
        for t in range(frames):
            state = np.sin(phase + t / 5).astype(np.float32)
            frame = {"observation.state": state, "action": np.roll(state, 1)}
            for key, shape in cameras.items():
                frame[key] = rng.integers(0, 255, shape, dtype=np.uint8)
            ds.add_frame(frame, task="open the cabinet")
        ds.save_episode()
    ds.finalize()


@pytest.fixture(scope="session")
def _guidea_datasets(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("guidea_datasets")
    aloha_cams = {"observation.images.front": (24, 32, 3)}
    specs = {
        # lerobot/aloha_mobile_cabinet and _chair: 14 joints (two 7-DoF arms), a camera.
        "aloha_mobile_cabinet": dict(state_dim=14, cameras=aloha_cams, episodes=3, frames=12, seed=0),
        "aloha_mobile_chair": dict(state_dim=14, cameras=aloha_cams, episodes=2, frames=12, seed=1),
        # lerobot/pusht: 2-D agent position and action, a camera; plus the camera G6 removes.
        "pusht": dict(
            state_dim=2,
            cameras={"observation.image": (24, 24, 3), "observation.unused_camera": (24, 24, 3)},
            episodes=12,
            frames=10,
            seed=2,
            fps=10,
        ),
    }
    roots = {}
    for name, spec in specs.items():
        roots[name] = base / name
        _write_dataset(roots[name], f"lerobot/{name}", **spec)
    return roots


@pytest.fixture
def guidea_datasets(_guidea_datasets, tmp_path) -> dict[str, str]:
    """A private copy of each stand-in dataset: ``{"aloha_mobile_cabinet": "/abs/folder", ...}``."""
    copies = {}
    for name, root in _guidea_datasets.items():
        shutil.copytree(root, tmp_path / "datasets" / name)
        copies[name] = str(tmp_path / "datasets" / name)
    return copies


@pytest.fixture
def guidea_cli_env(tmp_path) -> dict[str, str]:
    """Environment for the guide's shell commands: this checkout first on the path, offline, headless."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "src"), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env.update(HF_HUB_OFFLINE="1", WANDB_MODE="offline", MUJOCO_GL="egl", WANDB_DIR=str(tmp_path))
    return env


@pytest.fixture
def guidea_hub(monkeypatch):
    """The in-memory Hub of tests/hub_server.py, with the real client pointed at it and online."""
    yield from serve_online(monkeypatch)
