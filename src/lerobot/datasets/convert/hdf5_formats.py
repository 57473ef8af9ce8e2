"""Readers for the HDF5 robot-learning formats: robomimic, D4RL and ALOHA.

Layouts (as the formats' own tools write them):
  - robomimic: one file, ``data/demo_N/{obs/<key>, actions, rewards, dones}``; ``data`` carries an
    ``env_args`` JSON attribute whose ``env_name`` names the task.
  - D4RL: one file of flat arrays over all steps, ``observations, actions, rewards, terminals,
    timeouts``; an episode ends at the first step whose terminal or timeout flag is set.
  - ALOHA: one file per episode, ``observations/{qpos, qvel, effort, images/<cam>}`` and ``action``;
    cameras are raw (n, H, W, 3) uint8 or, when recorded with compression, JPEG/PNG bytes per step.

Camera arrays (4-D uint8) become ``observation.images.<key>``, the other observations are
concatenated into ``observation.state`` (key order sorted, so it is stable across episodes).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lerobot.datasets.convert.common import Episode, decode_image
from lerobot.datasets.utils import DatasetError


def _h5py():
    try:
        import h5py
    except ImportError as e:
        raise DatasetError("Reading HDF5 inputs needs h5py: pip install h5py") from e
    return h5py


def _open(path: Path):
    h5py = _h5py()
    if not Path(path).is_file():
        raise DatasetError(f"{path} does not exist or is not a file.")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise DatasetError(f"{path} is not a readable HDF5 file ({e}).") from e


def _need(group, key: str, path: Path, fmt: str):
    if key not in group:
        raise DatasetError(
            f"{path}: '{f'{group.name}/{key}'.lstrip('/')}' is missing; a {fmt} file must have it "
            f"(found {sorted(group.keys())})."
        )
    return group[key]


def _is_camera(arr: np.ndarray) -> bool:
    return arr.ndim == 4 and arr.dtype == np.uint8 and arr.shape[-1] in (1, 3)


def _split_obs(
    obs: dict[str, np.ndarray],
) -> tuple[np.ndarray | None, list[str] | None, dict[str, np.ndarray]]:
    """Cameras apart; every low-dimensional observation concatenated into one state vector."""
    images = {k: v for k, v in obs.items() if _is_camera(v)}
    parts, names = [], []
    for key in sorted(k for k in obs if k not in images):
        flat = np.asarray(obs[key], np.float32).reshape(len(obs[key]), -1)
        parts.append(flat)
        names += [f"{key}_{i}" for i in range(flat.shape[1])] if flat.shape[1] > 1 else [key]
    state = np.concatenate(parts, axis=1) if parts else None
    return state, names if parts else None, images


def read_robomimic(path: Path) -> Iterator[Episode]:
    with _open(path) as f:
        data = _need(f, "data", path, "robomimic")
        env_name = None
        if "env_args" in data.attrs:
            try:
                env_name = json.loads(data.attrs["env_args"]).get("env_name")
            except (TypeError, ValueError) as e:
                raise DatasetError(f"{path}: data.attrs['env_args'] is not JSON ({e}).") from e
        demos = sorted((k for k in data if k.startswith("demo_")), key=lambda k: int(k.split("_")[1]))
        if not demos:
            raise DatasetError(f"{path}: 'data' holds no demo_N groups; is this a robomimic file?")
        for name in demos:
            demo = data[name]
            obs_group = _need(demo, "obs", path, "robomimic")
            state, names, images = _split_obs({k: obs_group[k][()] for k in obs_group})
            yield Episode(
                action=_need(demo, "actions", path, "robomimic")[()],
                state=state,
                state_names=names,
                images=images,
                reward=demo["rewards"][()] if "rewards" in demo else None,
                done=demo["dones"][()] if "dones" in demo else None,
                task=env_name,
            )


def read_d4rl(path: Path) -> Iterator[Episode]:
    with _open(path) as f:
        obs = _need(f, "observations", path, "D4RL")[()]
        actions = _need(f, "actions", path, "D4RL")[()]
        rewards = f["rewards"][()] if "rewards" in f else None
        terminals = f["terminals"][()].astype(bool) if "terminals" in f else np.zeros(len(actions), bool)
        timeouts = f["timeouts"][()].astype(bool) if "timeouts" in f else np.zeros(len(actions), bool)
    n = len(actions)
    for key, arr in (("observations", obs), ("terminals", terminals), ("timeouts", timeouts)):
        if len(arr) != n:
            raise DatasetError(f"{path}: '{key}' has {len(arr)} rows but 'actions' has {n}.")
    ends = np.flatnonzero(terminals | timeouts) + 1
    bounds = np.unique(np.concatenate([[0], ends, [n]]))
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        yield Episode(
            action=actions[lo:hi],
            state=np.asarray(obs[lo:hi], np.float32).reshape(hi - lo, -1),
            reward=rewards[lo:hi] if rewards is not None else None,
            done=terminals[lo:hi],
        )


def read_aloha(path: Path) -> Iterator[Episode]:
    path = Path(path)
    files = (
        [path]
        if path.is_file()
        else sorted(path.glob("*.hdf5"), key=_natural) + sorted(path.glob("*.h5"), key=_natural)
    )
    if not files:
        raise DatasetError(f"{path}: no ALOHA episode files (*.hdf5) found.")
    for file in files:
        with _open(file) as f:
            obs = _need(f, "observations", file, "ALOHA")
            images = {}
            if "images" in obs:
                for cam in obs["images"]:
                    raw = obs["images"][cam][()]
                    images[cam] = raw if _is_camera(raw) else np.stack([decode_image(bytes(b)) for b in raw])
            extra = {
                f"observation.{k}": obs[k][()].astype(np.float32) for k in ("qvel", "effort") if k in obs
            }
            yield Episode(
                action=_need(f, "action", file, "ALOHA")[()],
                state=_need(obs, "qpos", file, "ALOHA")[()].astype(np.float32),
                images=images,
                extra=extra,
                task=f.attrs.get("task") if isinstance(f.attrs.get("task"), str) else None,
            )


def _natural(p: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]
