"""``PreTrainedConfig``: the dataclass every policy config extends, and the registry behind ``--policy.type``.

A policy config is a plain dataclass registered by name::

    @PreTrainedConfig.register_subclass("act")
    @dataclass
    class ACTConfig(PreTrainedConfig): ...

``config.json`` is the dataclass as JSON with ``"type"`` first, features as
``{"type": "STATE", "shape": [6]}`` and enums by name -- the same file LeRobot 0.6 writes and reads.
Reading tolerates keys this version does not know (a warning names them), so checkpoints from newer
or older releases still load. Registered configs also accept the user guide's older spellings
(``input_shapes``/``output_shapes``, ``lr``, ``weight_decay``, ``input_normalization_modes``...), which
are translated once, at construction, into the canonical fields.

This module imports no torch, so ``--help`` and config parsing stay fast.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import warnings
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

from lerobot.configs.types import (
    ACTION,
    OBS_ENV_STATE,
    OBS_STATE,
    FeatureType,
    NormalizationMode,
    PolicyFeature,
    as_policy_feature,
    infer_feature_type,
    is_empty_camera_slot,
    shapes_to_policy_features,
)
from lerobot.optim.optimizers import AdamConfig, AdamWConfig, OptimizerPreset
from lerobot.optim.schedulers import SchedulePreset
from lerobot.utils.registry import Registry

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
# Config fields that name a file or folder to read. A checkpoint's own config.json may set them only
# to a Hub-style name (``ResNet18_Weights.IMAGENET1K_V1``, ``org/name``) or a path inside the checkpoint.
# A policy whose config names a tokenizer or VLM folder lists that field here too.
FILE_NAME_FIELDS = ("pretrained_backbone_weights",)
POLICY_CONFIGS: Registry[type[PreTrainedConfig]] = Registry("policy")

# Guide / pre-2025 spellings -> canonical field names (plain renames).
FIELD_ALIASES = {
    "lr": "optimizer_lr",
    "learning_rate": "optimizer_lr",
    "weight_decay": "optimizer_weight_decay",
    "lr_backbone": "optimizer_lr_backbone",
}


class CheckpointError(ValueError):
    """A checkpoint's own files name something outside the checkpoint folder (a stats file, weights)."""


def checkpoint_file(folder: Path, name: str, what: str) -> Path:
    """``folder / name`` for a file a checkpoint names itself, refused unless it stays inside ``folder``.

    A checkpoint from a stranger must not make us read another file (another run's statistics, a
    key on disk): absolute paths, ``~``, ``..`` and symlinks leading out of the folder are refused.
    """
    from lerobot.datasets.paths import resolve_inside

    if not isinstance(name, str) or not name:
        raise CheckpointError(f"{what} in {folder} must be a file name, found {name!r}.")
    return resolve_inside(folder, name, what="checkpoint", error=CheckpointError)


