"""v2.1 -> v3.0 conversion gives back the dataset the reference wrote (spec §1.13).

The v2.1 input is the reference's v3.0 fixture split back into the legacy layout (``v21_factory``),
so the converted dataset must equal the fixture: same frames, same episode offsets, same stats and
the same on-disk schemas.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from tests.conftest import PEER_VIDEO
from tests.datasets.v21_factory import V21_DATA_PATH, V21_VIDEO_PATH, make_v21_dataset

from lerobot.datasets.convert import v21_to_v30
from lerobot.datasets.convert.v21_to_v30 import convert_dataset_v21_to_v30
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.datasets.utils import DEFAULT_DATA_PATH, DEFAULT_VIDEO_PATH, DatasetError, load_json
from lerobot.scripts.convert_dataset import main

REPO_ID = "peer/video_small"
CAM = "observation.images.front"
PIXEL_TOL = 3 / 255
MB = 1024**2
EPISODES_FILE = "meta/episodes/chunk-000/file-000.parquet"
DATA_FILE = "data/chunk-000/file-000.parquet"
INFO_KEY_ORDER = [
    "codebase_version",
    "fps",
    "features",
    "total_episodes",
    "total_frames",
    "total_tasks",
    "chunks_size",
    "data_files_size_in_mb",
    "video_files_size_in_mb",
    "data_path",
    "video_path",
    "robot_type",
    "splits",
]


@pytest.fixture(scope="module")
def v21_root(tmp_path_factory) -> Path:
    return make_v21_dataset(tmp_path_factory.mktemp("v21") / "video_small")


@pytest.fixture(scope="module")
def converted(v21_root) -> Path:
    return convert_dataset_v21_to_v30(v21_root)


@pytest.fixture(scope="module")
def peer_frames() -> list[dict]:
    ds = LeRobotDataset(REPO_ID, root=PEER_VIDEO, cache_video_frames=True)
    return [ds[i] for i in range(len(ds))]


def assert_same_frames(ds: LeRobotDataset, expected: list[dict]) -> None:
    assert len(ds) == len(expected)
    for i, exp in enumerate(expected):
        item = ds[i]
        for key in (
            "observation.state",
            "action",
            "timestamp",
            "frame_index",
            "episode_index",
            "index",
            "task_index",
        ):
            assert item[key].dtype == exp[key].dtype, key
            assert torch.equal(item[key], exp[key]), (i, key)
        assert item["task"] == exp["task"]
        assert (item[CAM] - exp[CAM]).abs().max().item() <= PIXEL_TOL, i


def test_layout(v21_root, converted):
    assert converted == v21_root.with_name("video_small_v30")
    files = sorted(str(p.relative_to(converted)) for p in converted.rglob("*") if p.is_file())
    assert files == [
        DATA_FILE,
        "meta/episodes/chunk-000/file-000.parquet",
        "meta/info.json",
        "meta/stats.json",
        "meta/tasks.parquet",
        f"videos/{CAM}/chunk-000/file-000.mp4",
    ]
    assert [p.name for p in v21_root.parent.iterdir() if p.name.startswith(".")] == []


def test_frames_match_fixture(converted, peer_frames):
    assert_same_frames(LeRobotDataset(REPO_ID, root=converted), peer_frames)


def test_v21_layout_reads_directly(v21_root, peer_frames):
    ds = LeRobotDataset(REPO_ID, root=v21_root)
    assert ds.meta.version == "v2.1"
    assert_same_frames(ds, peer_frames)


def test_info_json(converted):
    info = load_json(converted / "meta/info.json")
    expected = load_json(PEER_VIDEO / "meta/info.json")
    assert list(info) == INFO_KEY_ORDER
    assert info["fps"] == 10 and isinstance(info["fps"], int)
    for key in INFO_KEY_ORDER:
        if key != "features":
            assert info[key] == expected[key], key
    assert list(info["features"]) == list(expected["features"])
    for key, ft in info["features"].items():
        if ft["dtype"] == "video":
            assert "fps" not in ft and ft["info"]["video.fps"] == 10
            assert {k: v for k, v in ft.items() if k != "info"} == {
                k: v for k, v in expected["features"][key].items() if k != "info"
            }
        else:
            assert ft == {**expected["features"][key], "fps": 10}
    raw = (converted / "meta/info.json").read_text()
    assert raw == json.dumps(info, indent=4, ensure_ascii=False)


def test_data_parquet_matches_fixture(converted):
    ours, theirs = pq.ParquetFile(converted / DATA_FILE), pq.ParquetFile(PEER_VIDEO / DATA_FILE)
    assert ours.schema_arrow.equals(theirs.schema_arrow, check_metadata=False)
    hf = json.loads(ours.schema_arrow.metadata[b"huggingface"])
    assert (
        hf["info"]["features"] == json.loads(theirs.schema_arrow.metadata[b"huggingface"])["info"]["features"]
    )
    assert [ours.metadata.row_group(i).num_rows for i in range(ours.num_row_groups)] == [20, 25, 15]
    assert ours.read().equals(theirs.read())


def test_episodes_parquet_matches_fixture(converted):
    ours, theirs = pq.read_table(converted / EPISODES_FILE), pq.read_table(PEER_VIDEO / EPISODES_FILE)
    assert ours.schema.equals(theirs.schema, check_metadata=False)
    assert ours.schema.metadata is None
    timestamps = [c for c in ours.column_names if c.endswith("_timestamp")]
    assert ours.drop_columns(timestamps).equals(theirs.drop_columns(timestamps))
    np.testing.assert_allclose(ours[f"videos/{CAM}/from_timestamp"].to_pylist(), [0.0, 2.0, 4.5], atol=1e-9)
    np.testing.assert_allclose(ours[f"videos/{CAM}/to_timestamp"].to_pylist(), [2.0, 4.5, 6.0], atol=1e-9)


def test_stats_json_matches_fixture(converted):
    ours, theirs = load_json(converted / "meta/stats.json"), load_json(PEER_VIDEO / "meta/stats.json")
    assert sorted(ours) == sorted(theirs)
    for key, stats in theirs.items():
        assert list(ours[key]) == list(stats), key
        for stat, value in stats.items():
            np.testing.assert_allclose(ours[key][stat], value, rtol=1e-4, atol=1e-4, err_msg=f"{key}/{stat}")


def test_tasks_parquet_matches_fixture(converted):
    assert pq.read_schema(converted / "meta/tasks.parquet").names == ["task_index", "task"]
    pd.testing.assert_frame_equal(
        pd.read_parquet(converted / "meta/tasks.parquet"), pd.read_parquet(PEER_VIDEO / "meta/tasks.parquet")
    )


def test_size_limits_split_files(v21_root, tmp_path, peer_frames):
    """Limits between the size of two episodes and of three put episodes 0-1 in one file and 2 in the next."""
    data = [
        v21_to_v30._uncompressed_size(v21_root / V21_DATA_PATH.format(episode_chunk=0, episode_index=e))
        for e in range(3)
    ]
    videos = [
        (v21_root / V21_VIDEO_PATH.format(episode_chunk=0, video_key=CAM, episode_index=e)).stat().st_size
        for e in range(3)
    ]
    out = convert_dataset_v21_to_v30(
        v21_root,
        tmp_path / "split",
        data_file_size_in_mb=(data[0] + data[1] + 1) / MB,
        video_file_size_in_mb=(videos[0] + videos[1] + 1) / MB,
    )
    for c, f in ((0, 0), (0, 1)):
        assert (out / DEFAULT_DATA_PATH.format(chunk_index=c, file_index=f)).is_file()
        assert (out / DEFAULT_VIDEO_PATH.format(video_key=CAM, chunk_index=c, file_index=f)).is_file()
    episodes = pq.read_table(out / EPISODES_FILE).to_pydict()
    assert episodes["data/file_index"] == episodes[f"videos/{CAM}/file_index"] == [0, 0, 1]
    np.testing.assert_allclose(episodes[f"videos/{CAM}/from_timestamp"], [0.0, 2.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(episodes[f"videos/{CAM}/to_timestamp"], [2.0, 4.5, 1.5], atol=1e-9)
    assert_same_frames(LeRobotDataset(REPO_ID, root=out), peer_frames)


def test_missing_quantiles_are_left_out(tmp_path):
    v21 = make_v21_dataset(tmp_path / "old", with_quantiles=False)
    out = convert_dataset_v21_to_v30(v21)
    columns = pq.read_schema(out / EPISODES_FILE).names
    assert "stats/action/min" in columns and not [c for c in columns if c.endswith("/q01")]
    stats = load_json(out / "meta/stats.json")
    assert list(stats["action"]) == ["min", "max", "mean", "std", "count"]
    expected = load_json(PEER_VIDEO / "meta/stats.json")["action"]
    np.testing.assert_allclose(stats["action"]["mean"], expected["mean"], rtol=1e-6)
    assert len(LeRobotDataset(REPO_ID, root=out)) == 60


def test_rejects_other_versions(tmp_path):
    with pytest.raises(DatasetError, match="'v3.0'"):
        convert_dataset_v21_to_v30(PEER_VIDEO, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_existing_output_is_refused(v21_root, tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(FileExistsError, match="out"):
        convert_dataset_v21_to_v30(v21_root, tmp_path / "out")


def test_interrupted_conversion_leaves_nothing(v21_root, tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(v21_to_v30, "concatenate_video_files", crash)
    with pytest.raises(KeyboardInterrupt):
        convert_dataset_v21_to_v30(v21_root, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_replace_keeps_original_as_old(v21_root, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(v21_root, root)
    assert convert_dataset_v21_to_v30(root, replace=True) == root
    assert load_json(root / "meta/info.json")["codebase_version"] == "v3.0"
    assert load_json(tmp_path / "ds_old/meta/info.json")["codebase_version"] == "v2.1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "ds_old"]


def test_cli(v21_root, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert main(["--root", str(v21_root), "--output-root", str(out), "--video-file-size-in-mb", "50"]) == 0
    assert str(out) in capsys.readouterr().out
    info = load_json(out / "meta/info.json")
    assert info["video_files_size_in_mb"] == 50 and isinstance(info["video_files_size_in_mb"], int)

    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path / "home"))
    shutil.copytree(v21_root, tmp_path / "home" / REPO_ID)
    assert main([f"--repo_id={REPO_ID}", "--data_file_size_in_mb=7", "--replace=true"]) == 0
    info = load_json(tmp_path / "home" / REPO_ID / "meta/info.json")
    assert info["codebase_version"] == "v3.0" and info["data_files_size_in_mb"] == 7

    assert main(["--root", str(PEER_VIDEO), "--output-root", str(tmp_path / "x")]) == 1
    assert "v3.0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([])


def test_module_entry_point(v21_root, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(v21_root, home / REPO_ID)
    env = {**os.environ, "HF_LEROBOT_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "lerobot.scripts.convert_dataset_v21_to_v30", f"--repo-id={REPO_ID}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert load_json(home / "peer/video_small_v30/meta/info.json")["codebase_version"] == "v3.0"
