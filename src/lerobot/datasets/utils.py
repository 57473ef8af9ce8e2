"""Constants, path templates, atomic file writes and feature validation for LeRobotDataset v3.0.

Everything that decides *where* a byte goes on disk lives here, so the reader, the writer, the
converters and the dataset tools agree by construction (see ``reference/lerobot-spec.md`` §1).
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from lerobot.utils.io_utils import atomic_path, hf_lerobot_home  # noqa: F401  (re-exported: the datasets API)

logger = logging.getLogger(__name__)

CODEBASE_VERSION = "v3.0"

DEFAULT_CHUNK_SIZE = 1000
DEFAULT_DATA_FILE_SIZE_IN_MB = 100
DEFAULT_VIDEO_FILE_SIZE_IN_MB = 200

DEFAULT_DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DEFAULT_VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
DEFAULT_EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DEFAULT_TASKS_PATH = "meta/tasks.parquet"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"

# Where a recording stages each saved episode until it is merged into the v3.0 files above.
PENDING_DIR = ".pending"
PENDING_EPISODES_DIR = f"{PENDING_DIR}/episodes"


def staged_data_path(root: Path, ep: int) -> Path:
    """The staged data parquet of episode ``ep`` (one file per episode, until merged)."""
    return Path(root) / PENDING_DIR / "data" / f"episode-{ep:06d}.parquet"


def staged_video_path(root: Path, video_key: str, ep: int) -> Path:
    """The staged mp4 of camera ``video_key`` for episode ``ep`` (starts at 0 s, until merged)."""
    return Path(root) / PENDING_DIR / "videos" / video_key / f"episode-{ep:06d}.mp4"


# v2.1 (legacy) layout
LEGACY_EPISODES_PATH = "meta/episodes.jsonl"
LEGACY_EPISODES_STATS_PATH = "meta/episodes_stats.jsonl"
LEGACY_TASKS_PATH = "meta/tasks.jsonl"

DEFAULT_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": (1,), "names": None},
    "frame_index": {"dtype": "int64", "shape": (1,), "names": None},
    "episode_index": {"dtype": "int64", "shape": (1,), "names": None},
    "index": {"dtype": "int64", "shape": (1,), "names": None},
    "task_index": {"dtype": "int64", "shape": (1,), "names": None},
}

DEFAULT_QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
STAT_KEYS = ("min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99")

CAMERA_DTYPES = ("video", "image")
# LeRobot's columns for what a frame's action earned in a sim or RL dataset (what TD learning reads).
REWARD_FEATURES = {
    "next.reward": {"dtype": "float32", "shape": (1,), "names": None},
    "next.done": {"dtype": "bool", "shape": (1,), "names": None},
    "next.success": {"dtype": "bool", "shape": (1,), "names": None},
}
NON_NUMERIC_DTYPES = ("video", "image", "string", "language")
# The numeric dtypes a parquet column holds and torch reads back (no complex, object or datetime).
NUMERIC_DTYPES = (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64",
)  # fmt: skip


class DatasetError(ValueError):
    """A dataset on disk, or a frame given to the writer, does not match the v3.0 contract."""


class BackwardCompatibilityError(DatasetError):
    """The dataset was written by an older major version of the format."""


class ForwardCompatibilityError(DatasetError):
    """The dataset was written by a newer version of the format than this library knows."""


def next_chunk_file(chunk_index: int, file_index: int, chunks_size: int) -> tuple[int, int]:
    """The file after (chunk, file): file indices run 0..chunks_size-1, then the chunk advances."""
    if file_index == chunks_size - 1:
        return chunk_index + 1, 0
    return chunk_index, file_index + 1


# --------------------------------------------------------------------------------------------- files


@contextmanager
def atomic_dir(target: Path, label: str, replace: bool = False) -> Iterator[Path]:
    """Yield a hidden sibling path of ``target`` to build a folder at; it becomes ``target`` on success.

    An error leaves ``target`` as it was (absent, or the old folder with ``replace=True``) and the
    partial build is deleted; after a kill -9 it is left as ``.<name>.<label>-*.tmp``, never under
    ``target``'s own name, so nothing half-written ever looks like a dataset.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{label}-{secrets.token_hex(4)}.tmp"
    try:
        yield tmp
        if replace and target.exists():
            backup = tmp.with_suffix(".old")
            os.rename(target, backup)
            os.rename(tmp, target)
            shutil.rmtree(backup)
        else:
            os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def atomic_dirs(targets: list[Path], label: str) -> Iterator[list[Path]]:
    """``atomic_dir`` for several new folders that must appear together or not at all (a split's parts).

    All are built at hidden siblings first. Then a journal beside the first target lists the
    renames and they are done one by one; a kill during them leaves the journal, and
    ``clean_interrupted_edits(targets[0])`` (run by the next edit of that target) undoes the
    renames already made, so a half output never blocks the next run.
    """
    targets = [Path(t) for t in targets]
    token = secrets.token_hex(4)
    tmps = [t.parent / f".{t.name}.{label}-{token}.tmp" for t in targets]
    journal = targets[0].parent / f".{targets[0].name}.{label}-{token}.journal"
    for t in targets:
        t.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield tmps
        moves = [
            {"tmp": str(tmp), "target": str(t), "inode": tmp.stat().st_ino} for tmp, t in zip(tmps, targets)
        ]
        write_json(moves, journal)
        for tmp, t in zip(tmps, targets):
            os.rename(tmp, t)
        journal.unlink()
    finally:
        if journal.exists():
            _undo_renames(journal)
        for tmp in tmps:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def _undo_renames(journal: Path) -> None:
    """Take back the renames an interrupted ``atomic_dirs`` made (only folders it made: same inode)."""
    for move in reversed(load_json(journal)):
        target, tmp = Path(move["target"]), Path(move["tmp"])
        if target.is_dir() and target.stat().st_ino == move["inode"]:
            shutil.rmtree(target)
        if tmp.exists():
            shutil.rmtree(tmp)
    journal.unlink()


