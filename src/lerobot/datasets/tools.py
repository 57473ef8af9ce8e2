"""Editing EditSources: delete episodes, split, slice frames, add/remove features, merge.

Every operation is one plan -- an ordered list of (source dataset, episode, frame range) -- written
by one writer (``write_plan``), so they all share the same guarantees:

* Output is a complete v3.0 dataset: ``episode_index``, ``index`` and ``task_index`` renumbered,
  tasks reduced to the ones still used (merge: their union), per-episode stats recomputed from the
  data (camera stats of unchanged episodes are carried over: their pixels are carried over too),
  ``meta/stats.json`` aggregated from them.
* Video is never re-encoded when a cut falls on an episode boundary. Episodes are encoded one by
  one, so each starts on a keyframe and its packets can be stream-copied (remuxed) into new files
  with new timestamps; a file whose episodes are all kept, in order, is copied byte for byte. Only
  a cut *inside* an episode (a frame slice) re-encodes that episode, with the source's encoder
  settings, and the returned ``EditReport`` says which episodes and how many bytes.
* The input is never touched: the output is built in a hidden temporary folder next to its target
  and renamed into place when complete. ``in_place=True`` swaps the finished folder with the
  original by two renames; a kill before them leaves the original untouched, and a kill between
  them (microseconds) leaves it whole as ``.<name>.<operation>-*.old`` next to the finished
  ``.<name>.<operation>-*.tmp``, so nothing is ever lost. A split's parts appear together or not
  at all. Whatever a killed edit left is removed (an original put back) by the next edit of the
  same target, by ``resume`` or by ``recover`` (``utils.clean_interrupted_edits``).

The tools work from paths and metadata (``EditSource``), not from the reader: they return an
``EditReport`` naming the folder written, which ``LeRobotDataset``'s editing methods open.
"""

from __future__ import annotations

import bisect
import functools
import logging
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import av
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lerobot.datasets.columns import column_to_numpy, decode_png
from lerobot.datasets.compute_stats import (
    aggregate_stats,
    auto_downsample_image,
    compute_episode_stats,
    deserialize_stats,
    serialize_stats,
)
from lerobot.datasets.dataset_writer import _to_arrow, data_schema, file_path, write_tasks
from lerobot.datasets.metadata import LeRobotDatasetMetadata, read_parquet
from lerobot.datasets.paths import dataset_root
from lerobot.datasets.utils import (
    CAMERA_DTYPES,
    DEFAULT_DATA_PATH,
    DEFAULT_FEATURES,
    DEFAULT_VIDEO_PATH,
    INFO_PATH,
    STAT_KEYS,
    STATS_PATH,
    DatasetError,
    atomic_dir,
    atomic_dirs,
    atomic_path,
    clean_interrupted_edits,
    features_for_disk,
    next_chunk_file,
    to_jsonable,
    validate_feature_names,
    video_keys,
    write_json,
)
from lerobot.datasets.video import (
    VideoEncoderConfig,
    decode_video_frames,
    encode_video_frames,
    get_video_duration_s,
)

logger = logging.getLogger(__name__)

MB = 1024**2
INFO_KEY_ORDER = (
    "codebase_version", "fps", "features", "total_episodes", "total_frames", "total_tasks", "chunks_size",
    "data_files_size_in_mb", "video_files_size_in_mb", "data_path", "video_path", "robot_type", "splits",
)  # fmt: skip
# The info keys that decide whether two video streams can be stream-copied into one file.
STREAM_INFO_KEYS = ("video.codec", "video.pix_fmt", "video.height", "video.width")
ENCODER_INFO_KEYS = (
    "video.g", "video.crf", "video.preset", "video.fast_decode", "video.video_backend", "video.extra_options",
)  # fmt: skip


@dataclass
class EditReport:
    """What an edit did, for logs and benchmarks: re-encoding is the expensive, lossy part."""

    operation: str
    root: Path
    repo_id: str = ""
    episodes: int = 0
    frames: int = 0
    seconds: float = 0.0
    video_bytes_copied: int = 0
    video_bytes_remuxed: int = 0
    video_bytes_reencoded: int = 0
    reencoded_episodes: list[int] = field(default_factory=list)


@dataclass
class EditSource:
    """One input of an edit: a dataset's loaded metadata and the episodes taken from it, in order."""

    meta: LeRobotDatasetMetadata
    episodes: list[int]
    tolerance_s: float = 1e-4  # for frames decoded from a cut episode's video
    video_backend: str | None = None  # what the edited dataset is opened with

    @classmethod
    def of(cls, meta: LeRobotDatasetMetadata) -> EditSource:
        """Every episode of ``meta``."""
        return cls(meta, list(range(meta.total_episodes)))

    @property
    def root(self) -> Path:
        return self.meta.root

    @property
    def repo_id(self) -> str:
        return self.meta.repo_id

    @property
    def features(self) -> dict[str, dict]:
        return self.meta.features

    @property
    def fps(self) -> int:
        return self.meta.fps

    @functools.cached_property
    def starts(self) -> dict[int, int]:
        """Position of each episode's first frame among the selected frames (``ds[i]`` numbering)."""
        lengths = self.meta.episodes.array("length")[self.episodes] if self.episodes else np.zeros(0, int)
        return dict(zip(self.episodes, np.concatenate([[0], np.cumsum(lengths)[:-1]]).tolist()))

    @property
    def num_frames(self) -> int:
        return int(self.meta.episodes.array("length")[self.episodes].sum()) if self.episodes else 0

    @functools.cached_property
    def tasks(self) -> list[str]:
        return self.meta.task_strings()


class HasEditSource(Protocol):
    """What an edit accepts besides paths and metadata: an opened dataset (``LeRobotDataset``)."""

    def edit_source(self) -> EditSource: ...


EditInput = EditSource | LeRobotDatasetMetadata | HasEditSource | str | Path


