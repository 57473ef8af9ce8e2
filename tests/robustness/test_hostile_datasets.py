"""Hostile datasets (issue 17, findings 5-7; issue 18's shape check): nothing outside the dataset is read
or written, and declared metadata that cannot be honoured is refused with one clear DatasetError.

Each case writes a tiny valid dataset with the project's own writer, then edits what a stranger's
dataset could hold (``meta/info.json``, a data file, a symlink) and checks that every reader, writer
and tool refuses it, and that files outside the dataset are byte-for-byte unchanged.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.datasets.test_hub_push import hub  # noqa: F401  (the fake Hub fixture)

from lerobot.datasets import tools
from lerobot.datasets.hub import push_to_hub
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.datasets.paths import check_template, dataset_root, validate_repo_id
from lerobot.datasets.utils import DatasetError
from lerobot.scripts import dataset_viz

DATA = "data/chunk-000/file-000.parquet"
CAM = "observation.images.cam"
VIDEO = f"videos/{CAM}/chunk-000/file-000.mp4"
FPS = 10
FEATURES = {
    "observation.state": {"dtype": "float32", "shape": (3,), "names": None},
    "action": {"dtype": "float32", "shape": (6,), "names": None},
    "grid": {"dtype": "int64", "shape": (2, 3), "names": None},
    CAM: {"dtype": "video", "shape": (16, 16, 3), "names": ["height", "width", "channels"]},
}


def frame(e: int, f: int) -> dict:
    return {
        "observation.state": np.array([e, f, 0.5], np.float32),
        "action": np.arange(6, dtype=np.float32) + f,
        "grid": np.arange(6).reshape(2, 3) + e,
        CAM: np.full((16, 16, 3), 20 * f + 40 * e, np.uint8),
    }


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("recorded") / "ds"
    ds = LeRobotDataset.create("test/hostile", fps=FPS, features=FEATURES, root=root, vcodec="h264")
    for e in range(2):
        for f in range(4):
            ds.add_frame(frame(e, f), task="pick")
        ds.save_episode()
    ds.finalize()
    return root


@pytest.fixture
def root(recorded, tmp_path) -> Path:
    """A fresh copy of the valid dataset, next to a folder ``outside`` holding files it must not reach."""
    out = tmp_path / "ds"
    shutil.copytree(recorded, out)
    outside = tmp_path / "outside"
    (outside / "chunk-000").mkdir(parents=True)
    shutil.copy(out / DATA, outside / "chunk-000" / "file-000.parquet")  # readable if followed
    (outside / "victim.txt").write_text("precious")
    return out


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def edit_info(root: Path, **changes) -> None:
    path = root / "meta/info.json"
    info = json.loads(path.read_text())
    info.update(changes)
    path.write_text(json.dumps(info, indent=4))


def set_feature(root: Path, key: str, **changes) -> None:
    path = root / "meta/info.json"
    info = json.loads(path.read_text())
    info["features"][key].update(changes)
    path.write_text(json.dumps(info, indent=4))


def open_(root: Path) -> LeRobotDataset:
    return LeRobotDataset("test/hostile", root=root)


# ------------------------------------------------------------------ finding 5: path templates

HOSTILE_DATA_PATHS = {
    "parent": "../outside/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
    "dotdot_inside": "data/chunk-{chunk_index:03d}/../file-{file_index:03d}.parquet",
    "huge_width": "data/chunk-{chunk_index:>900000000}/file-{file_index:03d}.parquet",
    "width_10": "data/chunk-{chunk_index:010d}/file-{file_index:03d}.parquet",
    "attribute": "data/chunk-{chunk_index.__class__.__mro__}/file-{file_index:03d}.parquet",
    "index": "data/chunk-{chunk_index[0]}/file-{file_index:03d}.parquet",
    "conversion": "data/chunk-{chunk_index!r}/file-{file_index:03d}.parquet",
    "positional": "data/{0}/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
    "auto_positional": "data/{}/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
    "unknown_field": "data/{evil}/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
    "float_spec": "data/chunk-{chunk_index:03f}/file-{file_index:03d}.parquet",
    "missing_field": "data/chunk-{chunk_index:03d}/file.parquet",
    "backslash": "data\\..\\..\\chunk-{chunk_index:03d}-{file_index:03d}.parquet",
    "home": "~/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
    "broken": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet{",
    "video_key_in_data": "data/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
    "not_a_string": 123,
}


@pytest.mark.parametrize("template", HOSTILE_DATA_PATHS.values(), ids=HOSTILE_DATA_PATHS.keys())
def test_hostile_data_path_is_refused_on_open(root, template):
    edit_info(root, data_path=template)
    outside = snapshot(root.parent / "outside")
    started = time.perf_counter()
    with pytest.raises(DatasetError, match="data_path"):
        open_(root)
    assert time.perf_counter() - started < 5  # the 900-million-wide field is never formatted
    assert snapshot(root.parent / "outside") == outside


def test_absolute_data_path_is_refused(root):
    edit_info(
        root,
        data_path=str(root.parent / "outside") + "/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
    )
    with pytest.raises(DatasetError, match="is absolute"):
        open_(root)


HOSTILE_VIDEO_PATHS = {
    "parent": "../outside/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
    "absolute": "/tmp/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
    "key_spec": "videos/{video_key:>99999999}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
    "key_conversion": "videos/{video_key!s}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
    "key_attribute": "videos/{video_key.__doc__}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
    "no_key": "videos/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
    "null_with_videos": None,
}


@pytest.mark.parametrize("template", HOSTILE_VIDEO_PATHS.values(), ids=HOSTILE_VIDEO_PATHS.keys())
def test_hostile_video_path_is_refused_on_open(root, template):
    edit_info(root, video_path=template)
    with pytest.raises(DatasetError, match="video_path"):
        open_(root)


@pytest.mark.parametrize("name", ["..", "../../evil", "a\\b", "~home"])
def test_video_feature_named_like_a_path_is_refused(root, name):
    info = json.loads((root / "meta/info.json").read_text())
    info["features"] = {(name if k == CAM else k): v for k, v in info["features"].items()}
    (root / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(DatasetError, match="feature name"):
        open_(root)


def test_other_valid_templates_are_followed(root):
    """Any width from 1 to 9 digits is fine: the files are found where the template says."""
    (root / "data/c0").mkdir()
    shutil.move(root / DATA, root / "data/c0/f000000000.parquet")
    edit_info(root, data_path="data/c{chunk_index:01d}/f{file_index:09d}.parquet")
    ds = open_(root)
    assert ds.num_frames == 8 and ds[5]["action"].tolist() == list(np.arange(6.0) + 1)


def test_symlinked_data_folder_leading_outside_is_refused(root):
    shutil.rmtree(root / "data/chunk-000")
    (root / "data/chunk-000").symlink_to(root.parent / "outside/chunk-000", target_is_directory=True)
    with pytest.raises(DatasetError, match="outside the dataset"):
        open_(root)


def test_symlinked_video_file_leading_outside_is_refused(root):
    moved = root.parent / "outside/file-000.mp4"
    shutil.move(root / VIDEO, moved)
    (root / VIDEO).symlink_to(moved)
    with pytest.raises(DatasetError, match="outside the dataset"):
        open_(root)


def test_hub_cache_snapshot_links_into_its_blobs_are_followed(root, tmp_path):
    """The Hub cache stores snapshots as links into ``blobs/``: reading them is not leaving the download."""
    repo = tmp_path / "datasets--test--hostile"
    snap = repo / "snapshots" / "abc123"
    (repo / "blobs").mkdir(parents=True)
    for i, path in enumerate(p for p in sorted(root.rglob("*")) if p.is_file()):
        blob = repo / "blobs" / f"blob{i}"
        shutil.copy(path, blob)
        link = snap / path.relative_to(root)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("../" * len(link.relative_to(repo).parts[1:-1]) + "../blobs") / blob.name)
    assert (snap / DATA).resolve().parent == (repo / "blobs").resolve()
    assert open_(snap).num_frames == 8


def test_resume_and_save_episode_never_write_through_a_hostile_template(root):
    edit_info(root, data_path="../outside/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet")
    before, outside = snapshot(root), snapshot(root.parent / "outside")
    with pytest.raises(DatasetError, match="data_path"):
        LeRobotDataset.resume("test/hostile", root=root)
    assert snapshot(root) == before and snapshot(root.parent / "outside") == outside


def test_interrupted_recording_is_not_merged_through_a_hostile_template(recorded, tmp_path):
    """Staged episodes (``.pending``) are merged on resume; a template edited since is refused first."""
    root = tmp_path / "ds"
    shutil.copytree(recorded, root)
    ds = LeRobotDataset.resume("test/hostile", root=root)
    for f in range(3):
        ds.add_frame(frame(2, f), task="pick")
    ds.save_episode()  # staged under .pending/, not yet merged (no finalize: as after a crash)
    assert (root / ".pending").exists()
    edit_info(root, data_path="../escape/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet")
    with pytest.raises(DatasetError, match="data_path"):
        LeRobotDataset.resume("test/hostile", root=root)
    assert not (tmp_path / "escape").exists()


def test_delete_episodes_never_writes_outside_its_output(root):
    """The attack of the issue: an output template reaching the *input's* data file through ``..``."""
    ds = open_(root)
    ds.meta.info["data_path"] = (
        f"../{root.name}/data/chunk-{{chunk_index:03d}}/file-{{file_index:03d}}.parquet"
    )
    before = snapshot(root)
    for in_place in (False, True):
        with pytest.raises(DatasetError, match="data_path"):
            tools.delete_episodes(ds, [0], in_place=in_place)
    assert snapshot(root) == before
    assert not root.with_name(f"{root.name}_delete_episodes").exists()


