"""Dataset editing: every output is a valid v3.0 dataset with exactly the expected frames, tasks and stats,
video is stream-copied where the cut allows, and a failure or kill mid-way leaves the input intact."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from tests.datasets.test_write_read import FPS, features, make_frame
from tests.datasets.validate import validate_v30

from lerobot.datasets import tools
from lerobot.datasets.compute_stats import aggregate_stats, compute_episode_stats, deserialize_stats
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.datasets.utils import DatasetError, merge_datasets

LENGTHS = {0: 10, 1: 14, 2: 7, 3: 12, 4: 9}
NUMERIC = ("observation.state", "action", "next.reward", "next.done", "grid")


def task_of(e: int) -> str:
    return ("even task", "odd task", "third task")[e % 2 if e != 3 else 2]


def record_episodes(root, episodes, camera_dtype="video", fps=FPS, repo_id="test/src") -> LeRobotDataset:
    """A dataset holding the content of the given source episodes, recorded from raw frames."""
    ds = LeRobotDataset.create(
        repo_id,
        fps=fps,
        features=features(camera_dtype),
        root=root,
        robot_type="sim",
        use_videos=camera_dtype == "video",
    )
    for e in episodes:
        for f in range(LENGTHS[e]):
            ds.add_frame(make_frame(e, f), task=task_of(e))
        ds.save_episode()
    ds.finalize()
    return ds


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("src") / "ds"
    record_episodes(root, list(LENGTHS))
    return LeRobotDataset("test/src", root=root)


def episode_rows(root) -> list[dict]:
    files = sorted((root / "meta/episodes").glob("chunk-*/file-*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files]).to_pylist()


def assert_same_frame(a: dict, b: dict, exact_pixels: bool = True) -> None:
    for key in (k for k in NUMERIC if k in a):  # a may be an edit that removed one
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy(), err_msg=key)
    assert a["note"] == b["note"] and a["task"] == b["task"]
    pa_, pb = a["observation.images.cam"], b["observation.images.cam"]
    if exact_pixels:
        assert torch.equal(pa_, pb)
    else:
        assert (pa_ - pb).abs().mean() < 0.03


def assert_stats_recomputed(root) -> None:
    """Per-episode stats equal stats computed from the written rows; stats.json aggregates them."""
    ds = LeRobotDataset("check", root=root)
    info = json.loads((root / "meta/info.json").read_text())
    feats = ds.features
    per_episode = []
    for row in episode_rows(root):
        stored = {}
        for col, value in row.items():
            if col.startswith("stats/"):
                _, key, stat = col.split("/")
                stored.setdefault(key, {})[stat] = value
        stored = deserialize_stats(stored)
        per_episode.append(stored)
        lo, hi = row["dataset_from_index"], row["dataset_to_index"]
        data = {k: ds._numeric[k][lo:hi].numpy() for k in ds._numeric}
        data["timestamp"] = data["frame_index"] / info["fps"]
        fresh = compute_episode_stats(data, {k: ft for k, ft in feats.items() if k in data})
        for key, stats in fresh.items():
            for stat, value in stats.items():
                np.testing.assert_allclose(stored[key][stat], value, rtol=1e-6, err_msg=f"{key}/{stat}")
    agg = aggregate_stats(per_episode)
    on_disk = deserialize_stats(json.loads((root / "meta/stats.json").read_text()))
    assert set(on_disk) == set(agg)
    for key in agg:
        for stat in agg[key]:
            np.testing.assert_allclose(on_disk[key][stat], agg[key][stat], rtol=1e-7, err_msg=f"{key}/{stat}")


def assert_stats_equal(a_root, b_root) -> None:
    a = deserialize_stats(json.loads((a_root / "meta/stats.json").read_text()))
    b = deserialize_stats(json.loads((b_root / "meta/stats.json").read_text()))
    assert set(a) == set(b)
    for key in a:
        for stat in a[key]:
            np.testing.assert_allclose(
                a[key][stat], b[key][stat], rtol=1e-6, atol=1e-9, err_msg=f"{key}/{stat}"
            )


def test_delete_episodes_matches_a_fresh_recording(source, tmp_path):
    out = source.delete_episodes([1, 3], output_dir=tmp_path / "out")
    validate_v30(out.root)
    assert out.num_episodes == 3 and len(out) == 10 + 7 + 9
    assert out.edit_report.video_bytes_reencoded == 0 and out.edit_report.reencoded_episodes == []
    assert list(out.meta.tasks.index) == ["even task"]
    i = 0
    for new_ep, old_ep in enumerate([0, 2, 4]):
        for f in range(LENGTHS[old_ep]):
            item = out[i]
            assert item["episode_index"].item() == new_ep and item["index"].item() == i
            assert item["frame_index"].item() == f and item["task_index"].item() == 0
            assert_same_frame(item, source.get_episode(old_ep)[f])
            i += 1
    # Stats equal those of the same episodes recorded from the raw frames.
    fresh = record_episodes(tmp_path / "fresh", [0, 2, 4])
    assert_stats_equal(out.root, fresh.root)
    assert_stats_recomputed(out.root)
    assert [r["tasks"] for r in episode_rows(out.root)] == [["even task"]] * 3
    with pytest.raises(DatasetError, match=r"Cannot delete episodes \[7\]"):
        source.delete_episodes([7], output_dir=tmp_path / "bad")
    with pytest.raises(FileExistsError, match="already exists"):
        source.delete_episodes([0], output_dir=tmp_path / "out")


def test_edits_keep_the_source_file_name_templates(source, tmp_path):
    """info.json's data_path / video_path are templates: an edit writes (and reads) by the source's."""
    import shutil

    root = tmp_path / "custom"
    shutil.copytree(source.root, root)
    info = json.loads((root / "meta/info.json").read_text())
    info["data_path"] = "data/c{chunk_index:03d}/f{file_index:03d}.parquet"
    info["video_path"] = "videos/{video_key}/c{chunk_index:03d}/f{file_index:03d}.mp4"
    for old in sorted(root.glob("data/chunk-*/file-*.parquet")) + sorted(
        root.glob("videos/*/chunk-*/file-*.mp4")
    ):
        new = old.parent.parent / old.parent.name.replace("chunk-", "c") / old.name.replace("file-", "f")
        new.parent.mkdir(parents=True, exist_ok=True)
        old.rename(new)
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
    custom = LeRobotDataset("test/custom", root=root)
    out = custom.delete_episodes([1], output_dir=tmp_path / "out")
    assert (
        out.meta.info["data_path"] == info["data_path"] and out.meta.info["video_path"] == info["video_path"]
    )
    assert sorted(p.relative_to(out.root).as_posix() for p in out.root.glob("data/**/*.parquet")) == [
        "data/c000/f000.parquet"
    ]
    assert list(out.root.glob("videos/*/c000/f000.mp4")) and not list(out.root.glob("videos/*/chunk-*"))
    assert_same_frame(out[len(out) - 1], source.get_episode(4)[LENGTHS[4] - 1])


def test_whole_files_are_copied_byte_for_byte(source, tmp_path):
    out = source.remove_feature("grid", output_dir=tmp_path / "out")
    validate_v30(out.root)
    assert "grid" not in out.features and out.edit_report.video_bytes_reencoded == 0
    src_mp4 = sorted(source.root.glob("videos/**/*.mp4"))
    out_mp4 = sorted(out.root.glob("videos/**/*.mp4"))
    assert [p.read_bytes() for p in src_mp4] == [p.read_bytes() for p in out_mp4]
    assert out.edit_report.video_bytes_copied == sum(p.stat().st_size for p in src_mp4)
    for i in range(0, len(source), 5):
        assert_same_frame(out[i], source[i])


def test_split_fractions_and_named(source, tmp_path):
    parts = source.split([0.6, 0.4], output_dir=tmp_path / "s")
    assert [p.num_episodes for p in parts] == [3, 2]
    assert [p.root.name for p in parts] == ["s_split0", "s_split1"]
    named = source.split({"train": [0, 3], "val": [4]}, output_dir=tmp_path / "n")
    assert named["train"].num_episodes == 2 and named["val"].num_episodes == 1
    assert list(named["train"].meta.tasks.index) == ["even task", "third task"]
    for p in [*parts, *named.values()]:
        validate_v30(p.root)
        assert_stats_recomputed(p.root)
        assert p.edit_report.video_bytes_reencoded == 0
    got = [parts[0][i] for i in range(len(parts[0]))] + [parts[1][i] for i in range(len(parts[1]))]
    assert len(got) == len(source)
    for i in range(0, len(source), 3):
        assert_same_frame(got[i], source[i])
    ep3 = named["train"].get_episode(1)
    for f in (0, LENGTHS[3] - 1):
        assert_same_frame(ep3[f], source.get_episode(3)[f])
    with pytest.raises(DatasetError, match="sum to at most 1"):
        source.split([0.8, 0.5], output_dir=tmp_path / "bad")
    with pytest.raises(DatasetError, match="get no episode"):
        source.split([0.95, 0.05], output_dir=tmp_path / "bad")


def test_slice_on_episode_boundaries_copies_video(source, tmp_path):
    head = source.slice_frames(None, 24, output_dir=tmp_path / "head")  # episodes 0 and 1 exactly
    tail = source.slice_frames(24, None, output_dir=tmp_path / "tail")
    for part in (head, tail):
        validate_v30(part.root)
        assert part.edit_report.reencoded_episodes == []
    assert (head.num_episodes, len(head), tail.num_episodes, len(tail)) == (2, 24, 3, len(source) - 24)
    for i in range(len(tail)):
        assert_same_frame(tail[i], source[24 + i])
    assert isinstance(source[3], dict)  # an int still returns a frame


def test_slice_inside_episodes_reencodes_only_the_cut_ones(source, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path))
    out = source[5:30]  # 5 frames of episode 0, all of episode 1, 6 frames of episode 2
    assert out.root == source.root.parent / "ds_frames_5_30"
    try:
        validate_v30(out.root)
        assert len(out) == 25 and out.num_episodes == 3
        assert out.edit_report.reencoded_episodes == [0, 2] and out.edit_report.video_bytes_reencoded > 0
        assert [r["length"] for r in episode_rows(out.root)] == [5, 14, 6]
        for i in range(25):
            item, want = out[i], source[5 + i]
            assert_same_frame(item, want, exact_pixels=item["episode_index"].item() == 1)
        assert out[0]["frame_index"].item() == 0 and out[0]["timestamp"].item() == 0.0
        assert out[19]["frame_index"].item() == 0  # episode 2 restarts at frame 0
        assert_stats_recomputed(out.root)
        # Camera stats of a cut episode come from its kept frames.
        rows = episode_rows(out.root)
        frames = torch.stack([out[i]["observation.images.cam"] for i in range(19, 25)])
        np.testing.assert_allclose(
            np.asarray(rows[2]["stats/observation.images.cam/mean"]).ravel(),
            frames.mean(dim=(0, 2, 3)).numpy(),
            atol=0.01,
        )
    finally:
        import shutil

        shutil.rmtree(out.root)
    with pytest.raises(DatasetError, match="step 2"):
        source[0:10:2]
    with pytest.raises(DatasetError, match="no frames"):
        source.slice_frames(30, 10, output_dir=tmp_path / "empty")


def test_add_feature_from_array_and_function(source, tmp_path):
    n = len(source)
    values = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    out = source.add_feature(
        name="obs.extra", dtype="float32", shape=(2,), values=values, output_dir=tmp_path / "a"
    )
    validate_v30(out.root)
    assert list(out.features)[:8][-1] == "obs.extra"
    for i in (0, 13, n - 1):
        np.testing.assert_array_equal(out[i]["obs.extra"].numpy(), values[i])
        assert_same_frame(out[i], source[i])
    assert_stats_recomputed(out.root)
    assert out.edit_report.video_bytes_reencoded == 0

    fn = source.add_feature(
        "progress",
        "float64",
        (1,),
        lambda fr: fr["frame_index"] / LENGTHS[int(fr["episode_index"])],
        output_dir=tmp_path / "b",
    )
    validate_v30(fn.root)
    for i in (0, 11, n - 1):
        item = fn[i]
        assert item["progress"].item() == pytest.approx(
            item["frame_index"].item() / LENGTHS[item["episode_index"].item()]
        )
    with pytest.raises(DatasetError, match="has 52 frames"):
        source.add_feature("x", "float32", (2,), values[:-1], output_dir=tmp_path / "c")
    with pytest.raises(DatasetError, match=r"per-frame shape \(2,\); declared shape is \(3,\)"):
        source.add_feature("x", "float32", (3,), values, output_dir=tmp_path / "c")
    with pytest.raises(DatasetError, match="already exists"):
        source.add_feature("action", "float32", (2,), values, output_dir=tmp_path / "c")
    with pytest.raises(DatasetError, match="not supported"):
        source.add_feature("cam2", "video", (8, 8, 3), values, output_dir=tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_remove_feature(source, tmp_path):
    out = source.remove_feature(["observation.images.cam", "note"], output_dir=tmp_path / "r")
    validate_v30(out.root)
    assert out.meta.info["video_path"] is None and not (out.root / "videos").exists()
    assert "observation.images.cam" not in out[0] and "note" not in out[0]
    assert not any(c.startswith("stats/observation.images.cam") for c in episode_rows(out.root)[0])
    for i in (0, 20, len(source) - 1):
        for key in NUMERIC:
            np.testing.assert_array_equal(out[i][key].numpy(), source[i][key].numpy())
    assert_stats_recomputed(out.root)
    with pytest.raises(DatasetError, match=r"Cannot remove \['timestamp'\].*required"):
        source.remove_feature("timestamp", output_dir=tmp_path / "x")
    with pytest.raises(DatasetError, match=r"\['nope'\] do not exist"):
        source.remove_feature("nope", output_dir=tmp_path / "x")


def test_merge_unions_tasks_and_reindexes(source, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path))
    other = record_episodes(tmp_path / "test/other", [3, 1], repo_id="test/other")
    # A folder, a repo id (resolved in HF_LEROBOT_HOME) and the default output folder.
    out = merge_datasets([source.root, "test/other"], output_repo_id="test/merged")
    assert out.root == tmp_path / "test/merged"
    validate_v30(out.root)
    assert out.num_episodes == 7 and len(out) == len(source) + LENGTHS[3] + LENGTHS[1]
    assert list(out.meta.tasks.index) == ["even task", "odd task", "third task"]
    assert out.edit_report.video_bytes_reencoded == 0
    for i in range(len(source)):
        assert_same_frame(out[i], source[i])
    for j in range(len(other)):
        item = out[len(source) + j]
        assert_same_frame(item, other[j])
        assert item["index"].item() == len(source) + j
    assert out[len(source)]["episode_index"].item() == 5
    fresh = record_episodes(tmp_path / "fresh", [*LENGTHS, 3, 1])
    assert_stats_equal(out.root, fresh.root)
    assert_stats_recomputed(out.root)


def test_merge_refuses_mismatches_naming_them(source, tmp_path):
    fast = record_episodes(tmp_path / "fast", [0], fps=20, repo_id="test/fast")
    with pytest.raises(DatasetError, match=r"fps 20 != 10"):
        merge_datasets([source, fast], output_repo_id="x/m", output_dir=tmp_path / "m")
    fewer = source.remove_feature("grid", output_dir=tmp_path / "fewer")
    with pytest.raises(DatasetError, match=r"only in datasets\[0\]: \['grid'\]"):
        merge_datasets([source, fewer], output_repo_id="x/m", output_dir=tmp_path / "m")
    images = record_episodes(tmp_path / "img", [0], camera_dtype="image", repo_id="test/img")
    with pytest.raises(DatasetError, match=r"'observation.images.cam' dtype 'image' != 'video'"):
        merge_datasets([source, images], output_repo_id="x/m", output_dir=tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_image_dataset_edits(tmp_path):
    src = record_episodes(tmp_path / "img", [0, 1, 2], camera_dtype="image")
    out = src.delete_episodes([0], output_dir=tmp_path / "d")
    validate_v30(out.root)
    for i in range(len(out)):
        assert_same_frame(out[i], src[10 + i])
    cut = src.slice_frames(3, 20, output_dir=tmp_path / "s")
    validate_v30(cut.root)
    assert_stats_recomputed(cut.root)
    for i in range(len(cut)):
        assert_same_frame(cut[i], src[3 + i])


def snapshot(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("in_place", [False, True])
def test_failure_mid_write_leaves_input_intact(source, tmp_path, monkeypatch, in_place):
    import shutil

    root = tmp_path / "ds"
    shutil.copytree(source.root, root)
    ds = LeRobotDataset("test/src", root=root)
    before = snapshot(root)

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tools, "_write_episodes", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        ds.delete_episodes([0], in_place=in_place)
    assert snapshot(root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no output, no temporary left
    validate_v30(root)


def test_in_place_replaces_the_dataset(source, tmp_path):
    import shutil

    root = tmp_path / "ds"
    shutil.copytree(source.root, root)
    out = LeRobotDataset("test/src", root=root).delete_episodes([0, 1], in_place=True)
    assert out.root == root and out.num_episodes == 3
    validate_v30(root)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
    assert_same_frame(LeRobotDataset("test/src", root=root)[0], source.get_episode(2)[0])


def test_kill_9_mid_edit_leaves_input_intact(source, tmp_path):
    import shutil

    root = tmp_path / "ds"
    shutil.copytree(source.root, root)
    before = snapshot(root)
    script = textwrap.dedent(
        f"""
        import sys, time
        from lerobot.datasets import tools
        from lerobot.datasets.lerobot_dataset import LeRobotDataset

        real = tools._write_episodes
        def slow(*args, **kwargs):
            print("writing", flush=True)
            time.sleep(60)
            return real(*args, **kwargs)
        tools._write_episodes = slow
        LeRobotDataset("test/src", root={str(root)!r}).delete_episodes([1], in_place=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert snapshot(root) == before
    validate_v30(root)
    ds = LeRobotDataset("test/src", root=root)
    for i in range(0, len(source), 4):
        assert_same_frame(ds[i], source[i])


def test_episode_not_starting_on_a_keyframe_is_reencoded(tmp_path):
    """Files from tools that encode a whole session as one stream cannot be cut by copying packets."""
    from lerobot.datasets.video import VideoEncoderConfig, decode_all_frames, encode_video_frames

    src = record_episodes(tmp_path / "src", [0, 1, 2])
    mp4 = next(src.root.glob("videos/**/*.mp4"))
    frames, _ = decode_all_frames(mp4)
    encode_video_frames(list(frames), mp4, FPS, VideoEncoderConfig(g=1000))  # one keyframe, at frame 0
    src = LeRobotDataset("test/src", root=src.root)
    out = src.delete_episodes([0], output_dir=tmp_path / "out")
    validate_v30(out.root)
    assert out.edit_report.reencoded_episodes == [0, 1]  # neither kept episode starts on a keyframe
    for i in range(len(out)):
        assert_same_frame(out[i], src[LENGTHS[0] + i], exact_pixels=False)