def as_source(dataset: EditInput) -> EditSource:
    """An edit's input as an ``EditSource``: a folder, a repo id, metadata or an opened dataset.

    A folder or repo id is opened as metadata (fetching the episodes' files when missing and online).
    """
    if isinstance(dataset, EditSource):
        source = dataset
    elif isinstance(dataset, LeRobotDatasetMetadata):
        source = EditSource.of(dataset)
    elif isinstance(dataset, (str, Path)):
        # A folder (or a repo id's cache folder) that an in-place edit killed mid-way put aside comes back.
        path = Path(dataset)
        clean_interrupted_edits(path)
        if (path / INFO_PATH).is_file():
            meta = LeRobotDatasetMetadata(path.name, root=path)
        else:
            clean_interrupted_edits(dataset_root(str(dataset)))
            meta = LeRobotDatasetMetadata(str(dataset))
        source = EditSource.of(meta)
    else:
        source = dataset.edit_source()
    if source.meta.version != "v3.0":
        raise DatasetError(
            f"{source.root} is a {source.meta.version} dataset; convert it first with `lerobot-convert-dataset`."
        )
    if source.meta.staged_episodes:
        raise DatasetError(
            f"{source.root} holds episodes {source.meta.staged_episodes} of an unfinished recording that are "
            "not merged yet; merge them first with LeRobotDataset.resume(...) or recover(root), then edit."
        )
    source.meta.ensure_episode_files(source.episodes)
    return source


@dataclass
class EpisodePart:
    """One output episode: frames ``[start, stop)`` of episode ``episode`` of ``source``."""

    source: EditSource
    episode: int
    start: int = 0
    stop: int | None = None

    @property
    def length(self) -> int:
        return (self.stop if self.stop is not None else self.full_length) - self.start

    @property
    def full_length(self) -> int:
        return int(self.source.meta.episodes.array("length")[self.episode])

    @property
    def is_whole(self) -> bool:
        return self.start == 0 and (self.stop is None or self.stop == self.full_length)


FeatureValues = np.ndarray | Callable[[dict[str, Any]], Any]


# ------------------------------------------------------------------------------------ public API


def delete_episodes(
    dataset: EditInput,
    episode_indices: Sequence[int],
    output_dir: str | Path | None = None,
    repo_id: str | None = None,
    in_place: bool = False,
) -> EditReport:
    """A copy of ``dataset`` without ``episode_indices`` (the others are renumbered 0..N-1)."""
    dataset = as_source(dataset)
    drop = set(int(i) for i in episode_indices)
    unknown = sorted(drop - set(dataset.episodes))
    if unknown:
        raise DatasetError(
            f"Cannot delete episodes {unknown}: {dataset.repo_id} has episodes {_span(dataset.episodes)}."
        )
    keep = [e for e in dataset.episodes if e not in drop]
    if not keep:
        raise DatasetError("Deleting every episode would leave an empty dataset; keep at least one.")
    plan = [EpisodePart(dataset, e) for e in keep]
    return _run("delete_episodes", plan, dataset, output_dir, repo_id, in_place)


def split_dataset(
    dataset: EditInput,
    splits: Sequence[float] | Mapping[str, float | Sequence[int]],
    output_dir: str | Path | None = None,
) -> list[EditReport] | dict[str, EditReport]:
    """Split by episode: ``[0.8, 0.2]`` -> list of datasets, ``{"train": 0.8, "val": 0.2}`` or
    ``{"train": [0, 1, 2], "val": [3]}`` -> dict of datasets.

    Fractions take consecutive episodes in order (shuffle by passing episode lists); each part gets
    ``floor(fraction * episodes)``, leftovers go to the largest fractional remainders, so
    ``[0.8, 0.2]`` of 10 episodes is exactly 8 + 2. Part ``name`` is written to
    ``<output_dir or root>_<name>`` (list parts are named ``split0``, ``split1``, ...). The parts
    appear together: a split killed mid-way leaves none of them (see ``atomic_dirs``).
    """
    dataset = as_source(dataset)
    named = dict(splits) if isinstance(splits, Mapping) else {f"split{i}": f for i, f in enumerate(splits)}
    if not named:
        raise DatasetError("split needs at least one part, e.g. [0.8, 0.2] or {'train': 0.8, 'val': 0.2}.")
    parts = _split_episodes(dataset.episodes, named)
    base = Path(output_dir) if output_dir is not None else dataset.root
    targets = {name: Path(f"{base}_{name}") for name in parts}
    for target in targets.values():
        clean_interrupted_edits(target)
    _check_new(list(targets.values()))
    started = time.perf_counter()
    out = {}
    with atomic_dirs(list(targets.values()), "split") as tmps:
        for (name, eps), tmp in zip(parts.items(), tmps):
            plan = [EpisodePart(dataset, e) for e in eps]
            out[name] = write_plan(plan, tmp, dataset.features, {}, "split")
    for name, report in out.items():
        report.root, report.repo_id = targets[name], f"{dataset.repo_id}_{name}"
        report.seconds = time.perf_counter() - started
    return out if isinstance(splits, Mapping) else list(out.values())