def test_merge_refuses_a_hostile_input_and_writes_nothing(root, recorded, tmp_path):
    edit_info(root, video_path="../outside/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4")
    with pytest.raises(DatasetError, match="video_path"):
        tools.merge_datasets([recorded, root], output_repo_id="test/merged", output_dir=tmp_path / "merged")
    assert not (tmp_path / "merged").exists()


def test_dataset_viz_refuses_a_hostile_dataset(root, tmp_path, capsys):
    edit_info(root, video_path="/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4")
    out = tmp_path / "viz"
    assert dataset_viz.main(["--repo_id", "test/hostile", "--root", str(root), "--output_dir", str(out)]) == 1
    assert "video_path" in capsys.readouterr().err
    assert not out.exists()


def test_reference_templates_pass():
    assert check_template("data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet", "data_path")
    assert check_template(
        "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4", "video_path"
    )
    v21 = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
    assert check_template(v21, "data_path", "v2.1") == ("episode_chunk", "episode_index")
    with pytest.raises(DatasetError):  # v2.1 fields are not v3.0 fields
        check_template(v21, "data_path", "v3.0")


# ------------------------------------------------------------------ finding 6: repo ids

BAD_REPO_IDS = [
    "../../X",
    "{tmp}/abs/X",
    "org/../X",
    "a/b/c",
    "..",
    ".hidden",
    "org/name-",
    "org//x",
    "org/na me",
    "",
    "x" * 97,
    "c:x",
]


