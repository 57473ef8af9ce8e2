"""``lerobot-edit-dataset``: delete episodes, split, merge, add or remove a feature, from the shell.

Examples::

    lerobot-edit-dataset --repo_id=me/pick --operation.type=delete_episodes --operation.episode_indices='[0, 5]'
    lerobot-edit-dataset --repo_id=me/pick --operation.type=split --operation.splits='{"train": 0.8, "val": 0.2}'
    lerobot-edit-dataset --new_repo_id=me/all --operation.type=merge --operation.repo_ids='["me/a", "me/b"]'
    lerobot-edit-dataset --repo_id=me/pick --operation.type=add_feature --operation.feature_name=reward \\
        --operation.values_path=reward.npy --operation.dtype=float32
    lerobot-edit-dataset --repo_id=me/pick --operation.type=remove_feature --operation.feature_name=grid

The input is never modified. Output goes to ``--new_root``, else ``$HF_LEROBOT_HOME/<new_repo_id>``
when ``--new_repo_id`` is given, else ``<root>_<operation>`` (split: ``<root>_<part name>``).
``--in_place=true`` (or ``--new_repo_id`` equal to ``--repo_id``) replaces the input, but only
once the edited copy is complete.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lerobot.configs.parser import ConfigError, config_help, parse_config
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.datasets.metadata import LeRobotDatasetMetadata
from lerobot.datasets.paths import dataset_root
from lerobot.datasets.utils import DatasetError
from lerobot.utils.registry import Registry

OPERATIONS: Registry[type[OperationConfig]] = Registry("operation")


@dataclass
class OperationConfig:
    """Base of the ``--operation.type=<name>`` choices."""

    type: ClassVar[str] = ""
    choices: ClassVar[Registry] = OPERATIONS


@OPERATIONS.register("delete_episodes")
@dataclass
class DeleteEpisodesConfig(OperationConfig):
    episode_indices: list[int] = field(default_factory=list)
    """Episodes to delete, e.g. '[0, 5]'; the rest are renumbered from 0."""


@OPERATIONS.register("split")
@dataclass
class SplitConfig(OperationConfig):
    splits: dict[str, Any] = field(default_factory=lambda: {"train": 0.8, "val": 0.2})
    """Part name -> fraction of episodes, or -> list of episode indices."""


@OPERATIONS.register("merge")
@dataclass
class MergeConfig(OperationConfig):
    repo_ids: list[str] = field(default_factory=list)
    """Datasets to merge, in order, e.g. '["me/a", "me/b"]' (same fps, features and robot)."""
    roots: list[str] | None = None
    """Local folders of the datasets, in the order of repo_ids (default: the cache)."""


@OPERATIONS.register("add_feature")
@dataclass
class AddFeatureConfig(OperationConfig):
    feature_name: str = ""
    """Name of the new feature, e.g. reward."""
    values_path: Path | None = None
    """A .npy file with one row per frame, in dataset order."""
    dtype: str | None = None
    """Default: the array's dtype."""
    shape: list[int] | None = None
    """Default: the array's shape without its first (frame) axis, (1,) for a flat array."""
    names: list[str] | None = None
    """Names of the feature's entries, e.g. '["x", "y"]' (stored in info.json)."""


@OPERATIONS.register("remove_feature")
@dataclass
class RemoveFeatureConfig(OperationConfig):
    feature_name: str | None = None
    """The feature to remove."""
    feature_names: list[str] = field(default_factory=list)
    """Several features to remove, e.g. '["grid", "reward"]'."""


@dataclass
class EditDatasetConfig:
    repo_id: str = ""
    """The dataset to edit (not used by merge, which reads --operation.repo_ids)."""
    root: Path | None = None
    """Local folder of the dataset (default $HF_LEROBOT_HOME/<repo_id>)."""
    operation: OperationConfig | None = None
    """The edit: --operation.type=delete_episodes|split|merge|add_feature|remove_feature and its flags."""
    new_repo_id: str | None = None
    """Id of the edited dataset (its folder: $HF_LEROBOT_HOME/<new_repo_id> unless --new_root)."""
    new_root: Path | None = None
    """Folder of the edited dataset (default: <root>_<operation>; split: <root>_<part name>)."""
    in_place: bool = False
    """Replace the input with the edited copy, once that copy is complete."""