def slice_frames(
    dataset: EditInput,
    start: int | None,
    stop: int | None,
    output_dir: str | Path | None = None,
    repo_id: str | None = None,
) -> EditReport:
    """Frames ``[start, stop)`` (positions as in ``ds[i]``) as a new dataset, like a list slice.

    The rule: every frame in the range is kept, no other. Episodes wholly inside keep their
    encoded video (stream copy); an episode cut by ``start`` or ``stop`` keeps only its frames
    inside the range, becomes a shorter episode (frame_index and timestamp restart at 0), and its
    video is re-encoded, which the ``edit_report`` records. Slice at episode boundaries (see
    ``ds.meta.episodes["dataset_from_index"]``) to avoid any re-encoding.
    """
    dataset = as_source(dataset)
    lo, hi, step = slice(start, stop).indices(dataset.num_frames)
    if hi <= lo:
        raise DatasetError(f"Slice [{start}:{stop}] of a {dataset.num_frames}-frame dataset holds no frames.")
    plan = []
    for e in dataset.episodes:
        first = dataset.starts[e]
        n = int(dataset.meta.episodes.array("length")[e])
        a, b = max(lo, first), min(hi, first + n)
        if a < b:
            plan.append(EpisodePart(dataset, e, a - first, b - first))
    out = Path(output_dir) if output_dir is not None else Path(f"{dataset.root}_frames_{lo}_{hi}")
    return _run("slice", plan, dataset, out, repo_id or f"{dataset.repo_id}_frames_{lo}_{hi}", False)


def add_feature(
    dataset: EditInput,
    name: str,
    dtype: str,
    shape: Sequence[int],
    values: FeatureValues | None = None,
    names: list[str] | None = None,
    output_dir: str | Path | None = None,
    repo_id: str | None = None,
    in_place: bool = False,
) -> EditReport:
    """A copy of ``dataset`` with a new per-frame feature stored in the data parquet.

    ``values`` is an array of ``num_frames`` rows of ``shape`` (in ``ds[i]`` order), or a function
    called on each frame (a dict of the non-camera features as numpy values, plus ``"task"``) that
    returns that frame's value. Without ``values`` (the guide declares a sensor to be recorded from
    now on) every existing frame holds zeros (``""`` for strings). Camera features cannot be added
    this way (they need encoding).
    """
    dataset = as_source(dataset)
    if name in dataset.features:
        raise DatasetError(
            f"Feature {name!r} already exists in {dataset.repo_id}; remove it first or pick a new name."
        )
    validate_feature_names({name: {}})
    if dtype in CAMERA_DTYPES or dtype == "language":
        raise DatasetError(
            f"add_feature stores per-frame values in the data parquet; dtype {dtype!r} is not supported "
            "(use a numeric dtype such as 'float32', or 'string')."
        )
    if dtype != "string":
        try:
            np.dtype(dtype)
        except TypeError as e:
            raise DatasetError(
                f"Unknown dtype {dtype!r} for feature {name!r}; use e.g. 'float32' or 'int64'."
            ) from e
    shape = tuple(int(s) for s in shape)
    ft = {"dtype": dtype, "shape": shape, "names": names}
    if values is None:
        values = np.full(
            (dataset.num_frames, *shape),
            "" if dtype == "string" else 0,
            dtype=object if dtype == "string" else dtype,
        )
    if not callable(values):
        values = _check_array(name, ft, values, dataset.num_frames)
    features = {k: v for k, v in dataset.features.items() if k not in DEFAULT_FEATURES}
    features[name] = ft
    features.update({k: dataset.features[k] for k in DEFAULT_FEATURES})
    plan = [EpisodePart(dataset, e) for e in dataset.episodes]
    return _run(
        "add_feature",
        plan,
        dataset,
        output_dir,
        repo_id,
        in_place,
        features=features,
        new_values={name: values},
    )


def remove_feature(
    dataset: EditInput,
    names: str | Sequence[str],
    output_dir: str | Path | None = None,
    repo_id: str | None = None,
    in_place: bool = False,
) -> EditReport:
    """A copy of ``dataset`` without the named features (a camera's videos are dropped with it)."""
    dataset = as_source(dataset)
    names = [names] if isinstance(names, str) else list(names)
    required = [n for n in names if n in DEFAULT_FEATURES]
    if required:
        raise DatasetError(
            f"Cannot remove {required}: {list(DEFAULT_FEATURES)} are required by the format (they index "
            "frames, episodes and tasks)."
        )
    unknown = [n for n in names if n not in dataset.features]
    if unknown:
        raise DatasetError(
            f"Features {unknown} do not exist in {dataset.repo_id}; it has {list(dataset.features)}."
        )
    features = {k: v for k, v in dataset.features.items() if k not in names}
    plan = [EpisodePart(dataset, e) for e in dataset.episodes]
    return _run("remove_feature", plan, dataset, output_dir, repo_id, in_place, features=features)


def merge_datasets(
    datasets: Sequence[EditInput],
    output_repo_id: str | None = None,
    output_dir: str | Path | None = None,
) -> EditReport:
    """One dataset holding the episodes of ``datasets`` in order (repo ids, folders or datasets).

    It is written to ``output_dir``, else ``$HF_LEROBOT_HOME/<output_repo_id>``, else (the guide's
    ``merge_datasets([...])`` names neither) next to the first dataset as ``<its folder>_merge``.

    They must agree on fps, robot_type and features (dtype, shape, names, and for videos codec,
    pixel format and size, so streams can be stream-copied); the error lists every difference.
    Tasks are unioned in order of first appearance and re-indexed.
    """
    opened = [as_source(d) for d in datasets]
    if len(opened) < 2:
        raise DatasetError(f"merge_datasets needs at least two datasets, got {len(opened)}.")
    _check_mergeable(opened)
    features = _merged_features(opened)
    plan = [EpisodePart(ds, e) for ds in opened for e in ds.episodes]
    if output_dir is None and output_repo_id is not None:
        output_dir = dataset_root(output_repo_id)
    return _run("merge", plan, opened[0], output_dir, output_repo_id, False, features=features)


# ------------------------------------------------------------------------------------ planning


def _span(eps: Sequence[int]) -> str:
    return f"{eps[0]}..{eps[-1]}" if eps else "(none)"