@pytest.mark.parametrize("repo_id", BAD_REPO_IDS)
def test_repo_id_cannot_leave_lerobot_home(repo_id, tmp_path, monkeypatch):
    home = tmp_path / "home" / "lerobot"
    monkeypatch.setenv("HF_LEROBOT_HOME", str(home))
    repo_id = repo_id.replace("{tmp}", str(tmp_path))  # an absolute id that, if followed, stays in tmp_path
    with pytest.raises(DatasetError, match="not a valid repo id"):
        LeRobotDataset.create(repo_id, fps=FPS, features={"x": {"dtype": "float32", "shape": (1,)}})
    with pytest.raises(DatasetError, match="not a valid repo id"):
        LeRobotDataset(repo_id)
    assert list(tmp_path.iterdir()) == []  # nothing created anywhere


@pytest.mark.parametrize("repo_id", ["org/name", "name", "Org_1/na.me-2"])
def test_hub_style_repo_ids_are_accepted(repo_id, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path))
    assert validate_repo_id(repo_id) == repo_id
    assert dataset_root(repo_id) == tmp_path / repo_id


def test_merge_output_repo_id_is_validated(root, recorded):
    with pytest.raises(DatasetError, match="not a valid repo id"):
        tools.merge_datasets([recorded, root], output_repo_id="../../merged")


