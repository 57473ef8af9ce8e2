"""Writing with LeRobotDataset.create and reading back: exact round trips, rollover, crash safety."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from tests.datasets.validate import validate_v30

from lerobot.datasets.dataset_writer import PENDING_DIR
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.datasets.utils import DatasetError

FPS = 10


def features(camera_dtype: str = "video", h: int = 32, w: int = 48) -> dict:
    return {
        "observation.state": {"dtype": "float32", "shape": (3,), "names": ["a", "b", "c"]},
        "action": {"dtype": "float32", "shape": (2,), "names": ["x", "y"]},
        "observation.images.cam": {
            "dtype": camera_dtype,
            "shape": (h, w, 3),
            "names": ["height", "width", "channels"],
        },
        "next.reward": {"dtype": "float64", "shape": (1,), "names": None},
        "next.done": {"dtype": "bool", "shape": (1,), "names": None},
        "grid": {"dtype": "int64", "shape": (2, 3), "names": None},
        "note": {"dtype": "string", "shape": (1,), "names": None},
    }


def make_frame(e: int, f: int, h: int = 32, w: int = 48) -> dict:
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 10 + 7 * f, (40 + 50 * e) % 256, 200 - 3 * f
    return {
        "observation.state": np.array([e, f, e * 1000 + f + 0.125], dtype=np.float32),
        "action": np.array([f * 0.5, -e], dtype=np.float32),
        "observation.images.cam": img,
        "next.reward": np.array([f / 3.0]),
        "next.done": np.array([f == 9]),
        "grid": np.arange(6).reshape(2, 3) + f,
        "note": f"episode {e} frame {f}",
    }


def record(root, n_episodes=3, lengths=(10, 14, 7), camera_dtype="video", **create_kwargs) -> LeRobotDataset:
    ds = LeRobotDataset.create(
        "test/rt", fps=FPS, features=features(camera_dtype), root=root, robot_type="sim", **create_kwargs
    )
    for e in range(n_episodes):
        for f in range(lengths[e % len(lengths)]):
            ds.add_frame(make_frame(e, f), task="even task" if e % 2 == 0 else "odd task")
        ds.save_episode()
    ds.finalize()
    return ds


@pytest.mark.parametrize("camera_dtype", ["video", "image"])
def test_round_trip_exact(tmp_path, camera_dtype):
    root = tmp_path / "ds"
    record(root, camera_dtype=camera_dtype, use_videos=camera_dtype == "video")
    validate_v30(root)
    ds = LeRobotDataset("test/rt", root=root)
    assert len(ds) == 31 and ds.num_episodes == 3
    assert list(ds.meta.tasks.index) == ["even task", "odd task"]
    i = 0
    for e, n in enumerate((10, 14, 7)):
        for f in range(n):
            item, want = ds[i], make_frame(e, f)
            for key in ("observation.state", "action"):
                np.testing.assert_array_equal(item[key].numpy(), want[key])
            assert item["next.reward"].item() == want["next.reward"][0]
            assert item["next.done"].item() == bool(want["next.done"][0])
            np.testing.assert_array_equal(item["grid"].numpy(), want["grid"])
            assert item["note"] == want["note"]
            assert item["task"] == ("even task" if e % 2 == 0 else "odd task")
            assert (
                item["index"].item() == i
                and item["frame_index"].item() == f
                and item["episode_index"].item() == e
            )
            assert item["timestamp"].item() == np.float32(f / FPS)
            img = (item["observation.images.cam"].permute(1, 2, 0) * 255).round().numpy()
            err = np.abs(img - want["observation.images.cam"])
            if camera_dtype == "image":  # PNG: lossless
                assert err.max() == 0
            else:  # AV1 at CRF 30: lossy, a few levels off at most
                assert err.mean() <= 3 and err.max() <= 8
            i += 1


def test_info_and_episode_rows_match_spec(tmp_path):
    root = tmp_path / "ds"
    record(root)
    info = json.loads((root / "meta/info.json").read_text())
    assert list(info) == [
        "codebase_version", "fps", "features", "total_episodes", "total_frames", "total_tasks", "chunks_size",
        "data_files_size_in_mb", "video_files_size_in_mb", "data_path", "video_path", "robot_type", "splits",
    ]  # fmt: skip
    assert info["splits"] == {"train": "0:3"} and info["total_frames"] == 31 and info["total_tasks"] == 2
    vinfo = info["features"]["observation.images.cam"]["info"]
    assert vinfo["video.codec"] == "av1" and vinfo["video.pix_fmt"] == "yuv420p" and vinfo["video.g"] == 2
    assert vinfo["video.crf"] == 30 and vinfo["video.preset"] == 12 and vinfo["is_depth_map"] is False
    rows = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [r["videos/observation.images.cam/from_timestamp"] for r in rows] == [0.0, 1.0, 2.4]
    assert [r["videos/observation.images.cam/to_timestamp"] for r in rows] == [1.0, 2.4, 3.1]
    assert [(r["dataset_from_index"], r["dataset_to_index"]) for r in rows] == [(0, 10), (10, 24), (24, 31)]
    pf = pq.ParquetFile(root / "data/chunk-000/file-000.parquet")
    assert [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)] == [10, 14, 7]
    hf = json.loads(pf.schema_arrow.metadata[b"huggingface"])["info"]["features"]
    assert hf["observation.state"] == {
        "feature": {"dtype": "float32", "_type": "Value"},
        "length": 3,
        "_type": "List",
    }
    assert hf["timestamp"] == {"dtype": "float32", "_type": "Value"}


def test_stats_are_aggregated_over_episodes(tmp_path):
    root = tmp_path / "ds"
    record(root)
    ds = LeRobotDataset("test/rt", root=root)
    state = np.stack(
        [make_frame(e, f)["observation.state"] for e, n in enumerate((10, 14, 7)) for f in range(n)]
    )
    np.testing.assert_allclose(ds.meta.stats["observation.state"]["mean"], state.mean(0), rtol=1e-5)
    np.testing.assert_allclose(ds.meta.stats["observation.state"]["std"], state.std(0), rtol=1e-4)
    np.testing.assert_array_equal(ds.meta.stats["observation.state"]["min"], state.min(0))
    assert ds.meta.stats["observation.images.cam"]["mean"].shape == (3, 1, 1)
    assert ds.meta.stats["index"]["count"].tolist() == [31]


def test_rollover_many_files(tmp_path):
    root = tmp_path / "ds"
    ds = LeRobotDataset.create(
        "test/roll",
        fps=FPS,
        features=features(),
        root=root,
        data_files_size_in_mb=0.005,
        video_files_size_in_mb=0.005,
    )
    for e in range(6):
        ds.add_episode([make_frame(e, f) for f in range(8)], task="t")
    ds.finalize()
    validate_v30(root)
    assert len(list((root / "data").glob("*/*.parquet"))) > 1
    assert len(list((root / "videos/observation.images.cam").glob("*/*.mp4"))) > 1
    ds = LeRobotDataset("test/roll", root=root, delta_timestamps={"observation.images.cam": [-0.1, 0.0]})
    for i in range(0, 48, 5):
        item = ds[i]
        e, f = divmod(i, 8)
        assert item["observation.state"][0].item() == e and item["observation.state"][1].item() == f
        assert abs(item["observation.images.cam"][1, 1].mean().item() * 255 - (40 + 50 * e) % 256) <= 3


def test_reading_while_recording_then_continue(tmp_path):
    root = tmp_path / "ds"
    ds = LeRobotDataset.create("test/live", fps=FPS, features=features(), root=root)
    ds.add_episode([make_frame(0, f) for f in range(5)], task="t")
    assert len(ds) == 5 and ds[4]["frame_index"].item() == 4
    ds.add_episode([make_frame(1, f) for f in range(6)], task="t")
    assert len(ds) == 11 and ds[10]["episode_index"].item() == 1
    ds.finalize()
    validate_v30(root)


def test_resume_appends(tmp_path):
    root = tmp_path / "ds"
    record(root, n_episodes=2)
    ds = LeRobotDataset.resume("test/rt", root=root)
    ds.add_episode([make_frame(2, f) for f in range(4)], task="new task")
    ds.finalize()
    validate_v30(root)
    ds = LeRobotDataset("test/rt", root=root)
    assert ds.num_episodes == 3 and len(ds) == 28
    assert ds[27]["task"] == "new task" and ds[27]["index"].item() == 27
    assert (
        ds.meta.episodes[2]["data/file_index"] == 1
    )  # resumed episodes start new files, as the reference does


CRASH_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {tests_parent!r})
    from tests.datasets.test_write_read import make_frame, features
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    ds = LeRobotDataset.create("test/crash", fps=10, features=features(), root={root!r})
    for e in range(3):
        ds.add_episode([make_frame(e, f) for f in range(6)], task="t")
    for f in range(4):
        ds.add_frame(make_frame(3, f), task="t")
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_kill_mid_episode_keeps_saved_episodes_and_resumes(tmp_path):
    root = tmp_path / "ds"
    script = CRASH_SCRIPT.format(
        tests_parent=str(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))), root=str(root)
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert (root / PENDING_DIR).exists()
    ds = LeRobotDataset("test/crash", root=root)  # reads the three saved episodes where they lie
    assert ds.num_episodes == 3 and len(ds) == 18 and ds.meta.staged_episodes == [0, 1, 2]
    assert ds[17]["observation.state"][1].item() == 5
    assert (root / PENDING_DIR).exists()  # opening merged nothing: resume does
    ds = LeRobotDataset.resume("test/crash", root=root)
    assert not (root / PENDING_DIR).exists()
    validate_v30(root)
    ds.add_episode([make_frame(3, f) for f in range(5)], task="t")
    ds.finalize()
    ds = LeRobotDataset("test/crash", root=root)
    assert ds.num_episodes == 4 and len(ds) == 23
    assert ds[22]["observation.state"][1].item() == 4


def test_recording_cost_does_not_rewrite_earlier_files(tmp_path):
    root = tmp_path / "ds"
    ds = LeRobotDataset.create("test/cost", fps=FPS, features=features(), root=root)
    ds.add_episode([make_frame(0, f) for f in range(5)], task="t")
    first = {p: p.stat().st_mtime_ns for p in (root / PENDING_DIR).rglob("*") if p.is_file()}
    for e in range(1, 4):
        ds.add_episode([make_frame(e, f) for f in range(5)], task="t")
    for p, mtime in first.items():
        assert p.stat().st_mtime_ns == mtime, f"{p} was rewritten by a later save_episode"
    ds.finalize()


# ------------------------------------------------------------------------------------ bad input


@pytest.fixture
def writer(tmp_path):
    ds = LeRobotDataset.create("test/bad", fps=FPS, features=features(), root=tmp_path / "ds")
    yield ds
    ds.finalize()


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda fr: fr.pop("action"), r"missing \['action'\]"),
        (lambda fr: fr.update(extra=np.zeros(1)), r"unexpected \['extra'\]"),
        (lambda fr: fr.update(index=np.zeros(1)), "filled in by the dataset"),
        (
            lambda fr: fr.update(action=np.zeros(3, np.float32)),
            r"'action' expects shape \(2,\), found shape \(3,\)",
        ),
        (
            lambda fr: fr.update(grid=np.zeros((2, 3), np.float32)),
            "'grid' expects dtype int64, found float32",
        ),
        (lambda fr: fr.update(note=3), "'note' expects a str"),
        (
            lambda fr: fr.update(**{"observation.images.cam": np.zeros((10, 10, 3), np.uint8)}),
            "expects an image of shape",
        ),
        (
            lambda fr: fr.update(**{"observation.images.cam": np.full((32, 48, 3), 2.0)}),
            r"must be in \[0, 1\]",
        ),
    ],
)
def test_bad_frames_raise_one_clear_error(writer, mutate, match):
    frame = make_frame(0, 0)
    mutate(frame)
    with pytest.raises(DatasetError, match=match):
        writer.add_frame(frame, task="t")


def test_bad_frame_leaves_saved_data_untouched(writer):
    writer.add_episode([make_frame(0, f) for f in range(3)], task="t")
    before = {p: p.read_bytes() for p in writer.root.rglob("*") if p.is_file()}
    with pytest.raises(DatasetError):
        writer.add_frame({"action": np.zeros(2, np.float32)}, task="t")
    after = {p: p.read_bytes() for p in writer.root.rglob("*") if p.is_file()}
    assert before == after


def test_missing_task_and_empty_episode(writer, caplog):
    with pytest.raises(DatasetError, match="no frames"):
        writer.save_episode()
    writer.add_frame(make_frame(0, 0))
    assert writer.save_episode(task="given later") == 0
    writer.add_frame(make_frame(1, 0))  # no task anywhere (the guide's frames): the empty task, said once
    assert writer.save_episode() == 1
    assert "1 frames have no task; they are stored with the empty task ''" in caplog.text
    assert [writer[i]["task"] for i in range(2)] == ["given later", ""]


def test_frames_may_carry_their_timestamp(writer):
    """LeRobot's and the guide's frames carry "timestamp"; it must agree with the frame's place at fps."""
    writer.add_episode([{**make_frame(0, f), "timestamp": f / FPS + 1e-3} for f in range(3)], task="t")
    assert writer[2]["timestamp"].item() == np.float32(2 / FPS)
    with pytest.raises(
        DatasetError, match=r"Frame 1 of this episode has timestamp 0.5, but at fps=10 it is at 0.1"
    ):
        writer.add_episode([{**make_frame(1, f), "timestamp": f * 0.5} for f in range(3)], task="t")