def _open(repo_id: str, root: Path | None) -> LeRobotDataset:
    if not repo_id:
        raise ConfigError("--repo_id is required (the dataset to edit).")
    return LeRobotDataset(repo_id, root=root)


def run(cfg: EditDatasetConfig) -> list[LeRobotDataset]:
    """Apply the configured operation; returns the dataset(s) written."""
    op = cfg.operation
    if op is None:
        raise ConfigError(f"--operation.type is required: choose one of {', '.join(OPERATIONS.names())}.")
    in_place = cfg.in_place or (cfg.new_repo_id is not None and cfg.new_repo_id == cfg.repo_id)
    out_dir = cfg.new_root
    if out_dir is None and cfg.new_repo_id and not in_place:
        out_dir = dataset_root(cfg.new_repo_id)
    edit = {"output_dir": out_dir, "repo_id": cfg.new_repo_id, "in_place": in_place}
    if isinstance(op, MergeConfig):
        if not cfg.new_repo_id:
            raise ConfigError("merge needs --new_repo_id (the merged dataset's id).")
        if op.roots is not None and len(op.roots) != len(op.repo_ids):
            raise ConfigError(
                f"--operation.roots has {len(op.roots)} entries for {len(op.repo_ids)} repo_ids."
            )
        roots = op.roots or [None] * len(op.repo_ids)
        sources = [LeRobotDatasetMetadata(r, root=root) for r, root in zip(op.repo_ids, roots)]
        return [LeRobotDataset.merge(sources, output_repo_id=cfg.new_repo_id, output_dir=out_dir)]
    ds = _open(cfg.repo_id, cfg.root)
    if isinstance(op, DeleteEpisodesConfig):
        if not op.episode_indices:
            raise ConfigError("--operation.episode_indices is required, e.g. '[0, 5]'.")
        return [ds.delete_episodes(op.episode_indices, **edit)]
    if isinstance(op, SplitConfig):
        if in_place:
            raise ConfigError("split writes new datasets; it cannot run in place.")
        return list(ds.split(op.splits, output_dir=cfg.new_root).values())
    if isinstance(op, AddFeatureConfig):
        if not op.feature_name or op.values_path is None:
            raise ConfigError(
                "add_feature needs --operation.feature_name and --operation.values_path=values.npy."
            )
        if not Path(op.values_path).is_file():
            raise ConfigError(f"--operation.values_path={op.values_path}: no such file.")
        values = np.load(op.values_path, allow_pickle=False)
        shape = op.shape or (list(values.shape[1:]) or [1])
        return [
            ds.add_feature(
                op.feature_name, op.dtype or str(values.dtype), shape, values, names=op.names, **edit
            )
        ]
    if isinstance(op, RemoveFeatureConfig):
        names = op.feature_names + ([op.feature_name] if op.feature_name else [])
        if not names:
            raise ConfigError(
                "remove_feature needs --operation.feature_name=... or --operation.feature_names='[...]'."
            )
        return [ds.remove_feature(names, **edit)]
    raise ConfigError(f"Operation {op.type!r} is not handled.")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--help" in argv or "-h" in argv:
        print(__doc__)
        print("\n".join(config_help(EditDatasetConfig)))
        for name in OPERATIONS.names():
            print(f"\n--operation.type={name}:")
            print("\n".join(config_help(OPERATIONS.get(name), "operation.")))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        outputs = run(parse_config(EditDatasetConfig, argv))
    except (ConfigError, DatasetError, FileExistsError) as e:
        print(f"lerobot-edit-dataset: error: {e}", file=sys.stderr)
        return 2
    for ds in outputs:
        r = ds.edit_report
        print(
            f"{r.operation}: wrote {ds.repo_id} to {ds.root} ({r.episodes} episodes, {r.frames} frames) in "
            f"{r.seconds:.2f} s; video bytes copied {r.video_bytes_copied}, stream-copied {r.video_bytes_remuxed}, "
            f"re-encoded {r.video_bytes_reencoded}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