def interrupted_edit_leftovers(target: Path) -> list[Path]:
    """What killed edits of ``target`` left beside it (journals first, then originals set aside)."""
    target = Path(target)
    if not target.parent.is_dir():
        return []
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.[\w-]+-[0-9a-f]{{8}}\.(tmp|old|journal)$")
    return sorted(
        (p for p in target.parent.iterdir() if pattern.match(p.name)),
        key=lambda p: (p.suffix != ".journal", p.suffix != ".old", p.name),
    )


def clean_interrupted_edits(target: Path) -> list[Path]:
    """Remove what an edit of ``target`` that was killed left beside it; returns what it found.

    ``atomic_dir`` / ``atomic_dirs`` leave ``.<name>.<operation>-<token>.tmp`` (a partial build),
    ``.journal`` (renames to undo) and, for an in-place edit killed between its two renames,
    ``.old``: the whole original, which is put back when ``target`` is missing. Either way the
    interrupted edit did not happen, as for a kill at any other moment, and the next one starts clean.
    Called by every edit, split, resume and ``recover``; opening a dataset never calls it.
    """
    found = interrupted_edit_leftovers(target)
    for p in found:
        if not os.path.lexists(p):
            continue
        if p.suffix == ".journal":
            _undo_renames(p)
        elif p.suffix == ".old" and not target.exists():
            os.rename(p, target)
            logger.warning("Restored %s from %s, left by an in-place edit that was interrupted.", target, p)
        else:
            shutil.rmtree(p, ignore_errors=True)
    if found:
        logger.info("Removed %d leftover(s) of an interrupted edit next to %s.", len(found), target)
    return found


def write_json(obj: Any, path: Path) -> None:
    """Write JSON exactly as the reference does (indent 4, UTF-8, no trailing newline), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=4, ensure_ascii=False), encoding="utf-8")


def load_json(path: Path) -> Any:
    """Read a JSON file, turning a missing or corrupt file into one error that names it."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path} is missing.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(
            f"{path} is not valid JSON ({e}). The file is corrupt or truncated; restore it from a backup "
            "or re-download the dataset (delete the folder and load it again)."
        ) from e


