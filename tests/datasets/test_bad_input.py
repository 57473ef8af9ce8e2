"""Broken datasets on disk give one clear error naming the file or key, what was expected and found."""

import json
import shutil

import pyarrow.parquet as pq
import pytest
from tests.conftest import PEER_VIDEO

from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.datasets.utils import BackwardCompatibilityError, DatasetError, ForwardCompatibilityError
from lerobot.datasets.video import FrameTimestampError

DATA = "data/chunk-000/file-000.parquet"
EPISODES = "meta/episodes/chunk-000/file-000.parquet"
VIDEO = "videos/observation.images.front/chunk-000/file-000.mp4"


@pytest.fixture
def peer_copy(tmp_path):
    root = tmp_path / "peer"
    shutil.copytree(PEER_VIDEO, root)
    return root


def open_(root, **kwargs):
    return LeRobotDataset("peer/video_small", root=root, **kwargs)


def edit_info(root, **changes):
    info = json.loads((root / "meta/info.json").read_text())
    for key, value in changes.items():
        if value is None:
            del info[key]
        else:
            info[key] = value
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))


def truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_missing_info_json(peer_copy):
    (peer_copy / "meta/info.json").unlink()
    with pytest.raises(DatasetError, match=r"info\.json"):
        open_(peer_copy)


def test_corrupt_info_json(peer_copy):
    truncate(peer_copy / "meta/info.json")
    with pytest.raises(DatasetError, match=r"info\.json is not valid JSON.*corrupt or truncated"):
        open_(peer_copy)


def test_info_json_missing_key(peer_copy):
    edit_info(peer_copy, features=None)
    with pytest.raises(DatasetError, match=r"lacks required keys \['features'\]"):
        open_(peer_copy)


@pytest.mark.parametrize(
    "version,error,match",
    [
        ("v9.0", ForwardCompatibilityError, "newer than this library"),
        ("v1.6", BackwardCompatibilityError, "older than this library"),
        ("banana", DatasetError, "is not a version"),
    ],
)
def test_unknown_codebase_version(peer_copy, version, error, match):
    edit_info(peer_copy, codebase_version=version)
    with pytest.raises(error, match=match):
        open_(peer_copy)


def test_bad_fps(peer_copy):
    edit_info(peer_copy, fps=0)
    with pytest.raises(DatasetError, match="'fps' must be a positive number, found 0"):
        open_(peer_copy)


@pytest.mark.parametrize("rel", [DATA, EPISODES, "meta/tasks.parquet"])
def test_truncated_parquet_names_the_file(peer_copy, rel):
    truncate(peer_copy / rel)
    with pytest.raises(DatasetError, match=rel.replace(".", r"\.") + ".*corrupt or truncated"):
        open_(peer_copy)


def test_truncated_mp4_names_the_file(peer_copy):
    truncate(peer_copy / VIDEO)
    with pytest.raises(DatasetError, match=r"file-000\.mp4"):
        open_(peer_copy, video_backend="pyav")[30]


def test_missing_data_file(peer_copy):
    (peer_copy / DATA).unlink()
    with pytest.raises(DatasetError, match=r"file-000\.parquet"):
        open_(peer_copy)


def test_stale_data_file_is_detected(peer_copy):
    table = pq.read_table(peer_copy / DATA)
    pq.write_table(table.slice(0, 50), peer_copy / DATA)
    with pytest.raises(
        DatasetError, match="hold 50 frames for the selected episodes but the episode metadata says 60"
    ):
        open_(peer_copy)


def test_episode_count_mismatch(peer_copy):
    edit_info(peer_copy, total_episodes=4)
    with pytest.raises(DatasetError, match="total_episodes=4 but .* holds 3 episode rows"):
        open_(peer_copy)


def test_feature_declared_but_not_stored(peer_copy):
    info = json.loads((peer_copy / "meta/info.json").read_text())
    info["features"]["observation.velocity"] = {"dtype": "float32", "shape": [6], "names": None}
    (peer_copy / "meta/info.json").write_text(json.dumps(info, indent=4))
    with pytest.raises(DatasetError, match=r"lacks columns \['observation.velocity'\]"):
        open_(peer_copy)


def test_video_timestamps_outside_tolerance(peer_copy):
    table = pq.read_table(peer_copy / EPISODES)
    col = "videos/observation.images.front/from_timestamp"
    shifted = table.set_column(table.schema.get_field_index(col), col, [[0.05, 2.05, 4.55]])
    pq.write_table(shifted, peer_copy / EPISODES)
    ds = open_(peer_copy)
    with pytest.raises(FrameTimestampError, match=r"tolerance"):
        ds[0]


def test_delta_timestamps_not_multiple_of_period():
    with pytest.raises(DatasetError, match="not multiples of 1/fps"):
        open_(PEER_VIDEO, delta_timestamps={"action": [0.0, 0.15]})


def test_delta_timestamps_unknown_key():
    with pytest.raises(DatasetError, match="'observation.velocity', which is not a feature"):
        open_(PEER_VIDEO, delta_timestamps={"observation.velocity": [0.0]})


def test_episodes_out_of_range():
    with pytest.raises(DatasetError, match=r"Episodes \[7\] do not exist .* episodes 0..2"):
        open_(PEER_VIDEO, episodes=[0, 7])


def test_failed_open_modifies_nothing(peer_copy):
    truncate(peer_copy / DATA)
    before = {p: p.read_bytes() for p in peer_copy.rglob("*") if p.is_file()}
    with pytest.raises(DatasetError):
        open_(peer_copy)
    assert before == {p: p.read_bytes() for p in peer_copy.rglob("*") if p.is_file()}