def _split_episodes(episodes: list[int], named: dict[str, Any]) -> dict[str, list[int]]:
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in named.values()):
        fractions = np.asarray(list(named.values()), dtype=np.float64)
        if (fractions <= 0).any() or fractions.sum() > 1 + 1e-9:
            raise DatasetError(f"Split fractions must be > 0 and sum to at most 1, got {named}.")
        exact = fractions * len(episodes)
        counts = np.floor(exact + 1e-9).astype(int)
        leftover = int(round(min(fractions.sum(), 1.0) * len(episodes))) - counts.sum()
        for i in np.argsort(-(exact - counts), kind="stable")[: max(leftover, 0)]:
            counts[i] += 1
        empty = [n for n, c in zip(named, counts) if c == 0]
        if empty:
            raise DatasetError(
                f"Split parts {empty} get no episode out of {len(episodes)}; use larger fractions."
            )
        bounds = np.concatenate([[0], np.cumsum(counts)])
        return {n: episodes[bounds[i] : bounds[i + 1]] for i, n in enumerate(named)}
    out = {}
    for n, v in named.items():
        if isinstance(v, (int, float)):
            raise DatasetError(f"Split {named} mixes fractions and episode lists; use one form.")
        eps = [int(e) for e in v]
        bad = sorted(set(eps) - set(episodes))
        if bad or not eps:
            raise DatasetError(f"Split part {n!r} names episodes {bad or '[]'} that are not in the dataset.")
        out[n] = sorted(eps)
    return out


def _check_mergeable(datasets: list[EditSource]) -> None:
    ref = datasets[0]
    problems = []

    def describe(ds: EditSource, i: int) -> str:
        return f"datasets[{i}] ({ds.repo_id} at {ds.root})"

    for i, ds in enumerate(datasets[1:], start=1):
        head = f"{describe(ds, i)} vs {describe(ref, 0)}:"
        if ds.fps != ref.fps:
            problems.append(f"{head} fps {ds.fps} != {ref.fps}")
        if ds.meta.robot_type != ref.meta.robot_type:
            problems.append(f"{head} robot_type {ds.meta.robot_type!r} != {ref.meta.robot_type!r}")
        a, b = ds.features, ref.features
        if set(a) != set(b):
            problems.append(
                f"{head} features only in datasets[{i}]: {sorted(set(a) - set(b))}, only in datasets[0]: "
                f"{sorted(set(b) - set(a))}"
            )
        for key in (k for k in b if k in a):
            for attr in ("dtype", "shape", "names"):
                va, vb = a[key].get(attr), b[key].get(attr)
                if attr == "shape":
                    va, vb = tuple(va), tuple(vb)
                if va != vb:
                    problems.append(f"{head} feature {key!r} {attr} {va!r} != {vb!r}")
            if b[key]["dtype"] == "video" and a[key]["dtype"] == "video":
                ia, ib = a[key].get("info") or {}, b[key].get("info") or {}
                for k in STREAM_INFO_KEYS:
                    if ia.get(k) != ib.get(k):
                        problems.append(f"{head} video {key!r} {k} {ia.get(k)!r} != {ib.get(k)!r}")
    if problems:
        raise DatasetError(
            "Cannot merge datasets that differ:\n  - " + "\n  - ".join(problems) + "\nConvert or edit them "
            "to match first (e.g. remove_feature, or re-record at the same fps)."
        )


def _merged_features(datasets: list[EditSource]) -> dict[str, dict]:
    """Features of the first dataset; encoder settings that disagree between inputs become unknown."""
    features = {k: dict(ft) for k, ft in datasets[0].features.items()}
    for key in video_keys(features):
        info = dict(features[key].get("info") or {})
        for k in ENCODER_INFO_KEYS:
            if any((ds.features[key].get("info") or {}).get(k) != info.get(k) for ds in datasets[1:]):
                info[k] = {} if k == "video.extra_options" else None
        features[key]["info"] = info
    return features


def _check_array(name: str, ft: dict, values: Any, n: int) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values) if ft["dtype"] != "string" else np.asarray(values, dtype=object)
    shape = ft["shape"]
    if arr.shape[:1] != (n,):
        raise DatasetError(
            f"Values for feature {name!r} have {arr.shape[0] if arr.ndim else 0} rows; the dataset has {n} "
            "frames (one row per frame, in ds[i] order)."
        )
    if ft["dtype"] == "string":
        if arr.shape != (n,) or not all(isinstance(v, str) for v in arr):
            raise DatasetError(f"Values for string feature {name!r} must be {n} str values.")
        return arr
    if arr.shape[1:] != shape and not (shape == (1,) and arr.ndim == 1):
        raise DatasetError(
            f"Values for feature {name!r} have per-frame shape {arr.shape[1:]}; declared shape is {shape}."
        )
    target = np.dtype(ft["dtype"])
    if not np.can_cast(arr.dtype, target, casting="same_kind"):
        raise DatasetError(
            f"Values for feature {name!r} are {arr.dtype}, which cannot become {target} without changing kind; "
            f"convert them first (values.astype('{target}'))."
        )
    return arr.reshape(n, *shape).astype(target)


# ------------------------------------------------------------------------------------- running


def _run(
    operation: str,
    plan: list[EpisodePart],
    source: EditSource,
    output_dir: str | Path | None,
    repo_id: str | None,
    in_place: bool,
    features: dict[str, dict] | None = None,
    new_values: dict[str, FeatureValues] | None = None,
) -> EditReport:
    """Write ``plan`` into a temporary sibling of the target, then rename it into place."""
    started = time.perf_counter()
    if in_place:
        if output_dir is not None and Path(output_dir).resolve() != source.root.resolve():
            raise DatasetError("Pass either in_place=True or output_dir, not both.")
        target = source.root
    else:
        target = Path(output_dir) if output_dir is not None else Path(f"{source.root}_{operation}")
    clean_interrupted_edits(target)
    if not in_place:
        _check_new([target])
    repo_id = repo_id or (source.repo_id if in_place else f"{source.repo_id}_{operation}")
    with atomic_dir(target, operation, replace=in_place) as tmp:
        report = write_plan(plan, tmp, features or source.features, new_values or {}, operation)
    report.root, report.repo_id, report.seconds = target, repo_id, time.perf_counter() - started
    if report.reencoded_episodes:
        logger.warning(
            "%s re-encoded the video of output episodes %s (%d bytes): they were cut inside an episode or "
            "did not start on a keyframe.",
            operation,
            report.reencoded_episodes,
            report.video_bytes_reencoded,
        )
    return report


