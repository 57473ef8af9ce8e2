"""Env observations -> policy inputs: the one renaming step to dataset names, then batched torch tensors.

``make_env`` returns each simulator's own observation keys (as gym-aloha / gym-pusht and LeRobot do):
``agent_pos``, ``environment_state``, ``pixels`` (one image, or a dict of cameras). Whatever hands
them to a policy or a dataset -- ``lerobot-eval``, training's evaluation, expert recording -- goes
through :func:`dataset_observation` (or :func:`preprocess_observation`, which calls it), the only
place that maps them onto dataset feature names:

============================ =========================================
env key                      dataset key
============================ =========================================
``agent_pos``                ``observation.state``
``environment_state``        ``observation.environment_state``
``pixels`` (one image)       ``observation.image``
``pixels[<camera>]`` (dict)  ``observation.images.<camera>``
``task`` (language tasks)    ``task`` (the instruction string, kept as text)
============================ =========================================

Keys that are already dataset names pass through unchanged, so applying the step twice is harmless.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

import numpy as np
import torch

from lerobot.envs.configs import ENV_TO_DATASET_KEYS, OBS_IMAGE, OBS_IMAGES

PIXELS = "pixels"

V = TypeVar("V")


def _renamed(observation: Mapping[str, V]) -> Iterator[tuple[str, V, bool]]:
    """``(dataset key, value, is_image)`` for each entry (cameras of a ``pixels`` dict one by one)."""
    for key, value in observation.items():
        if key == PIXELS and isinstance(value, Mapping):
            for camera, image in value.items():
                yield f"{OBS_IMAGES}.{camera}", image, True
        else:
            name = ENV_TO_DATASET_KEYS.get(key, key)
            yield name, value, name == OBS_IMAGE or name.startswith(OBS_IMAGES + ".")


def dataset_keys(observation: Mapping[str, V]) -> dict[str, V]:
    """Rename env keys to dataset names, values untouched (works on observations and on ``spaces.Dict``)."""
    return {name: value for name, value, _ in _renamed(observation)}


def _is_text(value: Any) -> bool:
    """A string, or a vector env's tuple of strings (the ``task`` instruction of a language task)."""
    if isinstance(value, str):
        return True
    return isinstance(value, tuple | list) and bool(value) and all(isinstance(v, str) for v in value)


def dataset_observation(observation: Mapping[str, Any]) -> dict[str, Any]:
    """An env observation (one env or a vector of envs) as a dataset frame: dataset names, float32
    vectors, uint8 H x W x C images, the ``task`` instruction as text -- what
    ``LeRobotDataset.add_frame`` (which stores a frame's own ``task``) and the policies expect."""
    return {
        name: value if _is_text(value) else np.asarray(value, dtype=np.uint8 if is_image else np.float32)
        for name, value, is_image in _renamed(observation)
    }


def _is_image(value: np.ndarray) -> bool:
    return value.dtype == np.uint8 and value.ndim in (3, 4) and value.shape[-1] in (1, 3)


def preprocess_observation(observation: Mapping[str, Any]) -> dict[str, Any]:
    """Env observations (one env or a vector of envs) -> dataset-named torch tensors with a batch dim.

    Env keys are renamed first (:func:`dataset_observation`); images (H x W x C uint8, or
    N x H x W x C) become float32 N x C x H x W in [0, 1]; text (the ``task`` instruction) becomes a
    list of strings, one per env, as in a dataset batch; everything else becomes float32 with a
    leading batch dim (added when the input has none).
    """
    out: dict[str, Any] = {}
    for key, value in dataset_keys(observation).items():
        if _is_text(value):
            out[key] = [value] if isinstance(value, str) else list(value)
            continue
        arr = np.asarray(value)
        if _is_image(arr):
            img = torch.from_numpy(np.ascontiguousarray(arr))
            if img.ndim == 3:
                img = img.unsqueeze(0)
            out[key] = img.permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
        elif arr.dtype.kind in "fiub":
            t = torch.from_numpy(np.ascontiguousarray(arr)).to(torch.float32)
            out[key] = t.unsqueeze(0) if t.ndim <= 1 else t
        else:
            raise TypeError(
                f"Observation {key!r} has unsupported dtype {arr.dtype}; expected numbers or uint8 images."
            )
    return out


def env_tasks(env: Any) -> list[str] | None:
    """The language instruction of each sub-env of a vector env, or None when the envs state none.

    An env states its instruction as a ``task_description`` attribute (a string, which may change
    at every reset, e.g. "pick up the red cube"); eval puts it in the policy's observation as
    ``"task"``, as LeRobotDataset frames carry it.
    """
    import warnings

    envs = getattr(env, "envs", None)  # SyncVectorEnv: look before asking, no error path
    if envs is not None and not hasattr(envs[0].unwrapped, "task_description"):
        return None
    try:
        with warnings.catch_warnings():  # AsyncVectorEnv reports a missing attribute as a warning too
            warnings.simplefilter("ignore")
            tasks = list(env.get_attr("task_description"))
    except AttributeError:
        return None
    if not all(isinstance(t, str) for t in tasks):
        raise TypeError(f"task_description must be a string in every env, got {tasks!r}.")
    return tasks
