"""Build a LeRobotDataset v2.1 folder out of the reference-written v3.0 fixture.

Nobody writes v2.1 any more, so rather than store a second fixture we split the v3.0 one back into
the legacy layout: its values are known (``peer_v30_video.expected.json``), so whatever reads or
converts the v2.1 copy must give them back. The copy is written the way v2.1 writers did it:
variable-length ``list<float>`` vectors, one parquet and one mp4 per episode, jsonl metadata.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tests.conftest import PEER_VIDEO

from lerobot.datasets.metadata import read_parquet
from lerobot.datasets.utils import (
    DEFAULT_TASKS_PATH,
    INFO_PATH,
    LEGACY_EPISODES_PATH,
    LEGACY_EPISODES_STATS_PATH,
    LEGACY_TASKS_PATH,
    load_json,
    video_keys,
    write_json,
)
from lerobot.datasets.video import VideoEncoderConfig, decode_all_frames, encode_video_frames

V21_DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
V21_VIDEO_PATH = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
V21_CHUNKS_SIZE = 1000
QUANTILE_STATS = ("q01", "q10", "q50", "q90", "q99")
# The fixture's frames are already lossy; a near-lossless re-encode keeps the copy within pixel tolerance.
REENCODE_CRF = 10


def _write_jsonl(rows: list[dict], path: Path) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _legacy_hf_feature(ft: dict) -> dict:
    """The ``huggingface`` schema entry a v2.1 writer stored (``datasets`` 3.x ``Sequence``)."""
    value = {"dtype": ft["dtype"], "_type": "Value"}
    return value if list(ft["shape"]) == [1] else {"feature": value, "_type": "Sequence"}


def _legacy_table(table: pa.Table, features: dict[str, dict]) -> pa.Table:
    """Fixed-size vectors as variable-length lists, with v2.1-style schema metadata."""
    fields, columns = [], []
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_fixed_size_list(col.type):
            col = col.cast(pa.list_(col.type.value_type))
        fields.append(pa.field(name, col.type))
        columns.append(col)
    hf = {"info": {"features": {n: _legacy_hf_feature(features[n]) for n in table.column_names}}}
    return pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata={"huggingface": json.dumps(hf)}))


def _episode_stats(row: dict, features: dict[str, dict], with_quantiles: bool) -> dict[str, dict]:
    stats: dict[str, dict] = {}
    for col, value in row.items():
        if col.startswith("stats/"):
            _, key, stat = col.split("/")
            if with_quantiles or stat not in QUANTILE_STATS:
                stats.setdefault(key, {})[stat] = value
    return {key: stats[key] for key in features if key in stats}


def make_v21_dataset(root: Path, source: Path = PEER_VIDEO, with_quantiles: bool = True) -> Path:
    """Write the v2.1 form of the v3.0 dataset at ``source`` into the new folder ``root``.

    ``with_quantiles=False`` drops the quantile stats, as datasets written before they existed lack them.
    """
    root = Path(root)
    info = load_json(source / INFO_PATH)
    features = info["features"]
    episodes = sorted(
        pa.concat_tables(
            read_parquet(p) for p in sorted(source.glob("meta/episodes/*/*.parquet"))
        ).to_pylist(),
        key=lambda r: r["episode_index"],
    )
    data = pa.concat_tables(read_parquet(p) for p in sorted(source.glob("data/*/*.parquet")))
    decoded = {key: {} for key in video_keys(features)}
    config = VideoEncoderConfig(crf=REENCODE_CRF)
    for ep in episodes:
        ep_index, chunk = ep["episode_index"], ep["episode_index"] // V21_CHUNKS_SIZE
        rows = data.filter(pc.equal(data["episode_index"], ep_index))
        path = root / V21_DATA_PATH.format(episode_chunk=chunk, episode_index=ep_index)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(_legacy_table(rows, features), path)
        for key, cache in decoded.items():
            src = source / info["video_path"].format(
                video_key=key,
                chunk_index=ep[f"videos/{key}/chunk_index"],
                file_index=ep[f"videos/{key}/file_index"],
            )
            if src not in cache:
                cache[src] = decode_all_frames(src)
            frames, pts = cache[src]
            start = ep[f"videos/{key}/from_timestamp"]
            first = int(abs(pts - start).argmin())
            out = root / V21_VIDEO_PATH.format(episode_chunk=chunk, video_key=key, episode_index=ep_index)
            out.parent.mkdir(parents=True, exist_ok=True)
            encode_video_frames(frames[first : first + ep["length"]], out, fps=info["fps"], config=config)

    (root / "meta").mkdir(parents=True, exist_ok=True)
    tasks = read_parquet(source / DEFAULT_TASKS_PATH).sort_by("task_index").to_pylist()
    _write_jsonl(
        [{"task_index": t["task_index"], "task": t["task"]} for t in tasks], root / LEGACY_TASKS_PATH
    )
    _write_jsonl(
        [{"episode_index": e["episode_index"], "tasks": e["tasks"], "length": e["length"]} for e in episodes],
        root / LEGACY_EPISODES_PATH,
    )
    _write_jsonl(
        [
            {"episode_index": e["episode_index"], "stats": _episode_stats(e, features, with_quantiles)}
            for e in episodes
        ],
        root / LEGACY_EPISODES_STATS_PATH,
    )
    v21_features = {}
    for key, ft in features.items():
        ft = {k: v for k, v in ft.items() if k != "info"}
        if ft["dtype"] == "video":
            vi = features[key]["info"]
            ft["info"] = {
                "video.fps": float(vi["video.fps"]),
                "video.height": vi["video.height"],
                "video.width": vi["video.width"],
                "video.channels": vi["video.channels"],
                "video.codec": vi["video.codec"],
                "video.pix_fmt": vi["video.pix_fmt"],
                "video.is_depth_map": False,
                "has_audio": False,
            }
        v21_features[key] = ft
    n_videos = len(video_keys(features)) * len(episodes)
    write_json(
        {
            "codebase_version": "v2.1",
            "robot_type": info["robot_type"],
            "total_episodes": len(episodes),
            "total_frames": data.num_rows,
            "total_tasks": len(tasks),
            "total_videos": n_videos,
            "total_chunks": 1,
            "chunks_size": V21_CHUNKS_SIZE,
            "fps": info["fps"],
            "splits": {"train": f"0:{len(episodes)}"},
            "data_path": V21_DATA_PATH,
            "video_path": V21_VIDEO_PATH if n_videos else None,
            "features": v21_features,
        },
        root / INFO_PATH,
    )
    return root