def _checked_file_names(folder: Path, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a checkpoint's config.json) with file names that are neither Hub-style names nor files
    inside ``folder`` set to None.

    Such a name is not followed: loading a checkpoint replaces the backbone by the checkpoint's own
    weights anyway, so the name is provenance only (and an absolute path written by a run that was
    given one on its command line stays loadable). A warning says what was dropped.
    """
    from lerobot.datasets.paths import is_repo_id, resolve_inside

    out = dict(data)
    for key in FILE_NAME_FIELDS:
        value = out.get(key)
        if value is None or is_repo_id(value):
            continue
        try:
            if resolve_inside(folder, value, what="checkpoint", error=CheckpointError).exists():
                continue
        except CheckpointError:
            pass
        warnings.warn(
            f"{folder / CONFIG_NAME}: {key}={value!r} points outside the checkpoint and is not followed "
            f"(set to None; the checkpoint's weights are used). Pass --policy.{key}=... to choose a file.",
            UserWarning,
            stacklevel=4,
        )
        out[key] = None
    return out


def auto_select_device() -> str:
    """cuda > mps > cpu."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _device_available(device: str) -> bool:
    import torch

    kind = device.split(":")[0]
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    return kind == "cpu"


@dataclass
class PreTrainedConfig:
    """Fields every policy has. Subclasses add their own and set ``normalization_mapping`` defaults."""

    n_obs_steps: int = 1
    """Observation frames the policy sees per decision."""
    input_features: dict[str, PolicyFeature] = field(default_factory=dict)
    """``{"observation.state": PolicyFeature(STATE, (14,)), "observation.images.top": ...}``."""
    output_features: dict[str, PolicyFeature] = field(default_factory=dict)
    """``{"action": PolicyFeature(ACTION, (14,))}``."""
    device: str | None = None
    """torch device; None picks cuda > mps > cpu (an unavailable stored device falls back likewise)."""
    use_amp: bool = False
    """Mixed precision in training and inference."""
    use_peft: bool = False
    """A LeRobot config.json key, kept so checkpoints round-trip; nothing here reads it."""
    push_to_hub: bool = True
    """A LeRobot config.json key, kept so checkpoints round-trip; nothing here reads it."""
    repo_id: str | None = None
    """A LeRobot config.json key, kept so checkpoints round-trip; nothing here reads it."""
    private: bool | None = None
    """A LeRobot config.json key, kept so checkpoints round-trip; nothing here reads it."""
    tags: list[str] | None = None
    """A LeRobot config.json key, kept so checkpoints round-trip; nothing here reads it."""
    license: str | None = None
    """A LeRobot config.json key, kept so checkpoints round-trip; nothing here reads it."""
    pretrained_path: str | None = None
    """Checkpoint folder or Hub repo id to start from (make_policy loads it)."""
    pretrained_revision: str | None = None
    """Hub revision (branch, tag or commit) of pretrained_path, when it is a Hub repo id."""

    # Per feature type ("STATE", "VISUAL", ...) how it is normalised; types not listed are IDENTITY.
    # Each policy declares it as a field among its own (where LeRobot's config.json has it).
    normalization_mapping = MappingProxyType({})

    type: ClassVar[str] = ""
    choices: ClassVar[Registry] = POLICY_CONFIGS
    missing_cameras_allowed: ClassVar[bool] = False
    """Whether the policy acts with some of its cameras absent (a VLA pads them), as long as one is there
    (:func:`missing_features`)."""

    def __post_init__(self) -> None:
        self.input_features = {k: as_policy_feature(v) for k, v in self.input_features.items()}
        self.output_features = {k: as_policy_feature(v) for k, v in self.output_features.items()}
        self.normalization_mapping = {
            FeatureType(k).value: NormalizationMode(v) for k, v in self.normalization_mapping.items()
        }
        if self.pretrained_path is not None:
            self.pretrained_path = str(self.pretrained_path)
        if self.device is None:
            self.device = auto_select_device()
        elif not _device_available(self.device):
            fallback = auto_select_device()
            logger.warning("Device %r is not available here; using %r.", self.device, fallback)
            self.device = fallback

    # ---- registry -------------------------------------------------------------------------------
    @classmethod
    def register_subclass(cls, name: str):
        """Decorator: register a config under ``--policy.type=<name>``; adds the guide's spellings."""

        def decorator(config_cls):
            _accept_guide_spellings(config_cls)
            return POLICY_CONFIGS.register(name)(config_cls)

        return decorator

    @classmethod
    def get_choice_class(cls, name: str) -> type[PreTrainedConfig]:
        return POLICY_CONFIGS.get(name)

    # ---- what the policy and the data loader need to know ---------------------------------------
    @property
    def robot_state_feature(self) -> PolicyFeature | None:
        return self.input_features.get(OBS_STATE)

    @property
    def env_state_feature(self) -> PolicyFeature | None:
        return self.input_features.get(OBS_ENV_STATE)

    @property
    def image_features(self) -> dict[str, PolicyFeature]:
        return {k: f for k, f in self.input_features.items() if f.type is FeatureType.VISUAL}

    @property
    def action_feature(self) -> PolicyFeature | None:
        return self.output_features.get(ACTION)

    @property
    def observation_delta_indices(self) -> list[int] | None:
        """Frame offsets of the observations in one training sample (None: the current frame only)."""
        return None

    @property
    def action_delta_indices(self) -> list[int] | None:
        """Frame offsets of the actions in one training sample (e.g. ``0..chunk_size-1``)."""
        return None

    @property
    def reward_delta_indices(self) -> list[int] | None:
        return None

    @property
    def lr(self) -> float | None:
        """The guide's name for ``optimizer_lr``."""
        return getattr(self, "optimizer_lr", None)

    @property
    def weight_decay(self) -> float | None:
        """The guide's name for ``optimizer_weight_decay``."""
        return getattr(self, "optimizer_weight_decay", None)

    def get_optimizer_preset(self) -> OptimizerPreset | None:
        """The optimizer this policy trains best with (e.g. ``AdamWConfig(lr=1e-5)``); None: AdamW defaults."""
        return None

    def adam_preset_from_fields(self, kind: type[AdamConfig] = AdamWConfig) -> AdamConfig:
        """``kind`` (Adam or AdamW) set from this config's ``optimizer_<setting>`` fields.

        Each setting of the preset (``lr``, ``betas``, ``eps``, ``weight_decay``, ``grad_clip_norm``) comes
        from the field ``optimizer_<setting>`` where the config has one (its config.json key) and keeps the
        preset's default where it has none, so every policy maps its fields to the optimizer by one rule.
        """
        values = {
            f.name: getattr(self, f"optimizer_{f.name}")
            for f in dataclasses.fields(kind)
            if hasattr(self, f"optimizer_{f.name}")
        }
        return kind(**values)

    def get_scheduler_preset(self) -> SchedulePreset | None:
        """The learning-rate schedule this policy trains best with; None: a constant lr."""
        return None

    def validate_features(self) -> None:
        """Raise a clear error when the features cannot feed this policy."""

    # ---- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for f in dataclasses.fields(self):
            out[f.name] = _to_json(getattr(self, f.name))
        return out

    def save_pretrained(self, save_directory: str | Path) -> Path:
        save_directory = Path(save_directory)
        save_directory.mkdir(parents=True, exist_ok=True)
        path = save_directory / CONFIG_NAME
        path.write_text(json.dumps(self.to_dict(), indent=4))
        return path

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **overrides: Any) -> PreTrainedConfig:
        """Build the registered config named by ``data["type"]`` (or ``cls``); unknown keys warn."""
        from lerobot.configs.parser import build

        data = {**data, **overrides}
        name = data.pop("type", None)
        target = cls
        if name is not None:
            if name not in POLICY_CONFIGS:
                import lerobot.policies  # noqa: F401  (registers the built-in policies)
            target = POLICY_CONFIGS.get(name)
            if cls is not PreTrainedConfig and not issubclass(target, cls):
                raise ValueError(f"config.json describes a {name!r} policy, not a {cls.type!r} one.")
        elif cls is PreTrainedConfig:
            raise ValueError("config.json has no 'type' key: cannot tell which policy it configures.")
        data = _translate_guide_spellings(target, data)
        known = {f.name for f in dataclasses.fields(target) if f.init}
        unknown = sorted(k for k in data if k not in known)
        if unknown:
            warn_unknown_keys(target, unknown)
        values = {k: v for k, v in data.items() if k in known}
        return build(target, values)

    @classmethod
    def from_pretrained(cls, pretrained_name_or_path: str | Path, **overrides: Any) -> PreTrainedConfig:
        """Read ``config.json`` from a checkpoint folder (or a Hub repo, see ``resolve_checkpoint_dir``)."""
        from lerobot.policies.pretrained import resolve_checkpoint_dir

        folder = resolve_checkpoint_dir(pretrained_name_or_path, **_hub_kwargs(overrides))
        path = folder / CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(f"No {CONFIG_NAME} in {folder}: not a policy checkpoint folder.")
        return cls.from_dict(_checked_file_names(folder, json.loads(path.read_text())), **overrides)