# ------------------------------------------------------------------ finding 7: declared metadata


@pytest.mark.parametrize("fps", [0.5, True, float("inf"), float("nan"), 1e308, -30, 0, "30", None], ids=repr)
def test_fps_must_be_a_positive_whole_number(root, fps):
    edit_info(root, fps=fps)  # json writes inf/nan as Infinity/NaN, as a hostile file would
    with pytest.raises(DatasetError, match="'fps' must be a"):
        open_(root)


def test_integral_float_fps_is_read_as_int(root):
    edit_info(root, fps=10.0)
    assert open_(root).fps == 10


@pytest.mark.parametrize("key,value", [("total_frames", -1), ("total_episodes", True), ("chunks_size", 0.5)])
def test_counts_must_be_whole_numbers(root, key, value):
    edit_info(root, **{key: value})
    with pytest.raises(DatasetError, match=key):
        open_(root)


@pytest.mark.parametrize(
    "shape",
    [[1e12], [10**12], [-5], [0], [], [True], ["6"], 6, [2**15, 2**15], [1] * 9],
    ids=repr,
)
def test_declared_shape_must_be_sane(root, shape):
    set_feature(root, "action", shape=shape)
    with pytest.raises(DatasetError, match=r"feature 'action' has shape"):
        open_(root)


@pytest.mark.parametrize("dtype", ["complex_evil", "complex64", "object", "<U10", "datetime64", None])
def test_declared_dtype_must_be_known(root, dtype):
    set_feature(root, "action", dtype=dtype)
    with pytest.raises(DatasetError, match=r"feature 'action' has dtype"):
        open_(root)


def test_camera_feature_needs_three_dims(root):
    set_feature(root, CAM, shape=[16, 48])
    with pytest.raises(DatasetError, match="expected \\(height, width, channels\\)"):
        open_(root)


def test_stored_width_must_equal_declared_width(root):
    """An action column of 6 values declared as 3 (and the reverse) names the feature and the file."""
    set_feature(root, "action", shape=[3])
    with pytest.raises(
        DatasetError, match=r"file-000\.parquet: feature 'action' stores values of shape \(6,\)"
    ):
        open_(root)


def test_stored_shape_must_equal_declared_shape(root):
    """Issue 18: a (2, 3) feature declared (3, 2) holds as many numbers but is not what was declared."""
    set_feature(root, "grid", shape=[3, 2])
    with pytest.raises(
        DatasetError, match=r"feature 'grid' stores values of shape \(2, 3\).*declares \(3, 2\)"
    ):
        open_(root)


