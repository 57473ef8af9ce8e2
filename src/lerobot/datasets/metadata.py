"""``LeRobotDatasetMetadata``: everything in ``meta/`` (info, tasks, episodes, stats), v3.0 and v2.1.

The metadata is loaded once and held as Arrow tables / numpy arrays so that random access in
``__getitem__`` never touches the disk for bookkeeping.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from packaging.version import InvalidVersion, Version

from lerobot.datasets.compute_stats import aggregate_stats, deserialize_stats
from lerobot.datasets.hub import ensure_local_files
from lerobot.datasets.paths import (
    check_template,
    check_video_key,
    dataset_root,
    format_template,
    resolve_inside,
)
from lerobot.datasets.utils import (
    CAMERA_DTYPES,
    CODEBASE_VERSION,
    DEFAULT_TASKS_PATH,
    INFO_PATH,
    LEGACY_EPISODES_PATH,
    LEGACY_EPISODES_STATS_PATH,
    LEGACY_TASKS_PATH,
    NON_NUMERIC_DTYPES,
    NUMERIC_DTYPES,
    PENDING_DIR,
    PENDING_EPISODES_DIR,
    STATS_PATH,
    BackwardCompatibilityError,
    DatasetError,
    ForwardCompatibilityError,
    camera_keys,
    features_from_disk,
    image_keys,
    interrupted_edit_leftovers,
    load_json,
    staged_data_path,
    staged_video_path,
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
    _check_numbers(info, path)
    if not isinstance(info["features"], dict) or not info["features"]:
        raise DatasetError(f"{path}: 'features' must be a non-empty object.")
    for key, ft in info["features"].items():
        _check_feature(key, ft, path)
    video = [k for k, ft in info["features"].items() if ft["dtype"] == "video"]
    check_template(info["data_path"], "data_path", version)
    if video or info.get("video_path") is not None:
        if not isinstance(info.get("video_path"), str):
            raise DatasetError(
                f"{path}: features {video} are videos but 'video_path' is {info.get('video_path')!r}."
            )
        check_template(info["video_path"], "video_path", version)
    for key in video:
        check_video_key(key)


# Bounds on what info.json may declare: generous for any real robot, small enough that nothing a
# hostile file declares can make the reader allocate or loop without end.
MAX_FPS = 100_000
MAX_FEATURE_ELEMENTS = 1 << 28  # per frame (a 4K RGB frame is 2**24.6)
MAX_FEATURE_DIMS = 8


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_numbers(info: dict, path: Path) -> None:
    """fps, sizes and totals: finite numbers (never bools), positive, whole where they count things."""
    for key in ("fps", "chunks_size", "data_files_size_in_mb", "video_files_size_in_mb"):
        if key in info and not (_is_number(info[key]) and info[key] > 0):
            raise DatasetError(f"{path}: '{key}' must be a positive number, found {info[key]!r}.")
    fps = info["fps"]
    if fps != int(fps) or fps > MAX_FPS:
        raise DatasetError(
            f"{path}: 'fps' must be a whole number of frames per second from 1 to {MAX_FPS} (the format stores "
            f"an int), found {fps!r}. Fix meta/info.json, or re-record at an integer rate."
        )
    if "chunks_size" in info and info["chunks_size"] != int(info["chunks_size"]):
        raise DatasetError(f"{path}: 'chunks_size' must be a whole number, found {info['chunks_size']!r}.")
    for key in ("total_episodes", "total_frames", "total_tasks"):
        value = info.get(key, 0)
        if not (_is_number(value) and value >= 0 and value == int(value)):
            raise DatasetError(f"{path}: '{key}' must be a non-negative whole number, found {value!r}.")


def _check_feature(key: Any, ft: Any, path: Path) -> None:
    """A declared feature: a plain name, a known dtype and a shape of sane positive integers."""
    if not isinstance(ft, dict) or "dtype" not in ft or "shape" not in ft:
        raise DatasetError(f"{path}: feature '{key}' must have 'dtype' and 'shape', found {ft!r}.")
    if not isinstance(key, str) or not key or "/" in key or "\0" in key:
        raise DatasetError(f"{path}: feature name {key!r} must be a non-empty string without '/'.")
    dtype, shape = ft["dtype"], ft["shape"]
    if dtype not in (*NUMERIC_DTYPES, *NON_NUMERIC_DTYPES):
        raise DatasetError(
            f"{path}: feature '{key}' has dtype {dtype!r}; expected one of "
            f"{[*NUMERIC_DTYPES, *NON_NUMERIC_DTYPES]}."
        )
    if (
        not isinstance(shape, (list, tuple))
        or not 1 <= len(shape) <= MAX_FEATURE_DIMS
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape)
        or math.prod(shape) > MAX_FEATURE_ELEMENTS
    ):
        raise DatasetError(
            f"{path}: feature '{key}' has shape {shape!r}; a shape is a list of 1 to {MAX_FEATURE_DIMS} positive "
            f"integers with at most {MAX_FEATURE_ELEMENTS} elements in all."
        )
    if dtype in CAMERA_DTYPES and len(shape) != 3:
        raise DatasetError(
            f"{path}: camera feature '{key}' has shape {shape!r}; expected (height, width, channels)."
        )


def _list_dims(arr: pa.Array) -> list[tuple[int, int]]:
    """(shortest, longest) list length at each nesting level of ``arr``: lengths only, no values."""
    dims = []
    while (
        pa.types.is_list(arr.type)
        or pa.types.is_large_list(arr.type)
        or pa.types.is_fixed_size_list(arr.type)
    ):
        if pa.types.is_fixed_size_list(arr.type):
            dims.append((arr.type.list_size, arr.type.list_size))
        else:
            low, high = pc.min_max(pc.list_value_length(arr)).values()
            dims.append((low.as_py() or 0, high.as_py() or 0))  # None: no (non-null) list at all
        arr = arr.flatten()
    return dims


def check_stored_shape(column: pa.ChunkedArray | pa.Array, key: str, feature: dict, path: Path) -> None:
    """The values of ``key`` in the parquet at ``path`` must have the shape info.json declares.

    Every row, at every nesting level (a ragged column whose mean width matches is refused too).
    """
    if feature["dtype"] in NON_NUMERIC_DTYPES:
        return
    chunks = [c for c in (column.chunks if isinstance(column, pa.ChunkedArray) else [column]) if len(c)]
    if not chunks:
        return
    per_chunk = [_list_dims(c) for c in chunks]
    levels = zip(*per_chunk, strict=True)
    found = [(min(lo for lo, _ in lv), max(hi for _, hi in lv)) for lv in levels]
    declared = tuple(feature["shape"])
    if all(lo == hi for lo, hi in found) and (
        tuple(lo for lo, _ in found) == declared or (not found and declared == (1,))
    ):
        return
    dims = [str(lo) if lo == hi else f"{lo}..{hi}" for lo, hi in found]
    shown = f"({', '.join(dims)}{',' if len(dims) == 1 else ''})" if dims else "scalars"
    raise DatasetError(
        f"{path}: feature '{key}' stores values of shape {shown} but meta/info.json declares {declared}. The "
        "data file and its metadata disagree; re-download the dataset or fix the feature's shape in meta/info.json."
    )


def check_frame_size(height: int, width: int, key: str, feature: dict, where: Callable[[], Path]) -> None:
    """A decoded camera frame must have the height and width info.json declares for ``key``.

    ``where`` names the file (called only to word the error). Shapes are declared (H, W, C), or
    (C, H, W) by some older datasets: both are read.
    """
    shape = tuple(feature["shape"])
    if (height, width) in (shape[:2], shape[1:]):
        return
    raise DatasetError(
        f"{where()}: camera '{key}' holds {height}x{width} frames but meta/info.json declares shape {shape}. "
        "The file and its metadata disagree; re-download the dataset or fix the feature's shape."
    )


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
        path = root / LEGACY_EPISODES_STATS_PATH
        if not path.is_file():
            return {}
        per_episode = [deserialize_stats(json.loads(line)["stats"]) for line in read_lines(path)]
        return aggregate_stats(per_episode)
    path = root / STATS_PATH
    if not path.is_file():
        return {}
    return deserialize_stats(load_json(path))


def pending_rows(root: Path) -> list[dict]:
    """Episode rows a recording committed under ``.pending/`` (its commit points), by episode_index."""
    paths = sorted((Path(root) / PENDING_EPISODES_DIR).glob("episode-*.json"))
    return sorted((json.loads(p.read_text()) for p in paths), key=lambda r: r["episode_index"])


def episode_row_stats(row: dict) -> dict[str, dict[str, np.ndarray]]:
    """Per-episode stats from a row's ``stats/<feature>/<stat>`` columns (feature names hold no '/')."""
    out: dict[str, dict] = {}
    for col, value in row.items():
        if col.startswith("stats/") and value is not None:
            _, key, stat = col.split("/")
            out.setdefault(key, {})[stat] = value
    return deserialize_stats(out)


