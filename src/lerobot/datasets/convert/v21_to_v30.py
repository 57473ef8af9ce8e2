"""Convert a LeRobotDataset v2.1 folder to v3.0 (spec §1.13).

v2.1 keeps one parquet and one mp4 per episode plus jsonl metadata; v3.0 packs many episodes per
file and locates each one through the episodes parquet. So the conversion is mostly concatenation:
episode parquets become row groups of larger parquets (cast to the v3.0 column types), episode mp4s
are joined by stream copy (pixels are never re-encoded, so nothing is lost), and the jsonl metadata
and per-episode stats become ``meta/episodes/...parquet`` and ``meta/stats.json``.

Everything is written into a hidden sibling folder that is renamed to the output name only once it
is complete: an interrupted conversion never leaves a folder that looks like a finished dataset.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lerobot.datasets.compute_stats import aggregate_stats, deserialize_stats, serialize_stats
from lerobot.datasets.dataset_writer import FileCursor, data_schema, write_tasks
from lerobot.datasets.metadata import LeRobotDatasetMetadata, read_lines, read_parquet
from lerobot.datasets.utils import (
    CAMERA_DTYPES,
    CODEBASE_VERSION,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_DATA_FILE_SIZE_IN_MB,
    DEFAULT_DATA_PATH,
    DEFAULT_EPISODES_PATH,
    DEFAULT_VIDEO_FILE_SIZE_IN_MB,
    DEFAULT_VIDEO_PATH,
    INFO_PATH,
    LEGACY_EPISODES_STATS_PATH,
    STAT_KEYS,
    STATS_PATH,
    DatasetError,
    atomic_dir,
    load_json,
    to_jsonable,
    video_keys,
    write_json,
)
from lerobot.datasets.video import concatenate_video_files, get_video_duration_s

logger = logging.getLogger(__name__)

SOURCE_VERSION = "v2.1"
# v2.1 info.json keys that mean nothing once episodes share files.
_DROPPED_INFO_KEYS = ("total_chunks", "total_videos")


def convert_dataset_v21_to_v30(
    root: Path,
    output_root: Path | None = None,
    data_file_size_in_mb: float = DEFAULT_DATA_FILE_SIZE_IN_MB,
    video_file_size_in_mb: float = DEFAULT_VIDEO_FILE_SIZE_IN_MB,
    replace: bool = False,
) -> Path:
    """Write the v3.0 form of the v2.1 dataset at ``root`` and return where it is.

    The output goes to ``output_root`` (default ``<root>_v30``), which must not exist. With
    ``replace=True`` the original is kept as ``<root>_old`` and the converted dataset takes its
    place at ``root``, so code that loads ``root`` picks up v3.0 without changing paths.
    """
    root = Path(root)
    info = load_json(root / INFO_PATH)
    version = info.get("codebase_version") if isinstance(info, dict) else None
    if version != SOURCE_VERSION:
        raise DatasetError(
            f"{root / INFO_PATH} has codebase_version {version!r}; this converter reads only "
            f"{SOURCE_VERSION!r} datasets."
        )
    output_root = Path(output_root) if output_root is not None else root.with_name(f"{root.name}_v30")
    old_root = root.with_name(f"{root.name}_old")
    if output_root.exists():
        raise FileExistsError(f"{output_root} already exists; delete it or pass another output_root.")
    if replace and old_root.exists():
        raise FileExistsError(f"{old_root} already exists, so replace=True has nowhere to keep the original.")

    source = LeRobotDatasetMetadata(root.name, root)
    with atomic_dir(output_root, "converting") as staging:
        staging.mkdir()
        _convert(source, info, staging, data_file_size_in_mb, video_file_size_in_mb)
    logger.info("Converted %s to v3.0 at %s.", root, output_root)
    if not replace:
        return output_root
    shutil.move(root, old_root)
    shutil.move(output_root, root)
    logger.info("Moved the v2.1 original to %s and the v3.0 dataset to %s.", old_root, root)
    return root


def _convert(
    source: LeRobotDatasetMetadata,
    info: dict,
    new_root: Path,
    data_file_size_in_mb: float,
    video_file_size_in_mb: float,
) -> None:
    new_info = convert_info(info, source, data_file_size_in_mb, video_file_size_in_mb)
    write_tasks(new_root, source.tasks)
    rows = convert_data(source, new_root, new_info["features"], data_file_size_in_mb)
    for key in video_keys(new_info["features"]):
        for row, video_row in zip(
            rows, convert_videos(source, new_root, key, video_file_size_in_mb), strict=True
        ):
            row.update(video_row)
    convert_episodes_metadata(source, new_root, new_info["features"], rows)
    write_json(new_info, new_root / INFO_PATH)


def convert_info(
    info: dict, source: LeRobotDatasetMetadata, data_file_size_in_mb: float, video_file_size_in_mb: float
) -> dict[str, Any]:
    """The v3.0 info.json, keys in the order the reference writes for new datasets.

    Non-video features get an ``fps`` key as the reference converter adds; keys this library does not
    know (``tools``, ...) are carried over after the known ones rather than silently dropped.
    """
    fps = int(info["fps"])
    features = {k: ft if ft["dtype"] == "video" else {**ft, "fps": fps} for k, ft in info["features"].items()}
    new_info = {
        "codebase_version": CODEBASE_VERSION,
        "fps": fps,
        "features": features,
        "total_episodes": source.total_episodes,
        "total_frames": source.total_frames,
        "total_tasks": len(source.tasks),
        "chunks_size": DEFAULT_CHUNK_SIZE,
        "data_files_size_in_mb": data_file_size_in_mb,
        "video_files_size_in_mb": video_file_size_in_mb,
        "data_path": DEFAULT_DATA_PATH,
        "video_path": DEFAULT_VIDEO_PATH if video_keys(features) else None,
        "robot_type": info.get("robot_type"),
        "splits": info.get("splits") or {"train": f"0:{source.total_episodes}"},
    }
    new_info.update({k: v for k, v in info.items() if k not in new_info and k not in _DROPPED_INFO_KEYS})
    return new_info


def _uncompressed_size(path: Path) -> int:
    """Bytes of a parquet's column chunks before compression: the size measure the reference rolls over on."""
    meta = pq.read_metadata(path)
    return sum(
        meta.row_group(g).column(c).total_uncompressed_size
        for g in range(meta.num_row_groups)
        for c in range(meta.num_columns)
    )


