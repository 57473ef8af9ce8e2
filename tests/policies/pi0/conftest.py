"""Tiny π0 / π0.5 policies (a few hundred thousand weights) and a word-level tokenizer: no download, no ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")

from tests.policies.conftest import PI_ACTION_DIM as ACTION_DIM  # noqa: E402
from tests.policies.conftest import PI_CHUNK as CHUNK  # noqa: E402
from tests.policies.conftest import PI_IMAGE as IMAGE  # noqa: E402
from tests.policies.conftest import PI_STATE_DIM as STATE_DIM  # noqa: E402
from tests.policies.conftest import PI_TINY_SIZES as TINY_SIZES  # noqa: E402, F401
from tests.policies.conftest import pi_config as tiny_config  # noqa: E402, F401
from tests.policies.conftest import pi_tokenizer_folder  # noqa: E402


def tiny_stats() -> dict[str, dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    stats = {}
    for name, dim in (("observation.state", STATE_DIM), ("action", ACTION_DIM)):
        low = -torch.rand(dim, generator=gen) - 0.5
        high = torch.rand(dim, generator=gen) + 0.5
        stats[name] = {"mean": (low + high) / 2, "std": (high - low) / 4, "q01": low, "q99": high}
    return stats


@pytest.fixture(scope="session")
def tokenizer_folder() -> Path:
    """A word-level tokenizer folder (``tiny_tokenizer``): written once per session."""
    return pi_tokenizer_folder()


@pytest.fixture
def make_policy(tokenizer_folder):
    """``make_policy(kind, **config_overrides)`` -> a tiny policy (seeded) with the tiny tokenizer."""

    def make(kind: str = "pi0", **overrides):
        from lerobot.policies.factory import get_policy_class
        from lerobot.policies.vla_common import load_tokenizer

        torch.manual_seed(0)
        policy = get_policy_class(kind)(tiny_config(kind, **overrides), dataset_stats=tiny_stats())
        policy.set_tokenizer(load_tokenizer(tokenizer_folder))
        return policy

    return make


def observation(batch: int = 2, seed: int = 1) -> dict:
    gen = torch.Generator().manual_seed(seed)
    return {
        "observation.state": torch.randn(batch, STATE_DIM, generator=gen),
        "observation.images.front": torch.rand(batch, *IMAGE, generator=gen),
        "task": ["pick up the red cube", "pick up the blue cube"][:batch],
    }


def training_batch(batch: int = 2, seed: int = 1) -> dict:
    gen = torch.Generator().manual_seed(seed + 100)
    return {**observation(batch, seed), "action": torch.randn(batch, CHUNK, ACTION_DIM, generator=gen)}
