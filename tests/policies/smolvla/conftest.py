"""SmolVLA's tiny backbone folder and config (built in tests/policies/conftest.py) and a tiny language dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from tests.policies.conftest import SMOLVLA_IMAGE_HW, tiny_backbone_folder  # noqa: E402
from tests.policies.conftest import smolvla_config as tiny_config  # noqa: E402, F401

TASKS = ["pick up the red cube", "pick up the blue cube"]
IMAGE_HW = SMOLVLA_IMAGE_HW


def expected_train_batch(train: dict) -> dict:
    """The training batch of a reference ``.expected.json`` (its ``inputs["train_batch"]``), as tensors."""
    return {
        "observation.state": torch.tensor(train["observation.state"]),
        "observation.images.front": torch.tensor(train["observation.images.front"]),
        "action": torch.tensor(train["action_unnormalized"]),
        "task": train["task"],
    }


@pytest.fixture(scope="session")
def tiny_backbone() -> Path:
    """A SmolVLM config + word-level tokenizer, no weights: written once per session."""
    return tiny_backbone_folder()


def write_language_dataset(root: Path, episodes: int = 2, frames: int = 6):
    """Episodes alternating between TASKS, with a camera, a 3-D state and a 2-D action."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    features = {
        "observation.state": {"dtype": "float32", "shape": (3,), "names": None},
        "observation.images.front": {
            "dtype": "image",
            "shape": (*IMAGE_HW, 3),
            "names": ["height", "width", "channel"],
        },
        "action": {"dtype": "float32", "shape": (2,), "names": None},
    }
    ds = LeRobotDataset.create("test/lang", fps=10, features=features, root=root, use_videos=False)
    rng = np.random.default_rng(0)
    for ep in range(episodes):
        for _ in range(frames):
            ds.add_frame(
                {
                    "observation.state": rng.normal(size=3).astype(np.float32),
                    "observation.images.front": rng.integers(0, 255, (*IMAGE_HW, 3), dtype=np.uint8),
                    "action": rng.normal(size=2).astype(np.float32),
                },
                task=TASKS[ep % 2],
            )
        ds.save_episode()
    ds.finalize()
    return ds
