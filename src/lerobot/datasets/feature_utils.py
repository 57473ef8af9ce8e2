"""Robot <-> dataset: the one place where hardware keys become dataset feature names and back.

A robot declares ``observation_features`` such as ``{"shoulder_pan.pos": float, ..., "front":
(480, 640, 3)}`` and ``action_features`` ``{"shoulder_pan.pos": float, ...}``. A dataset stores

  - ``observation.state``:         float32 (n_joints,), names = the robot's float keys, in order
  - ``observation.images.<cam>``:  video (or image) (H, W, 3), one per camera
  - ``action``:                    float32 (n_actions,), names = the action keys, in order

so a policy trained on the dataset, and a replay of its actions, map back to the same robot keys.
"""

from __future__ import annotations

from typing import Any

import numpy as np

STATE = "observation.state"
ACTION = "action"
IMAGES_PREFIX = "observation.images."


def hw_to_dataset_features(
    observation_features: dict[str, Any], action_features: dict[str, Any], use_videos: bool = True
) -> dict[str, dict]:
    """Dataset features for ``LeRobotDataset.create`` from a robot's declared features."""
    joints = [k for k, v in observation_features.items() if not isinstance(v, tuple)]
    cameras = {k: v for k, v in observation_features.items() if isinstance(v, tuple)}
    features: dict[str, dict] = {}
    if joints:
        features[STATE] = {"dtype": "float32", "shape": (len(joints),), "names": joints}
    for cam, shape in cameras.items():
        if len(shape) != 3 or shape[2] not in (1, 3):
            raise ValueError(f"Camera '{cam}' declares shape {shape}; expected (height, width, 1 or 3).")
        features[IMAGES_PREFIX + cam] = {
            "dtype": "video" if use_videos else "image",
            "shape": tuple(shape),
            "names": ["height", "width", "channels"],
        }
    actions = list(action_features)
    features[ACTION] = {"dtype": "float32", "shape": (len(actions),), "names": actions}
    return features


def build_dataset_frame(
    features: dict[str, dict], observation: dict[str, Any], action: dict[str, Any]
) -> dict:
    """One ``add_frame`` dict from a robot observation and the action sent with it."""
    frame = build_observation_frame(features, observation)
    frame[ACTION] = _vector(action, features[ACTION]["names"], "action")
    return frame


def build_observation_frame(features: dict[str, dict], observation: dict[str, Any]) -> dict[str, Any]:
    """The observation half of a frame: what a policy reads at deploy time, keyed as in the dataset."""
    frame: dict[str, Any] = {}
    for key, ft in features.items():
        if key == STATE:
            frame[key] = _vector(observation, ft["names"], "observation")
        elif key.startswith(IMAGES_PREFIX):
            cam = key[len(IMAGES_PREFIX) :]
            if cam not in observation:
                raise KeyError(f"The observation has no camera '{cam}' (has {sorted(observation)}).")
            frame[key] = observation[cam]
    return frame


def action_from_vector(features: dict[str, dict], vector: np.ndarray) -> dict[str, float]:
    """A dataset/policy ``action`` vector -> the robot's action dict (for replay and deployment)."""
    names = features[ACTION]["names"]
    vector = np.asarray(vector, dtype=np.float64).reshape(-1)
    if len(vector) != len(names):
        raise ValueError(f"Action vector has {len(vector)} values but the dataset's actions are {names}.")
    return dict(zip(names, vector.tolist()))


def _vector(values: dict[str, Any], names: list[str], what: str) -> np.ndarray:
    missing = [n for n in names if n not in values]
    if missing:
        raise KeyError(f"The {what} lacks {missing}; it has {sorted(values)}.")
    return np.array([values[n] for n in names], dtype=np.float32)
