"""``LeRobotDatasetMetadata``: everything in ``meta/`` (info, tasks, episodes, stats), v3.0 and v2.1.

The metadata is loaded once and held as Arrow tables / numpy arrays so that random access in
``__getitem__`` never touches the disk for bookkeeping.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from packaging.version import InvalidVersion, Version

from lerobot.datasets.compute_stats import deserialize_stats
from lerobot.datasets.hub import ensure_local_files
from lerobot.datasets.utils import (
    CODEBASE_VERSION,
    DEFAULT_TASKS_PATH,
    INFO_PATH,
    LEGACY_EPISODES_PATH,
    LEGACY_EPISODES_STATS_PATH,
    LEGACY_TASKS_PATH,
    STATS_PATH,
    BackwardCompatibilityError,
    DatasetError,
    ForwardCompatibilityError,
    camera_keys,
    dataset_root,
    features_from_disk,
    image_keys,
    load_json,
    video_keys,
)

logger = logging.getLogger(__name__)

REQUIRED_INFO_KEYS = ("codebase_version", "fps", "features", "total_episodes", "total_frames", "data_path")
SUPPORTED_VERSIONS = ("v2.1", "v3.0")


def read_parquet(path: Path, **kwargs: Any) -> pa.Table:
    """``pq.read_table`` with one clear error for a missing, truncated or corrupt file."""
    try:
        return pq.read_table(path, **kwargs)
    except FileNotFoundError as e:
        raise DatasetError(
            f"{path} is missing; the dataset is incomplete. Re-download or re-record it."
        ) from e
    except (pa.ArrowInvalid, OSError) as e:
        raise DatasetError(
            f"{path} is not a readable parquet file ({e}). It is corrupt or truncated: re-download the "
            "dataset, or if you recorded it, reopen it with LeRobotDataset.resume(...) to recover."
        ) from e


def check_info(info: dict, path: Path) -> None:
    """Reject an info.json we cannot honour, saying which key is wrong and what we expected."""
    if not isinstance(info, dict):
        raise DatasetError(f"{path} must hold a JSON object, found {type(info).__name__}.")
    missing = [k for k in REQUIRED_INFO_KEYS if k not in info]
    if missing:
        raise DatasetError(f"{path} lacks required keys {missing} (found keys: {sorted(info)}).")
    version = info["codebase_version"]
    if version not in SUPPORTED_VERSIONS:
        try:
            parsed = Version(str(version).lstrip("v"))
        except InvalidVersion as e:
            raise DatasetError(
                f"{path}: codebase_version {version!r} is not a version; expected one of {SUPPORTED_VERSIONS}."
            ) from e
        if parsed.major < 2 or parsed < Version("2.1"):
            raise BackwardCompatibilityError(
                f"{path}: codebase_version {version!r} is older than this library reads "
                f"({SUPPORTED_VERSIONS}). Convert it with an older LeRobot to v2.1, then run "
                "`lerobot-convert-dataset --repo-id=... --root=...` to reach v3.0."
            )
        if parsed.major > 3:
            raise ForwardCompatibilityError(
                f"{path}: codebase_version {version!r} is newer than this library supports "
                f"({SUPPORTED_VERSIONS}). Upgrade lerobot."
            )
        logger.warning("%s: codebase_version %s read as v3.0 (same major version).", path, version)
    for key in ("fps", "chunks_size", "data_files_size_in_mb", "video_files_size_in_mb"):
        if key in info and not (isinstance(info[key], (int, float)) and info[key] > 0):
            raise DatasetError(f"{path}: '{key}' must be a positive number, found {info[key]!r}.")
    if not isinstance(info["features"], dict) or not info["features"]:
        raise DatasetError(f"{path}: 'features' must be a non-empty object.")
    for key, ft in info["features"].items():
        if not isinstance(ft, dict) or "dtype" not in ft or "shape" not in ft:
            raise DatasetError(f"{path}: feature '{key}' must have 'dtype' and 'shape', found {ft!r}.")


class EpisodesTable:
    """Episode metadata rows (one per episode, ordered by ``episode_index``).

    ``table[i]`` is the i-th row as a dict and ``table["length"]`` a column as a list, which is how
    users index the reference's HF ``Dataset``; columns are also cached as numpy arrays for speed.
    """

    def __init__(self, table: pa.Table):
        self.table = table
        self._np: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return self.table.num_rows

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):
            return self.table.column(key).to_pylist()
        if key < 0:
            key += len(self)
        return {name: col[0] for name, col in self.table.slice(key, 1).to_pydict().items()}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.table.to_pylist())

    @property
    def column_names(self) -> list[str]:
        return self.table.column_names

    def array(self, column: str) -> np.ndarray:
        """A numeric column as a cached numpy array (used on the hot path)."""
        if column not in self._np:
            self._np[column] = self.table.column(column).to_numpy()
        return self._np[column]

    def to_pandas(self) -> pd.DataFrame:
        return self.table.to_pandas()


def load_tasks(root: Path, version: str) -> pd.DataFrame:
    """Tasks as a DataFrame indexed by task string with a ``task_index`` column (the reference's shape)."""
    if version == "v2.1":
        path = root / LEGACY_TASKS_PATH
        rows = [json.loads(line) for line in read_lines(path)]
        df = pd.DataFrame({"task_index": [r["task_index"] for r in rows]}, index=[r["task"] for r in rows])
    else:
        path = root / DEFAULT_TASKS_PATH
        df = read_parquet(path).to_pandas()
        if "task" in df.columns:
            df = df.set_index("task")
    df.index.name = "task"
    df = df.sort_values("task_index")
    if df["task_index"].tolist() != list(range(len(df))):
        raise DatasetError(
            f"{path}: task_index must run 0..{len(df) - 1} in order, found {df['task_index'].tolist()}."
        )
    return df


def read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DatasetError(f"{path} is missing; the dataset is incomplete. Re-download it.")
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# The columns every episodes table has, for a dataset that has no episode yet.
EMPTY_EPISODES = pa.schema(
    [("episode_index", pa.int64()), ("tasks", pa.list_(pa.string())), ("length", pa.int64())]
    + [
        (c, pa.int64())
        for c in ("data/chunk_index", "data/file_index", "dataset_from_index", "dataset_to_index")
    ]
)


def load_episodes_v30(root: Path) -> pa.Table:
    """All ``meta/episodes/*/*.parquet`` rows, sorted by path then episode, without per-episode stats."""
    files = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    if not files:
        return EMPTY_EPISODES.empty_table()
    tables = []
    for f in files:
        table = read_parquet(f)
        tables.append(table.select([c for c in table.column_names if not c.startswith("stats/")]))
    table = pa.concat_tables(tables, promote_options="default")
    return table.sort_by("episode_index")


def load_episodes_v21(root: Path, info: dict) -> pa.Table:
    """v2.1 ``episodes.jsonl`` turned into v3.0-shaped rows: one file per episode, videos from 0 s."""
    rows = sorted(
        (json.loads(line) for line in read_lines(root / LEGACY_EPISODES_PATH)),
        key=lambda r: r["episode_index"],
    )
    chunks_size = info.get("chunks_size", 1000)
    lengths = np.array([r["length"] for r in rows], dtype=np.int64)
    ends = np.cumsum(lengths)
    cols: dict[str, list] = {
        "episode_index": [r["episode_index"] for r in rows],
        "tasks": [list(r.get("tasks", [])) for r in rows],
        "length": lengths.tolist(),
        "data/chunk_index": [r["episode_index"] // chunks_size for r in rows],
        "data/file_index": [r["episode_index"] for r in rows],
        "dataset_from_index": (ends - lengths).tolist(),
        "dataset_to_index": ends.tolist(),
    }
    fps = info["fps"]
    for key in video_keys(info["features"]):
        cols[f"videos/{key}/chunk_index"] = cols["data/chunk_index"]
        cols[f"videos/{key}/file_index"] = cols["data/file_index"]
        cols[f"videos/{key}/from_timestamp"] = [0.0] * len(rows)
        cols[f"videos/{key}/to_timestamp"] = (lengths / fps).tolist()
    return pa.Table.from_pydict(cols)


def load_stats(root: Path, version: str) -> dict[str, dict[str, np.ndarray]]:
    if version == "v2.1" and not (root / STATS_PATH).is_file():
        from lerobot.datasets.compute_stats import aggregate_stats

        path = root / LEGACY_EPISODES_STATS_PATH
        if not path.is_file():
            return {}
        per_episode = [deserialize_stats(json.loads(line)["stats"]) for line in read_lines(path)]
        return aggregate_stats(per_episode)
    path = root / STATS_PATH
    if not path.is_file():
        return {}
    return deserialize_stats(load_json(path))


class LeRobotDatasetMetadata:
    """The ``meta/`` folder of one dataset: ``info``, ``tasks``, ``episodes`` and ``stats``."""

    def __init__(
        self,
        repo_id: str,
        root: str | Path | None = None,
        revision: str | None = None,
        force_cache_sync: bool = False,
    ):
        self.repo_id = repo_id
        self.revision = revision or CODEBASE_VERSION
        self.root = dataset_root(repo_id, root)
        ensure_local_files(
            repo_id,
            self.root,
            revision=self.revision,
            allow_patterns=["meta/*", "meta/**"],
            force=force_cache_sync,
        )
        self.load()

    @classmethod
    def from_info(cls, repo_id: str, root: Path, info: dict) -> LeRobotDatasetMetadata:
        """Metadata for a dataset being created: nothing on disk needs to be read back."""
        meta = cls.__new__(cls)
        meta.repo_id, meta.root, meta.revision = repo_id, Path(root), CODEBASE_VERSION
        meta.info = info
        meta.tasks = pd.DataFrame(
            {"task_index": pd.Series([], dtype="int64")}, index=pd.Index([], name="task")
        )
        meta.episodes = EpisodesTable(EMPTY_EPISODES.empty_table())
        meta.stats = {}
        return meta

    def load(self) -> None:
        info_path = self.root / INFO_PATH
        info = load_json(info_path)
        check_info(info, info_path)
        self.info = info
        self.info["features"] = features_from_disk(info["features"])
        version = self.version
        self.tasks = load_tasks(self.root, version)
        table = load_episodes_v21(self.root, info) if version == "v2.1" else load_episodes_v30(self.root)
        self.episodes = EpisodesTable(table)
        self.stats = load_stats(self.root, version)
        self._check_consistency()

    def _check_consistency(self) -> None:
        """Episode rows must be 0..N-1 and tile the global frame index without gaps."""
        ep = self.episodes.array("episode_index")
        path = self.root / "meta" / "episodes"
        if len(ep) != self.total_episodes:
            raise DatasetError(
                f"{self.root / INFO_PATH} says total_episodes={self.total_episodes} but {path} holds "
                f"{len(ep)} episode rows. The dataset is incomplete; re-download it or reopen it with "
                "LeRobotDataset.resume(...) to recover an interrupted recording."
            )
        if not np.array_equal(ep, np.arange(len(ep))):
            raise DatasetError(
                f"{path}: episode_index must run 0..{len(ep) - 1}, found {ep[:10].tolist()}..."
            )
        start, end = self.episodes.array("dataset_from_index"), self.episodes.array("dataset_to_index")
        if len(ep) and (
            start[0] != 0 or not np.array_equal(start[1:], end[:-1]) or end[-1] != self.total_frames
        ):
            raise DatasetError(
                f"{path}: episode frame ranges do not tile 0..{self.total_frames} (total_frames in info.json)."
            )

    # ------------------------------------------------------------------ info accessors

    @property
    def version(self) -> str:
        v = self.info["codebase_version"]
        return "v2.1" if v == "v2.1" else "v3.0"

    @property
    def fps(self) -> int:
        return int(self.info["fps"])

    @property
    def features(self) -> dict[str, dict]:
        return self.info["features"]

    @property
    def camera_keys(self) -> list[str]:
        return camera_keys(self.features)

    @property
    def video_keys(self) -> list[str]:
        return video_keys(self.features)

    @property
    def image_keys(self) -> list[str]:
        return image_keys(self.features)

    @property
    def names(self) -> dict[str, Any]:
        return {k: ft.get("names") for k, ft in self.features.items()}

    @property
    def shapes(self) -> dict[str, tuple]:
        return {k: tuple(ft["shape"]) for k, ft in self.features.items()}

    @property
    def total_episodes(self) -> int:
        return int(self.info["total_episodes"])

    @property
    def total_frames(self) -> int:
        return int(self.info["total_frames"])

    @property
    def total_tasks(self) -> int:
        return int(self.info.get("total_tasks", len(self.tasks)))

    @property
    def robot_type(self) -> str | None:
        return self.info.get("robot_type")

    @property
    def chunks_size(self) -> int:
        return int(self.info.get("chunks_size", 1000))

    @property
    def data_path(self) -> str:
        return self.info["data_path"]

    @property
    def video_path(self) -> str | None:
        return self.info.get("video_path")

    # ------------------------------------------------------------------ lookups

    def get_data_file_path(self, ep_index: int) -> Path:
        """Data parquet of an episode, relative to the root."""
        ep = self.episodes[ep_index]
        if self.version == "v2.1":
            return Path(self.data_path.format(episode_chunk=ep["data/chunk_index"], episode_index=ep_index))
        return Path(
            self.data_path.format(chunk_index=ep["data/chunk_index"], file_index=ep["data/file_index"])
        )

    def get_video_file_path(self, ep_index: int, video_key: str) -> Path:
        """Video file of an episode's camera stream, relative to the root."""
        if self.video_path is None:
            raise DatasetError(f"{self.root / INFO_PATH} has no video_path; this dataset stores no videos.")
        ep = self.episodes[ep_index]
        if self.version == "v2.1":
            return Path(
                self.video_path.format(
                    episode_chunk=ep[f"videos/{video_key}/chunk_index"],
                    video_key=video_key,
                    episode_index=ep_index,
                )
            )
        return Path(
            self.video_path.format(
                video_key=video_key,
                chunk_index=ep[f"videos/{video_key}/chunk_index"],
                file_index=ep[f"videos/{video_key}/file_index"],
            )
        )

    def get_task_index(self, task: str) -> int | None:
        return int(self.tasks.loc[task, "task_index"]) if task in self.tasks.index else None

    def task_strings(self) -> list[str]:
        """Task strings ordered by task_index, for positional lookup from a frame's task_index."""
        return list(self.tasks.index)

    def episodes_with(self, indices: Sequence[int] | None) -> list[int]:
        """Validated, sorted episode indices (all episodes when ``indices`` is None)."""
        if indices is None:
            return list(range(self.total_episodes))
        out = sorted(set(int(i) for i in indices))
        bad = [i for i in out if not 0 <= i < self.total_episodes]
        if bad:
            raise DatasetError(
                f"Episodes {bad} do not exist in {self.repo_id}; it has episodes 0..{self.total_episodes - 1}."
            )
        return out

    def __repr__(self) -> str:
        return (
            f"LeRobotDatasetMetadata(repo_id={self.repo_id!r}, root={str(self.root)!r}, version={self.version}, "
            f"episodes={self.total_episodes}, frames={self.total_frames}, fps={self.fps}, "
            f"features={list(self.features)})"
        )