def _check_new(targets: list[Path]) -> None:
    existing = [t for t in targets if t.exists()]
    if existing:
        raise FileExistsError(
            f"{', '.join(map(str, existing))} already exists; pass another output_dir (or delete it), or "
            "in_place=True to replace the input."
        )


class _SourceCache:
    """Per-source-dataset lookups (episode rows with stats, the data file being read)."""

    def __init__(self) -> None:
        self._rows: dict[Path, dict[int, dict]] = {}
        self._table: tuple[Path, pa.Table, np.ndarray] | None = None
        self._file_rows: dict[Path, tuple[int, int]] = {}

    def episode_row(self, ds: EditSource, episode: int) -> dict:
        if ds.root not in self._rows:
            files = sorted((ds.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
            rows = pa.concat_tables([read_parquet(f) for f in files], promote_options="default").to_pylist()
            self._rows[ds.root] = {r["episode_index"]: r for r in rows}
        return self._rows[ds.root][episode]

    def estimate_bytes(self, part: EpisodePart) -> float:
        """The episode's share of its source data file, for size-based rollover."""
        path = part.source.root / part.source.meta.get_data_file_path(part.episode)
        if path not in self._file_rows:
            self._file_rows[path] = (path.stat().st_size, max(pq.read_metadata(path).num_rows, 1))
        size, rows = self._file_rows[path]
        return size * part.length / rows

    def episode_table(self, part: EpisodePart) -> pa.Table:
        """The part's rows; each data file is read once (episodes come in file order) and sliced."""
        ds = part.source
        path = ds.root / ds.meta.get_data_file_path(part.episode)
        if self._table is None or self._table[0] != path:
            table = read_parquet(path)
            self._table = (path, table, table["episode_index"].to_numpy())
        _, table, episodes = self._table
        lo, hi = (
            np.searchsorted(episodes, part.episode, "left"),
            np.searchsorted(episodes, part.episode, "right"),
        )
        if hi - lo != part.full_length:
            raise DatasetError(
                f"{path} holds {hi - lo} rows of episode {part.episode}; its metadata says {part.full_length}. "
                "The data file is stale or corrupt; re-download the dataset."
            )
        return table.slice(int(lo) + part.start, part.length)


def write_plan(
    plan: list[EpisodePart],
    root: Path,
    features: dict[str, dict],
    new_values: dict[str, FeatureValues],
    operation: str,
) -> EditReport:
    """Write the episodes of ``plan``, in order, as a new v3.0 dataset at ``root`` (must not exist)."""
    if not plan:
        raise DatasetError(f"{operation} would produce a dataset without episodes.")
    root.mkdir(parents=True)
    first = plan[0].source
    fps = first.fps
    # The output keeps the source's file-name templates (the spec's defaults where it has none).
    info_src = {
        **first.meta.info,
        "data_path": first.meta.info.get("data_path") or DEFAULT_DATA_PATH,
        "video_path": first.meta.info.get("video_path") or DEFAULT_VIDEO_PATH,
    }
    chunks_size = int(info_src.get("chunks_size", 1000))
    report = EditReport(operation, root, episodes=len(plan), frames=sum(p.length for p in plan))
    cache = _SourceCache()

    tasks = _task_table(plan)
    write_tasks(root, tasks)
    task_lookup = {t: i for i, t in enumerate(tasks.index)}

    rows, ep_stats = _write_data(plan, root, features, new_values, task_lookup, info_src, cache)
    for key in video_keys(features):
        _write_videos(plan, root, key, features[key], rows, ep_stats, info_src, cache, report)
    _write_episodes(root, rows, ep_stats, features, info_src, chunks_size)

    info = dict(info_src)
    info.update(
        {
            "fps": fps,
            "features": features_for_disk(features),
            "total_episodes": len(plan),
            "total_frames": report.frames,
            "total_tasks": len(tasks),
            "video_path": info_src["video_path"] if video_keys(features) else None,
            "splits": {"train": f"0:{len(plan)}"},
        }
    )
    info = {
        **{k: info.get(k) for k in INFO_KEY_ORDER},
        **{k: v for k, v in info.items() if k not in INFO_KEY_ORDER},
    }
    write_json(info, root / INFO_PATH)
    write_json(to_jsonable(serialize_stats(aggregate_stats(ep_stats))), root / STATS_PATH)
    return report


def _task_table(plan: list[EpisodePart]) -> pd.DataFrame:
    """Tasks the kept frames use, in order of (dataset, original task_index), numbered 0..N-1."""
    ordered: list[str] = []
    seen: set[str] = set()
    by_dataset: dict[Path, list[EpisodePart]] = {}
    for part in plan:
        by_dataset.setdefault(part.source.root, []).append(part)
    for parts in by_dataset.values():
        ds = parts[0].source
        used: set[int] = set()
        by_file: dict[Path, list[EpisodePart]] = {}
        for part in parts:
            by_file.setdefault(ds.root / ds.meta.get_data_file_path(part.episode), []).append(part)
        for path, in_file in by_file.items():  # two int columns per file, not the frames
            table = read_parquet(path, columns=["episode_index", "task_index"])
            episodes, task_index = table["episode_index"].to_numpy(), table["task_index"].to_numpy()
            for part in in_file:
                rows = np.flatnonzero(episodes == part.episode)[part.start : part.start + part.length]
                used.update(np.unique(task_index[rows]).tolist())
        for t in sorted(used):
            task = ds.tasks[t]
            if task not in seen:
                seen.add(task)
                ordered.append(task)
    return pd.DataFrame(
        {"task_index": np.arange(len(ordered), dtype=np.int64)}, index=pd.Index(ordered, name="task")
    )


def _write_data(
    plan: list[EpisodePart],
    root: Path,
    features: dict[str, dict],
    new_values: dict[str, FeatureValues],
    task_lookup: dict[str, int],
    info: dict,
    cache: _SourceCache,
) -> tuple[list[dict], list[dict]]:
    """Data parquet files (size-based rollover, one row group per episode) and per-episode stats."""
    schema = data_schema(features)
    fps = plan[0].source.fps
    limit = info.get("data_files_size_in_mb", 100) * MB
    chunks_size = int(info.get("chunks_size", 1000))
    rows: list[dict] = []
    ep_stats: list[dict] = []
    writer: pq.ParquetWriter | None = None
    chunk = file = 0
    in_file = 0.0
    total = 0
    task_maps: dict[int, np.ndarray] = {}
    task_names = list(task_lookup)
    try:
        for ep, part in enumerate(plan):
            ds = part.source
            src = cache.episode_table(part)
            n = part.length
            if id(ds) not in task_maps:  # source task_index -> output task_index, once per source
                task_maps[id(ds)] = np.array([task_lookup.get(t, -1) for t in ds.tasks], dtype=np.int64)
            task_map = task_maps[id(ds)]
            frame_index = np.arange(n, dtype=np.int64)
            cols: dict[str, pa.Array | np.ndarray] = {
                "timestamp": (frame_index / fps).astype(np.float32),
                "frame_index": frame_index,
                "episode_index": np.full(n, ep, dtype=np.int64),
                "index": np.arange(total, total + n, dtype=np.int64),
                "task_index": task_map[src["task_index"].to_numpy()],
            }
            if part.is_whole:  # keep the stored timestamps of untouched episodes bit for bit
                cols["timestamp"] = src["timestamp"].combine_chunks()
            for name, values in new_values.items():
                cols[name] = _new_column(name, features[name], values, src, ds, total, n)
            arrays = [_as_arrow(cols[f.name] if f.name in cols else src[f.name], f.type) for f in schema]
            table = pa.Table.from_arrays(arrays, schema=schema)
            size = cache.estimate_bytes(part)
            if writer is not None and in_file + size >= limit:
                writer.close()
                writer = None
                chunk, file = next_chunk_file(chunk, file, chunks_size)
                in_file = 0.0
            if writer is None:
                path = file_path(root, info, "data", chunk, file)
                path.parent.mkdir(parents=True, exist_ok=True)
                writer = pq.ParquetWriter(path, schema, compression="snappy")
            writer.write_table(table)
            in_file += size
            rows.append(
                {
                    "episode_index": ep,
                    "tasks": _tasks_of(table, task_names),
                    "length": n,
                    "data/chunk_index": chunk,
                    "data/file_index": file,
                    "dataset_from_index": total,
                    "dataset_to_index": total + n,
                }
            )
            ep_stats.append(_episode_stats(part, table, features, fps, cache))
            total += n
    finally:
        if writer is not None:
            writer.close()
    return rows, ep_stats


def _tasks_of(table: pa.Table, names: list[str]) -> list[str]:
    """The episode's task strings in order of first appearance (``names``: the output's tasks by index)."""
    return [names[i] for i in dict.fromkeys(table["task_index"].to_numpy().tolist())]


def _as_arrow(value: Any, typ: pa.DataType) -> pa.Array | pa.ChunkedArray:
    """New values (numpy / list) or a source column (cast if another writer chose another list type)."""
    if isinstance(value, (np.ndarray, list)):
        return _to_arrow(value, typ)
    return value if value.type == typ else value.cast(typ)


def _new_column(
    name: str, ft: dict, values: FeatureValues, src: pa.Table, ds: EditSource, offset: int, n: int
) -> np.ndarray | list:
    """The new feature's values for one episode: a slice of the given array, or the function applied."""
    if not callable(values):
        out = values[offset : offset + n]
        return out.tolist() if ft["dtype"] == "string" else out
    numeric = {
        c: column_to_numpy(src[c], n)
        for c in src.column_names
        if ds.features[c]["dtype"] not in CAMERA_DTYPES + ("string", "language")
    }
    strings = {c: src[c].to_pylist() for c in src.column_names if ds.features[c]["dtype"] == "string"}
    out = []
    for i in range(n):
        frame = {c: v[i] for c, v in numeric.items()} | {c: v[i] for c, v in strings.items()}
        frame["task"] = ds.tasks[int(frame["task_index"])]
        out.append(frame)
    return _check_array(name, ft, [values(f) for f in out], n)


def _episode_stats(part: EpisodePart, table: pa.Table, features: dict, fps: int, cache: _SourceCache) -> dict:
    """Stats of every feature, recomputed from the written rows; camera stats of whole episodes carried over."""
    n = table.num_rows
    data: dict[str, np.ndarray] = {}
    for key, ft in features.items():
        if ft["dtype"] in ("string", "language", "video"):
            continue
        if ft["dtype"] == "image":
            if not part.is_whole:
                data[key] = np.stack(
                    [
                        auto_downsample_image(decode_png(b))
                        for b in table[key].combine_chunks().field("bytes").to_pylist()
                    ]
                )
            continue
        data[key] = column_to_numpy(table[key], n)
    data["timestamp"] = table["frame_index"].to_numpy() / fps  # as the recorder does (float64)
    stats = compute_episode_stats(data, features)
    row = cache.episode_row(part.source, part.episode)
    carried = {}
    for key in (k for k, ft in features.items() if ft["dtype"] in CAMERA_DTYPES and k not in stats):
        carried[key] = {
            s: row[f"stats/{key}/{s}"] for s in STAT_KEYS if row.get(f"stats/{key}/{s}") is not None
        }
    stats.update(deserialize_stats(carried))
    return {k: stats[k] for k in features if k in stats}


def _write_episodes(
    root: Path, rows: list[dict], ep_stats: list[dict], features: dict, info: dict, chunks_size: int
) -> None:
    """meta/episodes parquet(s): columns in the reference order, size-based rollover like the data."""
    limit = info.get("data_files_size_in_mb", 100) * MB
    vkeys = video_keys(features)
    stat_features = [k for k, ft in features.items() if ft["dtype"] not in ("string", "language")]
    out_rows = []
    for row, stats in zip(rows, ep_stats):
        full = {k: row[k] for k in ("episode_index", "tasks", "length", "data/chunk_index", "data/file_index",
                                     "dataset_from_index", "dataset_to_index")}  # fmt: skip
        for k in vkeys:
            for c in ("chunk_index", "file_index", "from_timestamp", "to_timestamp"):
                full[f"videos/{k}/{c}"] = row[f"videos/{k}/{c}"]
        ser = serialize_stats(stats)
        for k in stat_features:
            for s in STAT_KEYS:
                value = ser[k][s]
                full[f"stats/{k}/{s}"] = [int(v) for v in value] if s == "count" else value
        out_rows.append(full)
    chunk = file = 0
    group: list[dict] = []
    size = 0

    def flush() -> None:
        path = file_path(root, info, "meta/episodes", chunk, file)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(group), path, compression="snappy")

    for r in out_rows:
        est = len(repr(r))
        if group and size + est >= limit:
            flush()
            chunk, file = next_chunk_file(chunk, file, chunks_size)
            group, size = [], 0
        r["meta/episodes/chunk_index"], r["meta/episodes/file_index"] = chunk, file
        group.append(r)
        size += est
    flush()


# --------------------------------------------------------------------------------------- videos


@dataclass
class _Segment:
    """Frames of one output episode inside a source mp4: ``n`` frames from ``start`` seconds on."""

    episode: int  # output episode
    path: Path
    start: float
    n: int
    est_bytes: float
    file_key: tuple[Path, int, int] | None = None  # source (root, chunk, file) when from a dataset file
    reencoded: bool = False


class _NotOnKeyframe(Exception):
    def __init__(self, episode: int):
        self.episode = episode


def _write_videos(
    plan: list[EpisodePart],
    root: Path,
    key: str,
    ft: dict,
    rows: list[dict],
    ep_stats: list[dict],
    info: dict,
    cache: _SourceCache,
    report: EditReport,
) -> None:
    """The mp4 files of camera ``key``: whole source files copied, episodes stream-copied, cut ones re-encoded."""
    fps = plan[0].source.fps
    limit = info.get("video_files_size_in_mb", 200) * MB
    chunks_size = int(info.get("chunks_size", 1000))
    scratch = root / ".reencode" / key
    segments = []
    for ep, part in enumerate(plan):
        segments.append(_segment(part, ep, key, cache) if part.is_whole else
                        _reencode(part, ep, key, ft, scratch, ep_stats, report))  # fmt: skip
    # Pack consecutive segments into files up to the size limit.
    files: list[list[_Segment]] = [[]]
    size = 0.0
    for seg in segments:
        if files[-1] and size + seg.est_bytes >= limit:
            files.append([])
            size = 0.0
        files[-1].append(seg)
        size += seg.est_bytes
    chunk = file = 0
    for group in files:
        path = file_path(root, info, f"videos/{key}", chunk, file)
        path.parent.mkdir(parents=True, exist_ok=True)
        starts = _write_video_file(group, path, plan, key, ft, scratch, ep_stats, report)
        for seg, s in zip(group, starts):
            row = rows[seg.episode]
            row[f"videos/{key}/chunk_index"], row[f"videos/{key}/file_index"] = chunk, file
            row[f"videos/{key}/from_timestamp"] = s
            row[f"videos/{key}/to_timestamp"] = s + seg.n / fps
        chunk, file = next_chunk_file(chunk, file, chunks_size)
    if scratch.exists():
        shutil.rmtree(root / ".reencode")


def _segment(part: EpisodePart, ep: int, key: str, cache: _SourceCache) -> _Segment:
    ds = part.source
    row = cache.episode_row(ds, part.episode)
    path = ds.root / ds.meta.get_video_file_path(part.episode, key)
    start, end = row[f"videos/{key}/from_timestamp"], row[f"videos/{key}/to_timestamp"]
    duration = _file_duration(path)
    est = path.stat().st_size * (end - start) / duration if duration else path.stat().st_size
    chunk, file = row[f"videos/{key}/chunk_index"], row[f"videos/{key}/file_index"]
    return _Segment(ep, path, float(start), part.length, est, file_key=(ds.root, chunk, file))


def _file_duration(path: Path) -> float:
    st = path.stat()
    return _cached_duration(path, st.st_ino, st.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _cached_duration(path: Path, inode: int, mtime_ns: int) -> float:
    """Probing a file is the slow part of planning; a file is probed once per version of it."""
    return get_video_duration_s(path)


def _encoder_for(ft: dict) -> VideoEncoderConfig:
    """The source's encoder settings, from the feature's info, so re-encoded episodes match the rest."""
    info = ft.get("info") or {}
    return VideoEncoderConfig(
        vcodec=info.get("video.codec") or "libsvtav1",
        pix_fmt=info.get("video.pix_fmt") or "yuv420p",
        g=info.get("video.g", 2),
        crf=info.get("video.crf", 30),
        preset=info.get("video.preset"),
        fast_decode=info.get("video.fast_decode") or 0,
        extra_options=dict(info.get("video.extra_options") or {}),
    )


def _reencode(
    part: EpisodePart, ep: int, key: str, ft: dict, scratch: Path, ep_stats: list[dict], report: EditReport
) -> _Segment:
    """Decode the kept frames of a cut episode and encode them alone (its camera stats come from them)."""
    ds = part.source
    fps = ds.fps
    row_from = float(ds.meta.episodes.array(f"videos/{key}/from_timestamp")[part.episode])
    src = ds.root / ds.meta.get_video_file_path(part.episode, key)
    timestamps = [row_from + (part.start + i) / fps for i in range(part.length)]
    frames = decode_video_frames(src, timestamps, ds.tolerance_s, backend="pyav")
    out = scratch / f"episode-{ep:06d}.mp4"
    out.parent.mkdir(parents=True, exist_ok=True)
    encode_video_frames(list(frames), out, fps, _encoder_for(ft))
    hwc = frames.permute(0, 2, 3, 1).numpy()
    ep_stats[ep][key] = compute_episode_stats({key: auto_downsample_image(hwc)}, {key: ft})[key]
    size = out.stat().st_size
    report.video_bytes_reencoded += size
    if ep not in report.reencoded_episodes:
        report.reencoded_episodes.append(ep)
    return _Segment(ep, out, 0.0, part.length, float(size), reencoded=True)


def _write_video_file(
    group: list[_Segment],
    path: Path,
    plan: list[EpisodePart],
    key: str,
    ft: dict,
    scratch: Path,
    ep_stats: list[dict],
    report: EditReport,
) -> list[float]:
    """One output mp4 from ``group``; returns each segment's start time in it."""
    whole = _whole_source_file(group, plan, key)
    if whole is not None:
        shutil.copyfile(group[0].path, path)
        report.video_bytes_copied += path.stat().st_size
        return whole
    while True:
        try:
            _remux(group, path, plan[0].source.fps)
            if not all(s.reencoded for s in group):
                report.video_bytes_remuxed += path.stat().st_size
            fps = plan[0].source.fps
            return [float(x) for x in np.cumsum([0] + [s.n for s in group[:-1]]) / fps]
        except _NotOnKeyframe as e:
            # A segment that does not start on a keyframe cannot be cut out of its file by copying.
            i = next(i for i, s in enumerate(group) if s.episode == e.episode)
            part = plan[e.episode]
            logger.info("Episode %d of %s does not start on a keyframe; re-encoding it.", part.episode, key)
            group[i] = _reencode(EpisodePart(part.source, part.episode, 0, part.full_length), e.episode, key, ft,
                                 scratch, ep_stats, report)  # fmt: skip


def _whole_source_file(group: list[_Segment], plan: list[EpisodePart], key: str) -> list[float] | None:
    """Source from_timestamps if ``group`` is exactly all episodes of one source file, in order."""
    keys = {s.file_key for s in group}
    if len(keys) != 1 or None in keys:
        return None
    ds = plan[group[0].episode].source
    src_eps = [plan[s.episode].episode for s in group]
    meta = ds.meta.episodes
    chunk, file = group[0].file_key[1:]
    in_file = np.flatnonzero(
        (meta.array(f"videos/{key}/chunk_index") == chunk) & (meta.array(f"videos/{key}/file_index") == file)
    ).tolist()
    if src_eps != in_file:
        return None
    return [float(s.start) for s in group]


def _remux(group: list[_Segment], output: Path, fps: int) -> None:
    """Stream-copy each segment's packets into ``output``, segment k starting where k-1 ends (n / fps).

    Consecutive segments from one file are read in a single pass (seeking to the first), so cutting
    many episodes out of a large file reads it once.
    """
    runs: list[list[tuple[_Segment, Fraction]]] = []
    offset = Fraction(0)
    for seg in group:
        if not runs or runs[-1][0][0].path != seg.path:
            runs.append([])
        runs[-1].append((seg, offset))
        offset += Fraction(seg.n, fps)
    half = Fraction(1, 2 * fps)
    with (
        atomic_path(output) as tmp,
        av.open(str(tmp), "w", format="mp4", container_options={"movflags": "faststart"}) as out,
    ):
        out_stream = None
        for run in runs:
            with av.open(str(run[0][0].path)) as src:
                stream = src.streams.video[0]
                tb = stream.time_base
                if out_stream is None:
                    out_stream = out.add_stream_from_template(stream, opaque=True)
                windows = [(Fraction(s.start).limit_denominator(1_000_000) - half, s, off) for s, off in run]
                lows = [w[0] for w in windows]
                first_start = windows[0][0] + half
                if first_start > 0:
                    src.seek(int(first_start / tb), stream=stream, backward=True, any_frame=False)
                last_end = windows[-1][0] + Fraction(run[-1][0].n, fps)
                seen: set[int] = set()
                for p in src.demux(stream):
                    if p.pts is None or not p.size:
                        continue
                    if p.dts is not None and p.dts * tb >= last_end:
                        break  # decode order: every later packet is presented later still
                    t = p.pts * tb
                    i = bisect.bisect_right(lows, t) - 1
                    if i < 0:
                        continue
                    low, seg, off = windows[i]
                    if t >= low + Fraction(seg.n, fps):
                        continue
                    if i not in seen:
                        seen.add(i)
                        if not p.is_keyframe:
                            raise _NotOnKeyframe(seg.episode)
                    shift = round((off - (low + half)) / tb)
                    p.pts += shift
                    if p.dts is not None:
                        p.dts += shift
                    p.stream = out_stream
                    out.mux(p)
                if len(seen) != len(windows):
                    missing = [windows[i][1].episode for i in range(len(windows)) if i not in seen]
                    raise DatasetError(
                        f"{run[0][0].path}: no video packets where output episodes {missing} should be; "
                        "the episode metadata's from/to timestamps do not match the file."
                    )
