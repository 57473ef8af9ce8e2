"""Shared test setup: offline Hub, headless rendering, a private HF_LEROBOT_HOME, fixture paths."""

import json
import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("PYNPUT_BACKEND", "dummy")

TESTS_DIR = Path(__file__).parent
FIXTURES = TESTS_DIR / "fixtures"
PEER_VIDEO = FIXTURES / "peer_v30_video"
SHARED_FIXTURES = TESTS_DIR.parent.parent / "shared" / "fixtures"


@pytest.fixture(autouse=True)
def _private_lerobot_home(tmp_path_factory, monkeypatch):
    """Never read or write the user's real cache from tests."""
    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path_factory.mktemp("lerobot_home")))


@pytest.fixture
def one_torch_thread():
    """Tiny models run fastest on one intra-op thread, and the test machine's two cores are shared (a
    second thread makes each small op far slower there). Test modules opt in with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def peer_expected() -> dict:
    return json.loads((FIXTURES / "peer_v30_video.expected.json").read_text())
