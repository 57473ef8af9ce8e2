"""A strict validator of the LeRobotDataset v3.0 layout (spec §1), used on every dataset we write."""

import json
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lerobot.datasets.utils import DEFAULT_FEATURES, STAT_KEYS

INFO_KEYS = [
    "codebase_version", "fps", "features", "total_episodes", "total_frames", "total_tasks", "chunks_size",
    "data_files_size_in_mb", "video_files_size_in_mb", "data_path", "video_path", "robot_type", "splits",
]  # fmt: skip


def validate_v30(root: Path) -> None:
    root = Path(root)
    raw = (root / "meta/info.json").read_text()
    info = json.loads(raw)
    assert json.dumps(info, indent=4, ensure_ascii=False) == raw, "info.json is not written as indent-4 JSON"
    assert list(info)[: len(INFO_KEYS)] == INFO_KEYS, list(info)
    assert info["codebase_version"] == "v3.0"
    features = info["features"]
    assert list(features)[-5:] == list(DEFAULT_FEATURES)
    for key, ft in features.items():
        assert {"dtype", "shape", "names"} <= set(ft), key
    video_keys = [k for k, ft in features.items() if ft["dtype"] == "video"]
    assert (info["video_path"] is None) == (not video_keys)

    # tasks
    tasks = pq.read_table(root / "meta/tasks.parquet")
    assert tasks.schema.names == ["task_index", "task"]
    assert (
        tasks.schema.field("task").type == pa.string() and tasks.schema.field("task_index").type == pa.int64()
    )
    assert tasks.column("task_index").to_pylist() == list(range(info["total_tasks"]))
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["task"]

    # episodes
    ep_files = sorted((root / "meta/episodes").glob("chunk-*/file-*.parquet"))
    episodes = pa.concat_tables([pq.read_table(f) for f in ep_files]).to_pylist()
    assert [r["episode_index"] for r in episodes] == list(range(info["total_episodes"]))
    cols = pq.read_schema(ep_files[0]).names
    head = [
        "episode_index",
        "tasks",
        "length",
        "data/chunk_index",
        "data/file_index",
        "dataset_from_index",
        "dataset_to_index",
    ]
    for k in video_keys:
        head += [f"videos/{k}/{c}" for c in ("chunk_index", "file_index", "from_timestamp", "to_timestamp")]
    stats_cols = [
        f"stats/{k}/{s}"
        for k, ft in features.items()
        if ft["dtype"] not in ("string", "language")
        for s in STAT_KEYS
    ]
    assert cols == head + stats_cols + ["meta/episodes/chunk_index", "meta/episodes/file_index"], cols
    ep_schema = pq.read_schema(ep_files[0])
    assert ep_schema.field("tasks").type == pa.list_(pa.string())
    assert ep_schema.field("length").type == pa.int64()
    for k in video_keys:
        assert ep_schema.field(f"videos/{k}/from_timestamp").type == pa.float64()

    # data
    total = 0
    for r in episodes:
        assert r["dataset_from_index"] == total and r["dataset_to_index"] == total + r["length"]
        total += r["length"]
    assert total == info["total_frames"]
    data_files = sorted((root / "data").glob("chunk-*/file-*.parquet"))
    expect_cols = [k for k, ft in features.items() if ft["dtype"] != "video"]
    seen = 0
    for f in data_files:
        pf = pq.ParquetFile(f)
        assert pf.schema_arrow.names == expect_cols
        assert b"huggingface" in pf.schema_arrow.metadata
        t = pf.read(columns=["index", "episode_index", "frame_index"])
        idx = t.column("index").to_numpy()
        assert np.array_equal(idx, np.arange(seen, seen + len(idx))), f"{f}: index not contiguous"
        seen += len(idx)
    assert seen == info["total_frames"]
    for r in episodes:
        path = root / info["data_path"].format(
            chunk_index=r["data/chunk_index"], file_index=r["data/file_index"]
        )
        eps = pq.read_table(path, columns=["episode_index"]).column("episode_index").to_pylist()
        assert eps.count(r["episode_index"]) == r["length"]

    # videos: each episode's frames lie inside its file at from_timestamp + k / fps
    for k in video_keys:
        for r in episodes:
            path = root / info["video_path"].format(
                video_key=k, chunk_index=r[f"videos/{k}/chunk_index"], file_index=r[f"videos/{k}/file_index"]
            )
            with av.open(str(path)) as c:
                s = c.streams.video[0]
                pts = sorted(float(p.pts * s.time_base) for p in c.demux(s) if p.pts is not None)
            start = r[f"videos/{k}/from_timestamp"]
            assert abs(r[f"videos/{k}/to_timestamp"] - start - r["length"] / info["fps"]) < 1e-6
            for j in (0, r["length"] - 1):
                assert min(abs(p - (start + j / info["fps"])) for p in pts) < 1e-4

    # stats
    stats = json.loads((root / "meta/stats.json").read_text())
    for key, ft in features.items():
        if ft["dtype"] in ("string", "language"):
            continue
        assert set(stats[key]) == set(STAT_KEYS), key
        assert stats[key]["count"][0] > 0