def _cast_to_schema(table: pa.Table, schema: pa.Schema, path: Path) -> pa.Table:
    """v2.1 wrote vectors as variable-length lists; v3.0 readers expect the fixed-size types of ``schema``."""
    missing = [name for name in schema.names if name not in table.column_names]
    if missing:
        raise DatasetError(f"{path} lacks columns {missing} that meta/info.json declares as features.")
    columns = []
    for field in schema:
        try:
            columns.append(table.column(field.name).cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise DatasetError(
                f"{path}: column '{field.name}' ({table.schema.field(field.name).type}) does not fit the "
                f"feature declared in meta/info.json ({field.type}): {e}"
            ) from e
    return pa.Table.from_arrays(columns, schema=schema)


def convert_data(
    source: LeRobotDatasetMetadata, new_root: Path, features: dict[str, dict], data_file_size_in_mb: float
) -> list[dict[str, Any]]:
    """Concatenate the episode parquets, one row group each, into size-limited files.

    Returns one episodes-metadata row per episode with its data file and global frame range.
    """
    schema = data_schema(features)
    cursor = FileCursor()
    rows: list[dict[str, Any]] = []
    writer: pq.ParquetWriter | None = None
    frames = 0
    try:
        for ep in range(source.total_episodes):
            path = source.root / source.get_data_file_path(ep)
            table = _cast_to_schema(read_parquet(path), schema, path)
            length = int(source.episodes.array("length")[ep])
            if table.num_rows != length:
                raise DatasetError(
                    f"{path} holds {table.num_rows} frames but meta/episodes.jsonl says {length}."
                )
            chunk, file, rolled = cursor.place(
                _uncompressed_size(path), data_file_size_in_mb, DEFAULT_CHUNK_SIZE
            )
            if writer is None or rolled:
                if writer is not None:
                    writer.close()
                target = new_root / DEFAULT_DATA_PATH.format(chunk_index=chunk, file_index=file)
                target.parent.mkdir(parents=True, exist_ok=True)
                writer = pq.ParquetWriter(target, schema, compression="snappy")
            writer.write_table(table)
            rows.append(
                {
                    "episode_index": ep,
                    "tasks": list(source.episodes[ep]["tasks"]),
                    "length": length,
                    "data/chunk_index": chunk,
                    "data/file_index": file,
                    "dataset_from_index": frames,
                    "dataset_to_index": frames + length,
                }
            )
            frames += length
    finally:
        if writer is not None:
            writer.close()
    return rows


def convert_videos(
    source: LeRobotDatasetMetadata, new_root: Path, video_key: str, video_file_size_in_mb: float
) -> list[dict[str, Any]]:
    """Join one camera's episode mp4s by stream copy into size-limited files.

    An episode's ``from_timestamp`` is where the concatenation placed its first frame (the summed
    durations of the episodes before it in that file), so the reader's ``from_timestamp + timestamp``
    lands on its frames even if a header's duration disagrees with the packets.
    """
    prefix = f"videos/{video_key}"
    cursor = FileCursor()
    files: dict[tuple[int, int], list[Path]] = {}
    for ep in range(source.total_episodes):
        path = source.root / source.get_video_file_path(ep, video_key)
        if not path.is_file():
            raise DatasetError(f"{path} is missing; episode {ep} has no '{video_key}' video.")
        chunk, file, _ = cursor.place(path.stat().st_size, video_file_size_in_mb, DEFAULT_CHUNK_SIZE)
        files.setdefault((chunk, file), []).append(path)
    rows: list[dict[str, Any]] = []
    for (chunk, file), paths in files.items():
        target = new_root / DEFAULT_VIDEO_PATH.format(video_key=video_key, chunk_index=chunk, file_index=file)
        target.parent.mkdir(parents=True, exist_ok=True)
        for path, start in zip(paths, concatenate_video_files(paths, target), strict=True):
            rows.append(
                {
                    f"{prefix}/chunk_index": chunk,
                    f"{prefix}/file_index": file,
                    f"{prefix}/from_timestamp": start,
                    f"{prefix}/to_timestamp": start + get_video_duration_s(path),
                }
            )
    return rows


def load_episodes_stats(
    root: Path, features: dict[str, dict], num_episodes: int
) -> list[dict[str, dict[str, np.ndarray]]]:
    """Per-episode stats of the declared features from ``episodes_stats.jsonl``, ordered by episode.

    Camera stats are reshaped to (C, 1, 1), the shape v3.0 stores, whatever nesting the file used.
    """
    path = root / LEGACY_EPISODES_STATS_PATH
    lines = sorted((json.loads(line) for line in read_lines(path)), key=lambda r: r["episode_index"])
    found = [line["episode_index"] for line in lines]
    if found != list(range(num_episodes)):
        raise DatasetError(
            f"{path} must hold one line per episode 0..{num_episodes - 1}, found episodes {found}."
        )
    stats = []
    for line in lines:
        ep_stats = deserialize_stats({k: v for k, v in line["stats"].items() if k in features})
        for key, ft_stats in ep_stats.items():
            if features[key]["dtype"] in CAMERA_DTYPES:
                ep_stats[key] = {s: v if s == "count" else v.reshape(-1, 1, 1) for s, v in ft_stats.items()}
        stats.append(ep_stats)
    return stats


def _stats_type(stat: str, value: np.ndarray) -> pa.DataType:
    """``list<double>`` nested as deep as the value (``count`` is ``list<int64>``), as in spec §1.7."""
    typ = pa.int64() if stat == "count" else pa.float64()
    for _ in range(max(value.ndim, 1)):
        typ = pa.list_(typ)
    return typ


def convert_episodes_metadata(
    source: LeRobotDatasetMetadata, new_root: Path, features: dict[str, dict], rows: list[dict[str, Any]]
) -> None:
    """Write the one episodes parquet and the aggregated ``stats.json``.

    Columns follow the reference's physical order (spec §1.7). Stats are taken as stored: a stat that
    older datasets lack (quantiles) gets no column rather than an invented value.
    """
    episodes_stats = load_episodes_stats(source.root, features, len(rows))
    columns: dict[str, pa.Array] = {
        "episode_index": pa.array([r["episode_index"] for r in rows], pa.int64()),
        "tasks": pa.array([r["tasks"] for r in rows], pa.list_(pa.string())),
    }
    for name in rows[0] if rows else []:
        if name not in columns:
            typ = pa.float64() if name.endswith("_timestamp") else pa.int64()
            columns[name] = pa.array([r[name] for r in rows], typ)
    for key in features:
        for stat in STAT_KEYS:
            values = [ep.get(key, {}).get(stat) for ep in episodes_stats]
            present = [v for v in values if v is not None]
            if present:
                columns[f"stats/{key}/{stat}"] = pa.array(
                    [None if v is None else v.tolist() for v in values], _stats_type(stat, present[0])
                )
    columns["meta/episodes/chunk_index"] = pa.array([0] * len(rows), pa.int64())
    columns["meta/episodes/file_index"] = pa.array([0] * len(rows), pa.int64())
    path = new_root / DEFAULT_EPISODES_PATH.format(chunk_index=0, file_index=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path, compression="snappy")
    if episodes_stats:
        write_json(to_jsonable(serialize_stats(aggregate_stats(episodes_stats))), new_root / STATS_PATH)
