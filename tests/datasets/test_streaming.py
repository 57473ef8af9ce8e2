"""StreamingLeRobotDataset against the fake Hub: same frames as LeRobotDataset, shuffled with a
buffer, nothing downloaded up front but meta/, and DataLoader workers split the episodes."""

import shutil

import pytest
import torch
from tests.conftest import PEER_VIDEO
from tests.datasets.test_hub_push import hub  # noqa: F401  (fixture)

from lerobot.datasets.hub import push_to_hub
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.datasets.streaming import StreamingLeRobotDataset
from lerobot.datasets.utils import DatasetError, hf_lerobot_home

REPO = "user/streamed"


@pytest.fixture
def pushed(hub, tmp_path):  # noqa: F811
    root = tmp_path / "local"
    shutil.copytree(PEER_VIDEO, root)
    ds = LeRobotDataset("peer/video_small", root=root)
    push_to_hub(ds, REPO)
    return ds


def _key(item):
    return int(item["index"])


def _same(a, b):
    assert a["task"] == b["task"]
    for k in ("observation.state", "action", "timestamp", "frame_index", "episode_index", "task_index"):
        torch.testing.assert_close(a[k], b[k])
    torch.testing.assert_close(a["observation.images.front"], b["observation.images.front"])


def test_streams_every_frame_equal_to_map_style(pushed, hub):  # noqa: F811
    stream = StreamingLeRobotDataset(REPO, buffer_size=16, seed=3)
    cached = list((hf_lerobot_home() / "hub").rglob("*.parquet")) + list(
        (hf_lerobot_home() / "hub").rglob("*.mp4")
    )
    assert all("meta" in p.parts for p in cached), "only meta/ may be fetched before iterating"
    items = list(stream)
    order = [_key(x) for x in items]
    assert sorted(order) == list(range(60)) and order != list(range(60))
    for item in items[::7]:
        _same(item, pushed[_key(item)])
    # Shuffling is seeded: the same seed and epoch give the same order, a new epoch another.
    assert [_key(x) for x in StreamingLeRobotDataset(REPO, buffer_size=16, seed=3)] == order
    stream.set_epoch(1)
    assert [_key(x) for x in stream] != order


def test_episode_selection_unshuffled_and_dataloader_workers(pushed, hub):  # noqa: F811
    stream = StreamingLeRobotDataset(REPO, episodes=[2, 0], shuffle=False)
    assert stream.num_frames == 35
    assert [_key(x) for x in stream] == list(range(0, 20)) + list(range(45, 60))
    loader = torch.utils.data.DataLoader(
        StreamingLeRobotDataset(REPO, buffer_size=8), batch_size=10, num_workers=2
    )
    seen = torch.cat([batch["index"] for batch in loader]).tolist()
    assert sorted(seen) == list(range(60))


def test_local_root_and_errors(tmp_path, monkeypatch):
    root = tmp_path / "local"
    shutil.copytree(PEER_VIDEO, root)
    stream = StreamingLeRobotDataset("peer/video_small", root=root, shuffle=False, return_uint8=True)
    first = next(iter(stream))
    assert first["observation.images.front"].dtype == torch.uint8 and _key(first) == 0
    with pytest.raises(DatasetError, match="HF_HUB_OFFLINE"):
        StreamingLeRobotDataset("nobody/nothing")
    with pytest.raises(ValueError, match="buffer_size"):
        StreamingLeRobotDataset("peer/video_small", root=root, buffer_size=0)


def test_unknown_repo_is_a_clear_error(hub):  # noqa: F811
    with pytest.raises(DatasetError, match="not on the Hub"):
        StreamingLeRobotDataset("nobody/nothing")