def test_create_refuses_existing_root_and_bad_features(tmp_path):
    root = tmp_path / "ds"
    record(root, n_episodes=1)
    with pytest.raises(FileExistsError, match="resume"):
        LeRobotDataset.create("test/rt", fps=FPS, features=features(), root=root)
    with pytest.raises(DatasetError, match="'/'"):
        LeRobotDataset.create(
            "x", fps=FPS, features={"a/b": {"dtype": "float32", "shape": (1,)}}, root=tmp_path / "x"
        )
    with pytest.raises(DatasetError, match="use_videos=False"):
        LeRobotDataset.create("x", fps=FPS, features=features(), root=tmp_path / "y", use_videos=False)


def test_torch_tensors_and_chw_float_images_accepted(tmp_path):
    ds = LeRobotDataset.create("test/torch", fps=FPS, features=features(), root=tmp_path / "ds")
    frame = make_frame(0, 0)
    frame["observation.state"] = torch.from_numpy(frame["observation.state"])
    frame["observation.images.cam"] = (
        torch.from_numpy(frame["observation.images.cam"]).permute(2, 0, 1).float() / 255
    )
    ds.add_frame(frame, task="t")
    ds.save_episode()
    ds.finalize()
    item = LeRobotDataset("test/torch", root=tmp_path / "ds")[0]
    assert abs(item["observation.images.cam"][0].mean().item() * 255 - 10) <= 3