class LeRobotDatasetMetadata:
    """The ``meta/`` folder of one dataset: ``info``, ``tasks``, ``episodes`` and ``stats``.

    Episodes that an interrupted recording saved but did not merge (``.pending/``) are included,
    read where they lie: loading never writes. ``staged_episodes`` lists them; ``recover(root)``
    (or resuming the recording) merges them into the v3.0 files.
    """

    def __init__(
        self,
        repo_id: str,
        root: str | Path | None = None,
        revision: str | None = None,
        force_cache_sync: bool = False,
    ):
        self.repo_id = repo_id
        self.revision = revision or CODEBASE_VERSION
        self.root = Path(root) if root is not None else dataset_root(repo_id)
        aside = [p for p in interrupted_edit_leftovers(self.root) if p.suffix == ".old"]
        if aside and not (self.root / INFO_PATH).is_file():
            raise DatasetError(
                f"{self.root} is missing because an in-place edit was interrupted; the original is intact at "
                f"{aside[0]}. Put it back with lerobot.datasets.dataset_writer.recover({str(self.root)!r})."
            )
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
        meta.staged_episodes, meta._staged_files = [], {}
        return meta

    def load(self) -> None:
        for path in [self.root / "meta", *sorted((self.root / "meta").rglob("*"))]:
            resolve_inside(self.root, path.relative_to(self.root))  # no link in meta/ leads out
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
        self.staged_episodes: list[int] = []
        self._staged_files: dict[tuple[str, int], Path] = {}  # (stream, episode) -> staged file
        if version == CODEBASE_VERSION:
            self._include_staged()
        self._check_consistency()

    def _include_staged(self) -> None:
        """Add the episodes a recording committed but did not merge, pointing at their staged files.

        A staged episode's data and videos sit in per-episode files until merged; a stream whose
        merged v3.0 file already exists (a merge that was interrupted afterwards) is read from it.
        info.json and stats.json may lag one episode behind the commit point, so the totals and
        stats are recomputed here from the rows, as the merge would write them (in memory only).
        """
        rows = pending_rows(self.root)
        if not rows:
            return
        merged = set(self.episodes.array("episode_index").tolist())
        new = [r for r in rows if r["episode_index"] not in merged]
        base = self.episodes.table

        def table_with(extra: list[dict]) -> pa.Table:
            if not extra:
                return base
            t = pa.Table.from_pylist(
                [{k: v for k, v in r.items() if not k.startswith("stats/")} for r in extra]
            )
            return pa.concat_tables([base, t], promote_options="default").sort_by("episode_index")

        self.episodes = EpisodesTable(table_with(new))
        ep = self.episodes.array("episode_index")
        if np.array_equal(ep, np.arange(len(ep))):  # else _check_consistency names the gap
            for r in new:
                e = r["episode_index"]
                if not (self.root / self.get_data_file_path(e)).is_file():
                    self._staged_files[("data", e)] = staged_data_path(Path(), e)
                for key in self.video_keys:
                    if not (self.root / self.get_video_file_path(e, key)).is_file():
                        self._staged_files[(key, e)] = staged_video_path(Path(), key, e)
                        r[f"videos/{key}/from_timestamp"] = 0.0  # a staged mp4 holds this episode alone
                        r[f"videos/{key}/to_timestamp"] = r["length"] / self.fps
            self.episodes = EpisodesTable(table_with(new))
        self.staged_episodes = [r["episode_index"] for r in new]
        lengths = self.episodes.array("length")
        self.info["total_episodes"] = len(lengths)
        self.info["total_frames"] = int(lengths.sum())
        self.info["splits"] = {"train": f"0:{len(lengths)}"}
        files = sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        merged_rows = [r for f in files for r in read_parquet(f).to_pylist()]
        per_episode = [episode_row_stats(r) for r in merged_rows + new]
        self.stats = aggregate_stats(per_episode) if per_episode else self.stats
        if new:
            logger.warning(
                "%s: episodes %s were saved by a recording that did not finish and are not yet merged; "
                "they are read in place from %s. Merge them with LeRobotDataset.resume(...), "
                "`lerobot-record --resume=true` or `lerobot.datasets.dataset_writer.recover(root)`.",
                self.root,
                self.staged_episodes,
                self.root / PENDING_DIR,
            )

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
        """Data parquet of an episode, relative to the root (checked to stay inside it)."""
        if ("data", ep_index) in self._staged_files:
            return self._staged_files[("data", ep_index)]
        return self._file_path(ep_index, "data", None)

    def get_video_file_path(self, ep_index: int, video_key: str) -> Path:
        """Video file of an episode's camera stream, relative to the root (checked to stay inside it)."""
        if (video_key, ep_index) in self._staged_files:
            return self._staged_files[(video_key, ep_index)]
        if self.video_path is None:
            raise DatasetError(f"{self.root / INFO_PATH} has no video_path; this dataset stores no videos.")
        if video_key not in self.features or self.features[video_key]["dtype"] != "video":
            raise DatasetError(f"{video_key!r} is not a video feature of {self.repo_id} ({self.video_keys}).")
        return self._file_path(ep_index, f"videos/{video_key}", video_key)

    def _file_path(self, ep_index: int, prefix: str, video_key: str | None) -> Path:
        """The file of stream ``prefix`` holding episode ``ep_index``, rendered and checked once per file."""
        chunk = int(self.episodes.array(f"{prefix}/chunk_index")[ep_index])
        if self.version == "v2.1":  # one file per episode
            fields = {"episode_chunk": chunk, "episode_index": int(ep_index)}
        else:
            fields = {
                "chunk_index": chunk,
                "file_index": int(self.episodes.array(f"{prefix}/file_index")[ep_index]),
            }
        cache = self.__dict__.setdefault("_file_paths", {})
        key = (prefix, *fields.values())
        if key not in cache:
            kind = "data_path" if video_key is None else "video_path"
            rel = format_template(
                self.info[kind], kind, self.version, self.video_keys, video_key=video_key, **fields
            )
            resolve_inside(self.root, rel)
            cache[key] = Path(rel)
        return cache[key]

    def ensure_episode_files(self, episodes: Sequence[int], videos: bool = True) -> None:
        """Fetch the data (and video) files of ``episodes`` missing on disk, only those, when online."""
        needed = list(dict.fromkeys(str(self.get_data_file_path(e)) for e in episodes))
        if videos:
            needed += sorted({str(self.get_video_file_path(e, k)) for e in episodes for k in self.video_keys})
        missing = [p for p in needed if not (self.root / p).is_file()]
        if missing:
            ensure_local_files(
                self.repo_id, self.root, self.revision, allow_patterns=missing, required=missing
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


class MetadataView:
    """What a reader of a dataset answers from its ``meta`` alone (the map-style and streaming readers)."""

    meta: LeRobotDatasetMetadata

    @property
    def fps(self) -> int:
        return self.meta.fps

    @property
    def features(self) -> dict[str, dict]:
        return self.meta.features

    @property
    def camera_keys(self) -> list[str]:
        return self.meta.camera_keys