def test_ragged_stored_lists_are_refused(root):
    """Rows of different lengths that happen to average the declared width are not read as that width."""
    table = pq.read_table(root / DATA)
    lengths = [5, 7] * (table.num_rows // 2)  # mean 6, as declared
    ragged = pa.array([list(range(n)) for n in lengths], pa.list_(pa.float32()))
    table = table.set_column(table.column_names.index("action"), "action", ragged)
    pq.write_table(table, root / DATA)
    with pytest.raises(DatasetError, match=r"feature 'action' stores values of shape \(5\.\.7,\)"):
        open_(root)


def test_shape_check_also_guards_streaming(root):
    from lerobot.datasets.streaming import StreamingLeRobotDataset

    set_feature(root, "observation.state", shape=[4])
    with pytest.raises(DatasetError, match="feature 'observation.state' stores values of shape \\(3,\\)"):
        next(iter(StreamingLeRobotDataset("test/hostile", root=root, shuffle=False)))


def test_the_valid_dataset_still_loads(root):
    ds = open_(root)
    assert ds.num_frames == 8 and tuple(ds[0]["grid"].shape) == (2, 3)


def test_camera_named_like_a_path_is_refused_at_create(tmp_path):
    features = {"..": {"dtype": "video", "shape": (16, 16, 3), "names": None}}
    with pytest.raises(DatasetError, match="cannot be a folder name"):
        LeRobotDataset.create("test/cam", fps=FPS, features=features, root=tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_create_refuses_dtypes_the_reader_refuses(tmp_path):
    with pytest.raises(DatasetError, match="unknown dtype 'complex64'"):
        LeRobotDataset.create(
            "test/c", fps=FPS, features={"x": {"dtype": "complex64", "shape": (2,)}}, root=tmp_path / "c"
        )


@pytest.mark.parametrize("value", [-1, 2**40])
def test_hostile_file_index_in_episode_rows(root, value):
    """Indices come from meta/episodes too: negative ones are refused, huge ones stay inside the root."""
    path = next((root / "meta/episodes").glob("chunk-*/file-*.parquet"))
    table = pq.read_table(path)
    column = pa.array([value] * table.num_rows, pa.int64())
    pq.write_table(
        table.set_column(table.column_names.index("data/file_index"), "data/file_index", column), path
    )
    with pytest.raises(
        DatasetError,
        match="file_index must be a non-negative integer"
        if value < 0
        else rf"{root}/data/chunk-000/file-{value}\.parquet",
    ):
        open_(root)


def test_symlink_in_meta_leading_outside_is_refused(root):
    moved = root.parent / "outside/tasks.parquet"
    shutil.move(root / "meta/tasks.parquet", moved)
    (root / "meta/tasks.parquet").symlink_to(moved)
    with pytest.raises(DatasetError, match="outside the dataset"):
        open_(root)


def test_push_never_uploads_a_file_linked_from_outside(root, hub):  # noqa: F811 (the fixture)
    (root / "notes.txt").symlink_to(root.parent / "outside/victim.txt")
    with pytest.raises(DatasetError, match="outside the dataset"):
        push_to_hub(root, "user/pushed")
    assert ("dataset", "user/pushed") not in hub.repos


def test_video_frames_of_another_size_than_declared_name_the_file(root):
    """Issue 18 for cameras: 16x16 frames declared 16x24 fail on read, naming the camera and the mp4."""
    set_feature(root, CAM, shape=[16, 24, 3])
    ds = open_(root)
    with pytest.raises(
        DatasetError, match=rf"{VIDEO}: camera '{CAM}' holds 16x16 frames .* declares shape \(16, 24, 3\)"
    ):
        ds[0]


def test_png_frames_of_another_size_than_declared_name_the_file(tmp_path):
    features = {**FEATURES, CAM: {**FEATURES[CAM], "dtype": "image"}}
    root = tmp_path / "img"
    ds = LeRobotDataset.create("test/img", fps=FPS, features=features, root=root, use_videos=False)
    for f in range(2):
        ds.add_frame(frame(0, f), task="pick")
    ds.save_episode()
    ds.finalize()
    set_feature(root, CAM, shape=[3, 16, 16])  # the older (C, H, W) order is read as well
    assert tuple(LeRobotDataset("test/img", root=root)[1][CAM].shape) == (3, 16, 16)
    set_feature(root, CAM, shape=[8, 8, 3])
    with pytest.raises(DatasetError, match=rf"{DATA}: camera '{CAM}' holds 16x16 frames"):
        LeRobotDataset("test/img", root=root)[0]


@pytest.mark.parametrize("fps", [0.5, True, 10**6, 0])
def test_create_refuses_the_fps_values_the_reader_refuses(tmp_path, fps):
    with pytest.raises(DatasetError, match="fps must be a positive integer"):
        LeRobotDataset.create(
            "test/f", fps=fps, features={"x": {"dtype": "float32", "shape": (1,)}}, root=tmp_path / "f"
        )
    assert not (tmp_path / "f").exists()
