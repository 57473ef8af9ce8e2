"""Seeding, and saving / restoring every random generator a training run draws from.

The RNG file is LeRobot 0.6's ``rng_state.safetensors`` (keys ``py_rng_version``, ``py_rng_state``,
``np_rng_state_values``, ``np_rng_state_index``, ``np_rng_has_gauss``, ``np_rng_cached_gaussian``,
``torch_rng_state``, ``torch_cuda_rng_state``), so a resumed run continues the exact random streams
(dropout masks, VAE noise, augmentations) of the interrupted one.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

RNG_FILE = "rng_state.safetensors"


def set_seed(seed: int) -> None:
    """Seed python, numpy and torch (every CUDA device too)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds all CUDA devices


def get_rng_state() -> dict[str, torch.Tensor]:
    version, mt, gauss_next = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    assert np_name == "MT19937"
    state = {
        "py_rng_version": torch.tensor([version], dtype=torch.int64),
        "py_rng_state": torch.tensor(mt, dtype=torch.int64),
        "np_rng_state_values": torch.from_numpy(np_keys.astype(np.int64)),
        "np_rng_state_index": torch.tensor([np_pos], dtype=torch.int64),
        "np_rng_has_gauss": torch.tensor([np_has_gauss], dtype=torch.int64),
        # float64 (LeRobot writes float32): the cached value must come back bit-exact.
        "np_rng_cached_gaussian": torch.tensor([np_gauss], dtype=torch.float64),
        "torch_rng_state": torch.get_rng_state(),
    }
    if gauss_next is not None:
        state["py_rng_gauss_next"] = torch.tensor([gauss_next], dtype=torch.float64)
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["torch_cuda_rng_state"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, torch.Tensor]) -> None:
    gauss_next = state["py_rng_gauss_next"].item() if "py_rng_gauss_next" in state else None
    random.setstate(
        (
            int(state["py_rng_version"].item()),
            tuple(int(x) for x in state["py_rng_state"].tolist()),
            gauss_next,
        )
    )
    np.random.set_state(
        (
            "MT19937",
            state["np_rng_state_values"].numpy().astype(np.uint32),
            int(state["np_rng_state_index"].item()),
            int(state["np_rng_has_gauss"].item()),
            float(state["np_rng_cached_gaussian"].item()),
        )
    )
    torch.set_rng_state(state["torch_rng_state"])
    if "torch_cuda_rng_state" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["torch_cuda_rng_state"])


def save_rng_state(path: Path) -> None:
    save_file(get_rng_state(), str(path))


def load_rng_state(path: Path) -> None:
    set_rng_state(load_file(str(path)))


@contextmanager
def preserved_rng() -> Iterator[None]:
    """Run a block (validation, an evaluation rollout) without moving the training run's random streams."""
    state = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(state)