def warn_unknown_keys(target: type, unknown: list[str]) -> None:
    import warnings

    warnings.warn(
        f"{target.__name__}: ignoring unknown config keys {unknown} (written by another version?).",
        UserWarning,
        stacklevel=3,
    )


def _hub_kwargs(overrides: dict[str, Any]) -> dict[str, Any]:
    keys = ("revision", "cache_dir", "force_download", "token", "local_files_only")
    return {k: overrides.pop(k) for k in keys if k in overrides}


def _to_json(value: Any) -> Any:
    if isinstance(value, PolicyFeature):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # a nested section (rtc_config)
        return {f.name: _to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {(k.value if isinstance(k, Enum) else k): _to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    return value


# ---- the guide's spellings ------------------------------------------------------------------------
def _translate_guide_spellings(config_cls: type, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``input_shapes``/``output_shapes``/``lr``/... -> canonical fields (only where the field exists)."""
    fields = {f.name for f in dataclasses.fields(config_cls)}
    kwargs = dict(kwargs)
    for old, new in FIELD_ALIASES.items():
        if old in kwargs and new in fields:
            value = kwargs.pop(old)
            if new in kwargs and kwargs[new] != value:
                raise ValueError(
                    f"{config_cls.__name__}: both {old}={value!r} and {new}={kwargs[new]!r} given."
                )
            kwargs[new] = value
    for old, new in (("input_shapes", "input_features"), ("output_shapes", "output_features")):
        if old in kwargs:
            shapes = kwargs.pop(old)
            if shapes is None:
                continue
            if new in kwargs and kwargs[new]:
                raise ValueError(f"{config_cls.__name__}: give {old} or {new}, not both.")
            kwargs[new] = shapes_to_policy_features(shapes)
    modes: dict[str, str] = {}
    for old, feats_key in (
        ("input_normalization_modes", "input_features"),
        ("output_normalization_modes", "output_features"),
    ):
        per_feature = kwargs.pop(old, None) or {}
        for name, mode in per_feature.items():
            feat = (kwargs.get(feats_key) or {}).get(name)
            ftype = as_policy_feature(feat).type if feat is not None else infer_feature_type(name)
            mode = NormalizationMode(str(mode).upper())
            if modes.get(ftype.value, mode) != mode:
                raise ValueError(f"Features of type {ftype.value} ask for different normalisations.")
            modes[ftype.value] = mode
    if modes and "normalization_mapping" in fields:
        kwargs["normalization_mapping"] = {**(kwargs.get("normalization_mapping") or {}), **modes}
    return kwargs


def _accept_guide_spellings(config_cls: type) -> None:
    init = config_cls.__init__

    @functools.wraps(init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **_translate_guide_spellings(type(self), kwargs))

    config_cls.__init__ = __init__


def missing_features(config: Any, available: Collection[str], outputs: bool = True) -> list[str]:
    """The features of a policy ``config`` (inputs, and outputs unless ``outputs`` is False) that
    ``available`` (a dataset's or an env's keys) lacks and the policy cannot do without.

    Padding camera slots (``empty_cameras``) are never provided by anything. A policy with
    ``missing_cameras_allowed`` goes without some of its cameras as long as one of them is there.
    ``config`` needs only ``input_features`` (and ``output_features`` with ``outputs``), so
    ``eval_policy``'s duck-typed policies pass too.
    """
    wanted = {**config.input_features, **(config.output_features if outputs else {})}
    missing = [k for k in wanted if k not in available and not is_empty_camera_slot(k)]
    cameras = [
        k
        for k, ft in config.input_features.items()
        if ft.type is FeatureType.VISUAL and not is_empty_camera_slot(k)
    ]
    if getattr(config, "missing_cameras_allowed", False) and set(cameras) - set(missing):
        missing = [k for k in missing if k not in cameras]
    return missing
