"""Build policies by name: ``get_policy_class("act")`` and ``make_policy(cfg, ds_meta=...)``."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from lerobot.configs.types import FeatureType, dataset_to_policy_features, is_empty_camera_slot
from lerobot.policies.config import POLICY_CONFIGS, PreTrainedConfig
from lerobot.policies.pretrained import PreTrainedPolicy


def get_policy_class(name: str) -> type[PreTrainedPolicy]:
    """The policy class registered as ``name``: by convention ``lerobot.policies.<name>.modeling_<name>``."""
    import lerobot.policies  # noqa: F401  (registers the built-in configs)

    config_cls = POLICY_CONFIGS.get(name)  # raises: "Unknown policy type ... Did you mean ...?"
    package = config_cls.__module__.rsplit(".", 1)[0]
    module = importlib.import_module(f"{package}.modeling_{name}")
    for obj in vars(module).values():
        if isinstance(obj, type) and issubclass(obj, PreTrainedPolicy) and obj.name == name:
            return obj
    raise ValueError(f"{module.__name__} defines no PreTrainedPolicy subclass with name = {name!r}.")


def make_policy(
    cfg: PreTrainedConfig,
    ds_meta: Any = None,
    dataset_stats: Mapping[str, Mapping[str, Any]] | None = None,
) -> PreTrainedPolicy:
    """A policy for ``cfg``: loaded from ``cfg.pretrained_path`` when set, else freshly initialised.

    ``ds_meta`` (a ``LeRobotDatasetMetadata``, or anything with ``.features`` and ``.stats``) fills
    ``cfg.input_features`` / ``cfg.output_features`` when they are empty (ACTION features become
    outputs, the rest inputs) and provides the normalisation statistics unless ``dataset_stats`` is
    given. The policy is moved to ``cfg.device``.
    """
    policy_cls = get_policy_class(cfg.type)
    if ds_meta is not None:
        # A VLA's padding cameras (empty_cameras) are listed by its config itself; the rest comes from the data.
        padding = {k: f for k, f in cfg.input_features.items() if is_empty_camera_slot(k)}
        if len(cfg.input_features) == len(padding) and not cfg.output_features:
            features = dataset_to_policy_features(ds_meta.features)
            cfg.output_features = {k: f for k, f in features.items() if f.type is FeatureType.ACTION}
            cfg.input_features = {
                k: f for k, f in features.items() if f.type is not FeatureType.ACTION
            } | padding
        if dataset_stats is None:
            dataset_stats = getattr(ds_meta, "stats", None)
    if cfg.pretrained_path:
        policy = policy_cls.from_pretrained(
            cfg.pretrained_path, config=cfg, revision=cfg.pretrained_revision, dataset_stats=dataset_stats
        )
    else:
        policy = policy_cls(cfg, dataset_stats=dataset_stats)
    return policy.to(cfg.device)
