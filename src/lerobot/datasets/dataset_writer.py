"""Recording a LeRobotDataset v3.0: ``add_frame`` / ``save_episode`` with constant cost per episode.

How a saved episode reaches disk, and why:

1. While frames arrive, each camera streams into its own background video encoder, and PNGs for
   ``image`` features are compressed in a thread pool, so the control loop only copies arrays.
2. ``save_episode`` stages the episode under ``<root>/.pending/``: its rows as a small parquet, its
   video segments as mp4s, and last, atomically, its episode-metadata row as JSON. That JSON is the
   commit point: an episode with a row is saved, anything without one is debris from a crash.
3. Staged episodes are merged into the v3.0 files (``data/chunk-*/file-*.parquet``, concatenated
   mp4s, ``meta/episodes/...``) once per file, when the file is full (size-based rollover as in the
   spec) or on ``flush``/``close``. Every merge writes a temporary file and renames it.

So a save never rewrites earlier episodes (its cost does not grow with the dataset), a ``kill -9``
loses at most the episode in progress. Until they are merged, saved episodes are readable where
they lie (``LeRobotDatasetMetadata`` includes them without writing); ``recover`` (run by resume,
or called explicitly) turns whatever was committed into a merged v3.0 dataset.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from PIL import Image

from lerobot.datasets.compute_stats import (
    aggregate_stats,
    auto_downsample_image,
    compute_episode_stats,
    serialize_stats,
)
from lerobot.datasets.metadata import (
    MAX_FPS,
    LeRobotDatasetMetadata,
    episode_row_stats,
    pending_rows,
    read_parquet,
)
from lerobot.datasets.paths import format_template, resolve_inside
from lerobot.datasets.utils import (
    CODEBASE_VERSION,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_DATA_FILE_SIZE_IN_MB,
    DEFAULT_DATA_PATH,
    DEFAULT_EPISODES_PATH,
    DEFAULT_FEATURES,
    DEFAULT_TASKS_PATH,
    DEFAULT_VIDEO_FILE_SIZE_IN_MB,
    DEFAULT_VIDEO_PATH,
    INFO_PATH,
    PENDING_DIR,
    STAT_KEYS,
    STATS_PATH,
    DatasetError,
    atomic_path,
    check_features,
    clean_interrupted_edits,
    features_for_disk,
    load_json,
    next_chunk_file,
    staged_data_path,
    staged_video_path,
    to_jsonable,
    video_keys,
    write_json,
)
from lerobot.datasets.video import (
    StreamingVideoEncoder,
    VideoEncoderConfig,
    concatenate_video_files,
    get_video_info,
)

logger = logging.getLogger(__name__)

NO_TASK = ""  # the task of frames recorded without one (the guide's frames name none)
MB = 1024**2


# ----------------------------------------------------------------------------------- arrow schema


def arrow_type(ft: dict) -> pa.DataType:
    """The Arrow type the reference writes for a feature (through HF ``datasets``)."""
    dtype = ft["dtype"]
    if dtype == "image":
        return pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    if dtype == "string":
        return pa.string()
    t = pa.from_numpy_dtype(np.dtype(dtype))
    shape = tuple(ft["shape"])
    if shape == (1,):
        return t
    for n in reversed(shape):
        t = pa.list_(t, n)
    return t


def hf_feature(ft: dict) -> dict:
    """The feature's entry in the parquet's ``huggingface`` schema metadata."""
    dtype = ft["dtype"]
    if dtype == "image":
        return {"_type": "Image"}
    value: dict = {"dtype": "string" if dtype == "string" else str(np.dtype(dtype)), "_type": "Value"}
    shape = tuple(ft["shape"])
    if dtype == "string" or shape == (1,):
        return value
    for n in reversed(shape):
        value = {"feature": value, "length": n, "_type": "List"}
    return value


def data_schema(features: dict[str, dict]) -> pa.Schema:
    cols = {k: ft for k, ft in features.items() if ft["dtype"] != "video"}
    meta = {
        "info": {"features": {k: hf_feature(ft) for k, ft in cols.items()}},
        "fingerprint": secrets.token_hex(8),
    }
    return pa.schema(
        [pa.field(k, arrow_type(ft)) for k, ft in cols.items()], metadata={"huggingface": json.dumps(meta)}
    )


def write_tasks(root: Path, tasks: pd.DataFrame) -> None:
    """tasks.parquet as the reference writes it: ``task_index: int64, task: string`` (pandas index)."""
    tasks = tasks.copy()
    # pandas 3 defaults labels to its str dtype, which pyarrow writes as large_string / "numpy_type": "str".
    tasks.index = tasks.index.astype(object)
    tasks.columns = tasks.columns.astype(object)
    with atomic_path(root / DEFAULT_TASKS_PATH) as tmp:
        tasks.to_parquet(tmp)


# ------------------------------------------------------------------------------------- consolidation


def _groups(rows: list[dict], prefix: str) -> dict[tuple[int, int], list[dict]]:
    groups: dict[tuple[int, int], list[dict]] = {}
    for r in rows:
        groups.setdefault((r[f"{prefix}/chunk_index"], r[f"{prefix}/file_index"]), []).append(r)
    return groups


def file_path(root: Path, info: dict, stream: str, chunk: int, file: int) -> Path:
    """The v3.0 file of ``stream`` ("data", "videos/<key>" or "meta/episodes") at (chunk, file)."""
    if stream == "meta/episodes":
        return root / DEFAULT_EPISODES_PATH.format(chunk_index=chunk, file_index=file)
    kind, key = ("data_path", None) if stream == "data" else ("video_path", stream[len("videos/") :])
    rel = format_template(
        info[kind],
        kind,
        "v3.0",
        video_keys(info["features"]),
        video_key=key,
        chunk_index=chunk,
        file_index=file,
    )
    return resolve_inside(root, rel)


def _staged(root: Path, stream: str, ep: int) -> Path | None:
    if stream == "data":
        return staged_data_path(root, ep)
    if stream.startswith("videos/"):
        return staged_video_path(root, stream[len("videos/") :], ep)
    return None  # episode rows stay staged until every stream of the episode is merged


def _merge_group(root: Path, info: dict, stream: str, chunk: int, file: int, rows: list[dict]) -> None:
    """Write one closed v3.0 file from its staged episodes, then drop the staged inputs.

    Files are never reopened once written (a flush or resume starts new ones), so an existing
    target means an earlier merge finished and only its clean-up may have been interrupted.
    """
    target = file_path(root, info, stream, chunk, file)
    staged = [_staged(root, stream, r["episode_index"]) for r in rows]
    if stream == "meta/episodes":
        existing = read_parquet(target).to_pylist() if target.exists() else []
        known = {r["episode_index"] for r in existing}
        merged = sorted(
            existing + [r for r in rows if r["episode_index"] not in known], key=lambda r: r["episode_index"]
        )
        with atomic_path(target) as tmp:
            pq.write_table(pa.Table.from_pylist(merged), tmp, compression="snappy")
        return
    if not target.exists():
        if stream == "data":  # one row group per episode, as the reference writes them
            tables = [read_parquet(p) for p in staged]
            with (
                atomic_path(target) as tmp,
                pq.ParquetWriter(tmp, tables[0].schema, compression="snappy") as w,
            ):
                for t in tables:
                    w.write_table(t)
        else:
            starts = concatenate_video_files(staged, target)
            expected = [r[f"{stream}/from_timestamp"] for r in rows]
            if not np.allclose(starts, expected, atol=1e-6):
                target.unlink()
                raise DatasetError(f"{target}: concatenated segments start at {starts}, expected {expected}.")
    for p in staged:
        p.unlink(missing_ok=True)


def _streams(info: dict) -> list[str]:
    return ["data", *(f"videos/{k}" for k in video_keys(info["features"])), "meta/episodes"]


def consolidate_pending(root: Path) -> None:
    """Merge every committed staged episode into the v3.0 files and rewrite info/stats from them.

    Idempotent and safe to re-run after a crash at any point inside it: targets are written by
    rename, and staged inputs are deleted only once everything that needs them is on disk.
    """
    pending = root / PENDING_DIR
    if not pending.exists():
        return
    info = load_json(root / INFO_PATH)
    rows = pending_rows(root)
    committed = {r["episode_index"] for r in rows}
    for debris in list(pending.glob("data/*")) + list(pending.glob("videos/*/*")):
        name = debris.name.split(".")[0]
        if not (name.startswith("episode-") and int(name[len("episode-") :].split("-")[0]) in committed):
            debris.unlink()
    for stream in _streams(info):
        for (c, f), group in _groups(rows, stream).items():
            _merge_group(root, info, stream, c, f, group)
    _rewrite_totals(root, info)
    shutil.rmtree(pending)
    if rows:
        logger.info("Merged %d staged episode(s) into %s.", len(rows), root)


def _rewrite_totals(root: Path, info: dict) -> None:
    """info.json counters and stats.json, recomputed from the episode rows (the source of truth)."""
    files = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    table = pa.concat_tables([read_parquet(f) for f in files], promote_options="default") if files else None
    n_eps = table.num_rows if table is not None else 0
    info["total_episodes"] = n_eps
    info["total_frames"] = int(pa.compute.sum(table["length"]).as_py() or 0) if n_eps else 0
    tasks_path = root / DEFAULT_TASKS_PATH
    info["total_tasks"] = pq.read_metadata(tasks_path).num_rows if tasks_path.exists() else 0
    info["splits"] = {"train": f"0:{n_eps}"}
    write_json(info, root / INFO_PATH)
    if n_eps:
        per_episode = [episode_row_stats(r) for r in table.to_pylist()]
        write_json(to_jsonable(serialize_stats(aggregate_stats(per_episode))), root / STATS_PATH)


_ATOMIC_TMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\.\w+)?$")  # what ``atomic_path`` writes to


def recover(root: str | Path) -> None:
    """Finish what an interrupted recording or edit left at ``root`` (a no-op for a clean dataset).

    Staged episodes are merged into the v3.0 files, the temporary files of writes cut short are
    deleted, and the leftovers of an interrupted edit beside ``root`` are cleaned (see
    ``clean_interrupted_edits``, which every edit also runs on its target). Opening a dataset never
    does this (it reads staged episodes in place); ``LeRobotDataset.resume`` and
    ``lerobot-record --resume`` do, and ``LeRobotDataset.recover()`` calls it explicitly.
    """
    root = Path(root)
    clean_interrupted_edits(root)
    if not root.is_dir():
        return
    for p in root.rglob(".*"):
        if p.is_file() and _ATOMIC_TMP.match(p.name):
            p.unlink()
    if (root / PENDING_DIR).exists():
        logger.warning("%s holds episodes staged by an unfinished recording; merging them.", root)
        consolidate_pending(root)


# ------------------------------------------------------------------------------------------- writer


@dataclass
class FileCursor:
    """Which (chunk, file) the next episode of one stream goes to, and how full that file is."""

    chunk: int = 0
    file: int = 0
    bytes: int = 0
    frames: int = 0  # frames already in the current video file: exact from/to timestamps as frames / fps
    started: bool = False

    def place(self, size: int, limit_mb: float, chunks_size: int) -> tuple[int, int, bool]:
        """Reserve room for ``size`` bytes; returns (chunk, file, rolled_over)."""
        rolled = self.started and self.bytes + size >= limit_mb * MB
        if rolled:
            self.chunk, self.file = next_chunk_file(self.chunk, self.file, chunks_size)
            self.bytes, self.frames = 0, 0
        self.started = True
        self.bytes += size
        return self.chunk, self.file, rolled

    def advance(self, chunks_size: int) -> None:
        """Start a fresh file for the next episode (after a flush or on resume)."""
        if self.started:
            self.chunk, self.file = next_chunk_file(self.chunk, self.file, chunks_size)
        self.bytes, self.frames, self.started = 0, 0, False


@dataclass
class _EpisodeBuffer:
    values: dict[str, list] = field(default_factory=dict)
    tasks: list[str | None] = field(default_factory=list)
    encoders: dict[str, StreamingVideoEncoder] = field(default_factory=dict)
    stats_frames: dict[str, list[np.ndarray]] = field(default_factory=dict)
    pngs: dict[str, list[Future]] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.tasks)


class DatasetWriter:
    """Appends episodes to a dataset folder. Use through ``LeRobotDataset.create`` / ``resume``."""

    def __init__(
        self,
        meta: LeRobotDatasetMetadata,
        video_encoder: VideoEncoderConfig | None = None,
        image_writer_threads: int = 4,
    ):
        self.meta = meta
        self.repo_id, self.root = meta.repo_id, meta.root
        self.info = meta.info
        self.features = self.info["features"]
        self.user_features = {k: ft for k, ft in self.features.items() if k not in DEFAULT_FEATURES}
        self.video_encoder = video_encoder or VideoEncoderConfig()
        self.tasks = meta.tasks.copy()
        self.stats = meta.stats or {}
        self.total_episodes = meta.total_episodes
        self.total_frames = meta.total_frames
        self.chunks_size = int(self.info.get("chunks_size", DEFAULT_CHUNK_SIZE))
        self.data_limit = self.info.get("data_files_size_in_mb", DEFAULT_DATA_FILE_SIZE_IN_MB)
        self.video_limit = self.info.get("video_files_size_in_mb", DEFAULT_VIDEO_FILE_SIZE_IN_MB)
        self.cursors: dict[str, FileCursor] = {"data": FileCursor(), "meta/episodes": FileCursor()}
        for key in video_keys(self.features):
            self.cursors[f"videos/{key}"] = FileCursor()
        if self.total_episodes:
            last = meta.episodes[self.total_episodes - 1]
            for prefix, cursor in self.cursors.items():
                cursor.chunk, cursor.file, cursor.started = (
                    last[f"{prefix}/chunk_index"],
                    last[f"{prefix}/file_index"],
                    True,
                )
                cursor.advance(self.chunks_size)
        self._pool = (
            ThreadPoolExecutor(max_workers=max(1, image_writer_threads)) if image_writer_threads else None
        )
        self.buffer = _EpisodeBuffer()
        self.closed = False

    # ------------------------------------------------------------------ construction

    @classmethod
    def create(
        cls,
        repo_id: str,
        root: Path,
        fps: int,
        features: dict[str, dict],
        robot_type: str | None = None,
        use_videos: bool = True,
        video_encoder: VideoEncoderConfig | None = None,
        data_files_size_in_mb: int | None = None,
        video_files_size_in_mb: int | None = None,
        chunks_size: int | None = None,
        image_writer_threads: int = 4,
    ) -> DatasetWriter:
        if isinstance(fps, bool) or not isinstance(fps, int) or not 0 < fps <= MAX_FPS:
            raise DatasetError(f"fps must be a positive integer (at most {MAX_FPS}), got {fps!r}.")
        full = check_features(features)
        if not use_videos and video_keys(full):
            raise DatasetError(
                f"Features {video_keys(full)} have dtype 'video' but use_videos=False; declare them as 'image' "
                "or pass use_videos=True."
            )
        root = Path(root)
        if root.exists() and any(root.iterdir()):
            raise FileExistsError(
                f"{root} already exists and is not empty. Choose a new root, delete it, or add episodes to it "
                "with LeRobotDataset.resume(repo_id, root=...)."
            )
        info = {
            "codebase_version": CODEBASE_VERSION,
            "fps": fps,
            "features": features_for_disk(full),
            "total_episodes": 0,
            "total_frames": 0,
            "total_tasks": 0,
            "chunks_size": chunks_size or DEFAULT_CHUNK_SIZE,
            "data_files_size_in_mb": data_files_size_in_mb or DEFAULT_DATA_FILE_SIZE_IN_MB,
            "video_files_size_in_mb": video_files_size_in_mb or DEFAULT_VIDEO_FILE_SIZE_IN_MB,
            "data_path": DEFAULT_DATA_PATH,
            "video_path": DEFAULT_VIDEO_PATH if video_keys(full) else None,
            "robot_type": robot_type,
            "splits": {},
        }
        (root / "meta").mkdir(parents=True, exist_ok=True)
        write_json(info, root / INFO_PATH)
        info["features"] = full
        meta = LeRobotDatasetMetadata.from_info(repo_id, root, info)
        write_tasks(root, meta.tasks)  # an empty dataset is still a loadable one
        return cls(meta, video_encoder=video_encoder, image_writer_threads=image_writer_threads)

    @classmethod
    def resume(
        cls,
        repo_id: str,
        root: Path,
        video_encoder: VideoEncoderConfig | None = None,
        image_writer_threads: int = 4,
    ) -> DatasetWriter:
        recover(root)  # an interrupted recording or in-place edit is finished first
        if not (Path(root) / INFO_PATH).is_file():
            raise DatasetError(
                f"Cannot resume: {Path(root) / INFO_PATH} does not exist. Use LeRobotDataset.create."
            )
        meta = LeRobotDatasetMetadata(repo_id, root)
        if meta.version != CODEBASE_VERSION:
            raise DatasetError(
                f"{root} is a {meta.version} dataset; convert it to v3.0 before adding episodes."
            )
        return cls(meta, video_encoder=video_encoder, image_writer_threads=image_writer_threads)

    def check_features(self, features: dict[str, dict], fps: int) -> None:
        """Refuse to resume into a dataset recorded with other features or another fps."""
        want = {k: (ft["dtype"], tuple(ft["shape"])) for k, ft in check_features(features).items()}
        have = {k: (ft["dtype"], tuple(ft["shape"])) for k, ft in self.features.items()}
        if want != have or fps != self.meta.fps:
            diff = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
            raise DatasetError(
                f"Cannot resume {self.root}: it was recorded at fps={self.meta.fps} with features that differ "
                f"from the ones given (fps={fps}) in {diff}. Use a new root, or the original features."
            )

    # ------------------------------------------------------------------ frames

    def add_frame(self, frame: dict[str, Any], task: str | None = None) -> None:
        if self.closed:
            raise RuntimeError("This dataset writer is closed; reopen it with LeRobotDataset.resume(...).")
        frame_task = frame.get("task", task)
        if frame_task is not None and not isinstance(frame_task, str):
            raise DatasetError(f"'task' must be a string, found {type(frame_task).__name__}.")
        given = set(frame) - {"task", "timestamp"}
        expected = set(self.user_features)
        if given != expected:
            defaults = sorted(given & set(DEFAULT_FEATURES))
            hint = f" {defaults} are filled in by the dataset; do not pass them." if defaults else ""
            raise DatasetError(
                f"Frame keys do not match the dataset features: missing {sorted(expected - given)}, "
                f"unexpected {sorted(given - expected)}.{hint} Expected {sorted(expected)} (plus optional 'task' "
                "and 'timestamp')."
            )
        values = {key: self._validate_value(key, ft, frame[key]) for key, ft in self.user_features.items()}
        buf = self.buffer
        index = buf.size
        if "timestamp" in frame:
            self._check_timestamp(frame["timestamp"], index)
        for key, ft in self.user_features.items():
            value = values[key]
            if ft["dtype"] == "video":
                if key not in buf.encoders:
                    path = staged_video_path(self.root, key, self.total_episodes)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    buf.encoders[key] = StreamingVideoEncoder(path, self.meta.fps, self.video_encoder)
                buf.encoders[key].add_frame(value)
                buf.stats_frames.setdefault(key, []).append(auto_downsample_image(value))
            elif ft["dtype"] == "image":
                buf.stats_frames.setdefault(key, []).append(auto_downsample_image(value))
                submit = self._pool.submit if self._pool else _run_now
                buf.pngs.setdefault(key, []).append(submit(_png_bytes, value))
            else:
                buf.values.setdefault(key, []).append(value)
        buf.tasks.append(frame_task)
        assert buf.size == index + 1

    def _check_timestamp(self, value: Any, index: int) -> None:
        """Check a frame's own ``"timestamp"`` (LeRobot's and the guide's frames carry one).

        Frames are stored, and their video encoded, at ``fps``: frame ``i`` of an episode is at
        ``i / fps``. A given timestamp must say the same to within half a frame period; the exact
        ``i / fps`` is what is stored (as for frames without one), so data and video always agree.
        """
        try:
            ts = float(np.asarray(value, dtype=np.float64).reshape(()))
        except (TypeError, ValueError) as e:
            raise DatasetError(f"'timestamp' must be a number of seconds, found {value!r}.") from e
        expected = index / self.meta.fps
        if not abs(ts - expected) <= 0.5 / self.meta.fps:
            raise DatasetError(
                f"Frame {index} of this episode has timestamp {ts}, but at fps={self.meta.fps} it is at "
                f"{expected:.6f} s: frames are stored at a fixed rate. Omit 'timestamp' to have it filled in, or "
                "resample the frames to the dataset's fps."
            )

    def _validate_value(self, key: str, ft: dict, value: Any) -> Any:
        """One error naming the key, what was expected and what was found; returns the stored form."""
        dtype, shape = ft["dtype"], tuple(ft["shape"])
        if dtype == "string":
            if not isinstance(value, str):
                raise DatasetError(f"Feature '{key}' expects a str, found {type(value).__name__}.")
            return value
        if isinstance(value, Image.Image):
            value = np.asarray(value.convert("RGB"))
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        arr = np.asarray(value)
        if dtype in ("video", "image"):
            return _to_hwc_uint8(key, arr, shape)
        if arr.shape != shape:
            if shape == (1,) and arr.shape == ():
                arr = arr.reshape(1)
            else:
                raise DatasetError(f"Feature '{key}' expects shape {shape}, found shape {arr.shape}.")
        target = np.dtype(dtype)
        if arr.dtype != target and not np.can_cast(arr.dtype, target, casting="same_kind"):
            raise DatasetError(
                f"Feature '{key}' expects dtype {target}, found {arr.dtype}, which cannot be cast without "
                f"changing its kind; convert it first (e.g. value.astype('{target}'))."
            )
        return arr.astype(target, copy=True)

    def clear_episode_buffer(self) -> None:
        """Drop the frames of the episode in progress (the guide's "re-record")."""
        for enc in self.buffer.encoders.values():
            enc.abort()
        for futures in self.buffer.pngs.values():
            for fut in futures:
                fut.cancel()
        self.buffer = _EpisodeBuffer()

    # ------------------------------------------------------------------ episodes

    def save_episode(self, task: str | None = None) -> int:
        buf = self.buffer
        n = buf.size
        if n == 0:
            raise DatasetError("save_episode() called with no frames; add_frame(...) at least once first.")
        tasks = [t if t is not None else task for t in buf.tasks]
        if any(t is None for t in tasks):
            logger.warning(
                "Episode %d: %d frames have no task; they are stored with the empty task %r. Name it with "
                "frame['task'], add_frame(frame, task=...) or save_episode(task=...).",
                self.total_episodes,
                sum(t is None for t in tasks),
                NO_TASK,
            )
            tasks = [NO_TASK if t is None else t for t in tasks]
        ep = self.total_episodes
        durations = {key: enc.close() for key, enc in buf.encoders.items()}
        for key, enc in buf.encoders.items():
            if enc.n_frames != n:
                raise DatasetError(
                    f"Camera '{key}' encoded {enc.n_frames} frames for an episode of {n} frames."
                )
        new_tasks = [t for t in dict.fromkeys(tasks) if t not in self.tasks.index]
        if new_tasks:
            start = len(self.tasks)
            added = pd.DataFrame(
                {"task_index": range(start, start + len(new_tasks))}, index=pd.Index(new_tasks, name="task")
            )
            self.tasks = pd.concat([self.tasks, added])
            write_tasks(self.root, self.tasks)
        task_index = self.tasks.loc[tasks, "task_index"].to_numpy(dtype=np.int64)

        columns: dict[str, Any] = {}
        for key, ft in self.user_features.items():
            if ft["dtype"] == "image":
                columns[key] = [
                    {"bytes": f.result(), "path": f"frame-{i:06d}.png"} for i, f in enumerate(buf.pngs[key])
                ]
            elif ft["dtype"] != "video":
                columns[key] = np.stack(buf.values[key]) if ft["dtype"] != "string" else buf.values[key]
        frame_index = np.arange(n, dtype=np.int64)
        columns["timestamp"] = (frame_index / self.meta.fps).astype(np.float32)
        columns["frame_index"] = frame_index
        columns["episode_index"] = np.full(n, ep, dtype=np.int64)
        columns["index"] = np.arange(self.total_frames, self.total_frames + n, dtype=np.int64)
        columns["task_index"] = task_index

        stats_input = {
            k: v for k, v in columns.items() if self.features[k]["dtype"] not in ("image", "string")
        }
        # The reference takes timestamp stats on the float64 frame_index / fps, not the stored float32.
        stats_input["timestamp"] = frame_index / self.meta.fps
        stats_input.update({k: np.stack(v) for k, v in buf.stats_frames.items()})
        ep_stats = compute_episode_stats(stats_input, self.features)

        schema = data_schema(self.features)
        table = pa.Table.from_arrays(
            [_to_arrow(columns[name], schema.field(name).type) for name in schema.names], schema=schema
        )
        staged = staged_data_path(self.root, ep)
        staged.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(staged) as tmp:
            pq.write_table(table, tmp, compression="snappy")

        row: dict[str, Any] = {"episode_index": ep, "tasks": list(dict.fromkeys(tasks)), "length": n}
        closed: list[str] = []
        chunk, file, rolled = self.cursors["data"].place(
            staged.stat().st_size, self.data_limit, self.chunks_size
        )
        row.update({"data/chunk_index": chunk, "data/file_index": file})
        closed += ["data"] if rolled else []
        row.update({"dataset_from_index": self.total_frames, "dataset_to_index": self.total_frames + n})
        for key in durations:
            prefix = f"videos/{key}"
            cursor = self.cursors[prefix]
            size = staged_video_path(self.root, key, ep).stat().st_size
            chunk, file, rolled = cursor.place(size, self.video_limit, self.chunks_size)
            closed += [prefix] if rolled else []
            row.update({f"{prefix}/chunk_index": chunk, f"{prefix}/file_index": file})
            fps = self.meta.fps
            row[f"{prefix}/from_timestamp"] = cursor.frames / fps
            row[f"{prefix}/to_timestamp"] = (cursor.frames + n) / fps
            cursor.frames += n
        for key, stats in serialize_stats(ep_stats).items():
            for stat in STAT_KEYS:
                row[f"stats/{key}/{stat}"] = stats[stat]
        row_json = json.dumps(to_jsonable(row))
        chunk, file, rolled = self.cursors["meta/episodes"].place(
            len(row_json), self.data_limit, self.chunks_size
        )
        row.update({"meta/episodes/chunk_index": chunk, "meta/episodes/file_index": file})
        closed += ["meta/episodes"] if rolled else []
        with atomic_path(self.root / PENDING_DIR / "episodes" / f"episode-{ep:06d}.json") as tmp:
            tmp.write_text(json.dumps(to_jsonable(row)))  # the commit point of this episode

        self.total_episodes += 1
        self.total_frames += n
        self.stats = aggregate_stats([self.stats, ep_stats]) if self.stats else ep_stats
        self._write_info(first_videos=list(durations) if ep == 0 or not self._has_video_info() else [])
        write_json(to_jsonable(serialize_stats(self.stats)), self.root / STATS_PATH)
        self.buffer = _EpisodeBuffer()
        if closed:
            self._merge_closed(closed, row)
        return ep

    def _has_video_info(self) -> bool:
        return all(
            "info" in self.features[k] and "video.codec" in self.features[k]["info"]
            for k in video_keys(self.features)
        )

    def _write_info(self, first_videos: list[str]) -> None:
        for key in first_videos:
            ft = self.features[key]
            probed = get_video_info(staged_video_path(self.root, key, self.total_episodes - 1))
            info = dict(ft.get("info") or {})
            info.update(probed)
            info.update(self.video_encoder.encoder_info())
            info["is_depth_map"] = bool(info.get("is_depth_map", False))
            ft["info"] = info
        self.info.update(
            {
                "total_episodes": self.total_episodes,
                "total_frames": self.total_frames,
                "total_tasks": len(self.tasks),
                "splits": {"train": f"0:{self.total_episodes}"},
            }
        )
        write_json({**self.info, "features": features_for_disk(self.features)}, self.root / INFO_PATH)

    def _merge_closed(self, streams: list[str], current: dict) -> None:
        """Merge the files the current episode rolled away from (all their episodes are saved)."""
        rows = [r for r in pending_rows(self.root) if r["episode_index"] != current["episode_index"]]
        for stream in streams:
            here = (current[f"{stream}/chunk_index"], current[f"{stream}/file_index"])
            for (c, f), group in _groups(rows, stream).items():
                if (c, f) != here and not file_path(self.root, self.info, stream, c, f).exists():
                    _merge_group(self.root, self.info, stream, c, f, group)
        # An episode's row leaves the staging area once every file that holds the episode is written.
        for r in rows:
            streams_done = (
                file_path(self.root, self.info, s, r[f"{s}/chunk_index"], r[f"{s}/file_index"]).exists()
                for s in _streams(self.info)
            )
            if all(streams_done):
                (self.root / PENDING_DIR / "episodes" / f"episode-{r['episode_index']:06d}.json").unlink()

    def flush(self) -> None:
        """Merge every saved episode into the v3.0 files; the next episode starts new files."""
        consolidate_pending(self.root)
        for cursor in self.cursors.values():
            cursor.advance(self.chunks_size)

    def close(self) -> None:
        """Drop an unsaved episode, merge everything saved, stop the PNG workers. Idempotent."""
        if self.closed:
            return
        if self.buffer.size:
            logger.warning(
                "Closing with %d unsaved frames; call save_episode() to keep them.", self.buffer.size
            )
        self.clear_episode_buffer()
        self.flush()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self.closed = True


# ------------------------------------------------------------------------------------------ helpers


def _run_now(fn, *args) -> Future:
    fut: Future = Future()
    fut.set_result(fn(*args))
    return fut


def _png_bytes(img: np.ndarray) -> bytes:
    out = BytesIO()
    Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(out, format="PNG", compress_level=6)
    return out.getvalue()


def _to_hwc_uint8(key: str, arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Accept HWC or CHW, uint8 or float in [0, 1]; return an HWC uint8 copy."""
    h, w, c = shape
    if arr.shape == (c, h, w) and arr.shape != (h, w, c):
        arr = np.moveaxis(arr, 0, -1)
    elif arr.shape == (h, w) and c == 1:
        arr = arr[..., None]
    if arr.shape != (h, w, c):
        raise DatasetError(
            f"Camera '{key}' expects an image of shape {(h, w, c)} (HWC) or {(c, h, w)} (CHW), found {arr.shape}."
        )
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if np.issubdtype(arr.dtype, np.floating):
        if arr.size and (arr.min() < 0 or arr.max() > 1):
            raise DatasetError(
                f"Camera '{key}' got a float image with values in [{arr.min():.3g}, {arr.max():.3g}]; float images "
                "must be in [0, 1] (or pass uint8 in [0, 255])."
            )
        return np.ascontiguousarray((arr * 255).round().astype(np.uint8))
    raise DatasetError(f"Camera '{key}' expects uint8 or float images, found dtype {arr.dtype}.")


def _to_arrow(values: Any, typ: pa.DataType) -> pa.Array:
    """numpy (n, *shape) -> the fixed-size-list Arrow array of ``typ`` without a Python loop."""
    if isinstance(values, list):
        return pa.array(values, type=typ)
    if pa.types.is_fixed_size_list(typ):
        inner = _to_arrow(values.reshape(-1, *values.shape[2:]), typ.value_type)
        return pa.FixedSizeListArray.from_arrays(inner, typ.list_size)
    return pa.array(values.reshape(len(values)), type=typ)