def to_jsonable(obj: Any) -> Any:
    """numpy arrays/scalars and tuples -> plain lists and numbers, for json.dumps."""
    if isinstance(obj, dict):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


# ------------------------------------------------------------------------------------------ features


def validate_feature_names(features: dict[str, dict]) -> None:
    bad = [k for k in features if "/" in k]
    if bad:
        raise DatasetError(f"Feature names must not contain '/': {bad}. Rename them, e.g. with '.' instead.")


def check_video_key(key: str) -> None:
    """A video feature's name becomes a folder name: it must be one plain path component."""
    if (
        not isinstance(key, str)
        or not key
        or key in (".", "..")
        or any(c in key for c in "/\\\0:")
        or key.startswith("~")
    ):
        raise DatasetError(
            f"meta/info.json: the video feature name {key!r} cannot be a folder name (it must be non-empty, "
            "not '.' or '..', and hold no '/', '\\', ':' or NUL); rename the feature."
        )


def check_features(features: dict[str, dict]) -> dict[str, dict]:
    """Validate user features for ``create`` and return them with the default features appended."""
    validate_feature_names(features)
    clash = [k for k in features if k in DEFAULT_FEATURES]
    if clash:
        raise DatasetError(
            f"Features {clash} are added by the dataset itself; remove them from the features you pass."
        )
    out: dict[str, dict] = {}
    for key, ft in features.items():
        missing = [f for f in ("dtype", "shape") if f not in ft]
        if missing:
            raise DatasetError(f"Feature '{key}' lacks {missing}; every feature needs 'dtype' and 'shape'.")
        ft = dict(ft)
        ft["shape"] = tuple(int(s) for s in ft["shape"])
        ft.setdefault("names", None)
        if ft["dtype"] in CAMERA_DTYPES:
            check_video_key(key)  # a camera's name becomes a folder name
            if len(ft["shape"]) != 3 or ft["shape"][2] not in (1, 3):
                raise DatasetError(
                    f"Camera feature '{key}' has shape {ft['shape']}; expected (height, width, channels) "
                    "with 1 or 3 channels."
                )
            if ft["names"] is None:
                ft["names"] = ["height", "width", "channels"]
        elif ft["dtype"] not in (*NUMERIC_DTYPES, "string", "language"):
            raise DatasetError(
                f"Feature '{key}' has unknown dtype {ft['dtype']!r}; use one of {list(NUMERIC_DTYPES)}, "
                "'image', 'video' or 'string'."
            )
        out[key] = ft
    for key, ft in DEFAULT_FEATURES.items():
        out[key] = dict(ft)
    return out


def camera_keys(features: dict[str, dict]) -> list[str]:
    return [k for k, ft in features.items() if ft["dtype"] in CAMERA_DTYPES]


def video_keys(features: dict[str, dict]) -> list[str]:
    return [k for k, ft in features.items() if ft["dtype"] == "video"]


def image_keys(features: dict[str, dict]) -> list[str]:
    return [k for k, ft in features.items() if ft["dtype"] == "image"]


def features_for_disk(features: dict[str, dict]) -> dict[str, dict]:
    """Features as info.json stores them (shapes as lists)."""
    return {k: {**ft, "shape": list(ft["shape"])} for k, ft in features.items()}


def features_from_disk(features: dict[str, dict]) -> dict[str, dict]:
    """Features as held in memory (shapes as tuples)."""
    return {k: {**ft, "shape": tuple(ft["shape"])} for k, ft in features.items()}


def merge_datasets(datasets, output_repo_id: str | None = None, output_dir: str | Path | None = None):
    """Merge datasets (repo ids, folders or ``LeRobotDataset`` objects) into one; see ``tools.merge_datasets``.

    Kept here only because the guide imports it from ``lerobot.datasets.utils``: the one upward
    import inside ``datasets/`` (this module is the bottom layer; the work is ``LeRobotDataset.merge``).
    """
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    return LeRobotDataset.merge(datasets, output_repo_id=output_repo_id, output_dir=output_dir)