def test_create_with_resume_true_continues(tmp_path):
    root = tmp_path / "ds"
    record(root, n_episodes=1)
    ds = LeRobotDataset.create("test/rt", fps=FPS, features=features(), root=root, resume=True)
    ds.add_episode([make_frame(1, f) for f in range(3)], task="t")
    ds.finalize()
    assert LeRobotDataset("test/rt", root=root).num_episodes == 2
    other = {**features(), "extra": {"dtype": "float32", "shape": (1,)}}
    with pytest.raises(DatasetError, match=r"differ .* \['extra'\]"):
        LeRobotDataset.create("test/rt", fps=FPS, features=other, root=root, resume=True)


def test_guide_flow_add_episode_consolidate_save(tmp_path):
    ds = LeRobotDataset.create("test/guide", fps=FPS, features=features(), root=tmp_path / "ds")
    ds.add_episode([make_frame(0, f) for f in range(4)], task="t")
    ds.consolidate()
    assert ds.meta.stats["action"]["count"].tolist() == [4] and len(ds) == 4
    ds.add_episode([make_frame(1, f) for f in range(3)], task="t")
    out = ds.save(tmp_path / "copy")
    validate_v30(out)
    copy = LeRobotDataset("test/guide", root=out)
    assert copy.num_episodes == 2 and copy[6]["frame_index"].item() == 2
    with pytest.raises(FileExistsError):
        LeRobotDataset("test/guide", root=out).save(tmp_path / "ds")
    with pytest.raises(RuntimeError, match="opened for reading"):
        copy.add_frame(make_frame(0, 0), task="t")
