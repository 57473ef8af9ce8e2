"""Feature and normalisation vocabulary shared by datasets, policies and checkpoints.

A policy sees its inputs and outputs as ``{name: PolicyFeature(type, shape)}``; ``config.json``
stores them as ``{"observation.state": {"type": "STATE", "shape": [6]}, ...}`` (enum *names* as
strings), exactly as LeRobot 0.6 writes them, so checkpoints move freely between the two libraries.
Camera shapes are channel-first ``(C, H, W)`` here, while dataset metadata lists them ``(H, W, C)``;
:func:`dataset_to_policy_features` does that conversion in the one place it happens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

OBS_STATE = "observation.state"
OBS_ENV_STATE = "observation.environment_state"
OBS_IMAGE_PREFIX = "observation.image"  # matches "observation.image" and "observation.images.<cam>"
ACTION = "action"
REWARD = "next.reward"


class FeatureType(str, Enum):
    """What a feature *is*; a policy's ``normalization_mapping`` is keyed by these names."""

    STATE = "STATE"
    VISUAL = "VISUAL"
    ENV = "ENV"
    ACTION = "ACTION"
    REWARD = "REWARD"
    LANGUAGE = "LANGUAGE"


class NormalizationMode(str, Enum):
    """How a feature is scaled before the network sees it (eps = 1e-8 everywhere).

    MEAN_STD: ``(x - mean) / (std + eps)``; MIN_MAX: ``2 (x - min) / (max - min) - 1``;
    QUANTILES / QUANTILE10: MIN_MAX with ``q01``/``q99`` resp. ``q10``/``q90``; IDENTITY: unchanged.
    """

    MIN_MAX = "MIN_MAX"
    MEAN_STD = "MEAN_STD"
    IDENTITY = "IDENTITY"
    QUANTILES = "QUANTILES"
    QUANTILE10 = "QUANTILE10"


class RTCAttentionSchedule(str, Enum):
    """How real-time chunking weighs the previous chunk's actions past the inference delay (see
    :mod:`lerobot.policies.rtc.modeling_rtc`)."""

    ZEROS = "ZEROS"
    ONES = "ONES"
    LINEAR = "LINEAR"
    EXP = "EXP"


@dataclass
class PolicyFeature:
    """One input or output of a policy: its type and its per-frame shape (images are ``(C, H, W)``)."""

    type: FeatureType
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        self.type = FeatureType(self.type)
        self.shape = tuple(int(s) for s in self.shape)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type.value, "shape": list(self.shape)}


def infer_feature_type(name: str, shape: Sequence[int] = ()) -> FeatureType:
    """The type the user guide implies by a feature's name (``observation.images.top`` -> VISUAL)."""
    if name.startswith(OBS_IMAGE_PREFIX):
        return FeatureType.VISUAL
    if name == OBS_ENV_STATE:
        return FeatureType.ENV
    if name == ACTION or name.startswith(ACTION + "."):
        return FeatureType.ACTION
    if name in (REWARD, "reward"):
        return FeatureType.REWARD
    if name.startswith("observation."):
        return FeatureType.VISUAL if len(shape) == 3 else FeatureType.STATE
    raise ValueError(
        f"Cannot tell the type of feature {name!r} from its name: use observation.state, "
        "observation.environment_state, observation.images.<camera>, action, or give a PolicyFeature."
    )


def shapes_to_policy_features(shapes: Mapping[str, Sequence[int]]) -> dict[str, PolicyFeature]:
    """The guide's ``input_shapes={"observation.state": [14], ...}`` -> ``{name: PolicyFeature}``."""
    return {
        name: PolicyFeature(infer_feature_type(name, shape), tuple(shape)) for name, shape in shapes.items()
    }


def as_policy_feature(value: Any) -> PolicyFeature:
    """Accept a PolicyFeature or its JSON form ``{"type": "STATE", "shape": [6]}``."""
    if isinstance(value, PolicyFeature):
        return value
    if isinstance(value, Mapping):
        return PolicyFeature(FeatureType(value["type"]), tuple(value["shape"]))
    raise TypeError(f"Expected a PolicyFeature or {{'type': ..., 'shape': [...]}}, got {value!r}.")


def is_empty_camera_slot(name: str) -> bool:
    """LeRobot lists a VLA's padding cameras (``empty_cameras``) as ``observation.images.empty_camera_<i>``:
    features of the policy that no dataset, env or robot provides."""
    return name.startswith("observation.images.empty_camera_")


def dataset_to_policy_features(dataset_features: Mapping[str, Mapping[str, Any]]) -> dict[str, PolicyFeature]:
    """``info.json["features"]`` -> policy features.

    Images and videos become VISUAL with a channel-first shape (``(H, W, C)`` is transposed when the
    feature's ``names`` say the last axis is the channel, or when the last axis is 1, 3 or 4 and the
    first is not); ``observation.environment_state`` -> ENV, other ``observation.*`` -> STATE,
    ``action`` -> ACTION, ``next.reward`` -> REWARD. Bookkeeping columns (``timestamp``, ``index``,
    ``task_index``, ...) are not policy features and are left out.
    """
    out: dict[str, PolicyFeature] = {}
    for key, ft in dataset_features.items():
        shape = tuple(int(s) for s in ft.get("shape", ()))
        dtype = ft.get("dtype")
        if dtype in ("image", "video"):
            if len(shape) != 3:
                raise ValueError(f"Camera feature {key!r} must have a 3-D shape, got {shape}.")
            names = list(ft.get("names") or [])
            channel_last = (
                names[2] in ("channel", "channels")
                if len(names) == 3
                else shape[2] in (1, 3, 4) and shape[0] not in (1, 3, 4)
            )
            if channel_last:
                shape = (shape[2], shape[0], shape[1])
            out[key] = PolicyFeature(FeatureType.VISUAL, shape)
        elif key == OBS_ENV_STATE:
            out[key] = PolicyFeature(FeatureType.ENV, shape)
        elif key.startswith("observation.") and dtype != "string":
            out[key] = PolicyFeature(FeatureType.STATE, shape)
        elif key == ACTION:
            out[key] = PolicyFeature(FeatureType.ACTION, shape)
        elif key == REWARD:
            out[key] = PolicyFeature(FeatureType.REWARD, shape)
    return out
