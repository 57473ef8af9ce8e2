"""Reading a dataset written by the reference implementation gives the values its reader returns."""

import json

import numpy as np
import pytest
import torch
from tests.conftest import PEER_VIDEO

from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.datasets.utils import DatasetError

PIXEL_TOL = 3 / 255


@pytest.fixture(scope="module", params=["torchcodec", "pyav"])
def peer(request) -> LeRobotDataset:
    return LeRobotDataset("peer/video_small", root=PEER_VIDEO, video_backend=request.param)


def test_metadata_matches(peer, peer_expected):
    e = peer_expected
    assert len(peer) == e["len"] == peer.num_frames
    assert peer.num_episodes == e["num_episodes"]
    assert peer.fps == e["fps"]
    assert peer.meta.robot_type == e["robot_type"]
    assert peer.camera_keys == e["camera_keys"]
    assert peer.meta.video_keys == e["video_keys"]
    assert peer.meta.image_keys == e["image_keys"]
    assert peer.meta.episodes["length"] == e["episode_lengths_written"]
    for key, ft in e["features"].items():
        assert peer.features[key]["dtype"] == ft["dtype"]
        assert list(peer.features[key]["shape"]) == ft["shape"]
        assert peer.features[key]["names"] == ft["names"]
    assert list(peer.meta.tasks.index) == ["pick up the red cube", "place the cube in the bin"]


def test_stats_match(peer, peer_expected):
    assert sorted(peer.meta.stats) == peer_expected["stats_keys"]
    for key, stats in peer_expected["stats_state_action"].items():
        for stat, value in stats.items():
            np.testing.assert_allclose(peer.meta.stats[key][stat], value, rtol=1e-4, err_msg=f"{key}/{stat}")


@pytest.mark.parametrize("idx", [0, 19, 20, 44, 59])
def test_samples_match(peer, peer_expected, idx):
    exp = peer_expected["samples"][str(idx)]
    item = peer[idx]
    for key in ("episode_index", "frame_index", "index", "task_index"):
        assert item[key].dtype == torch.int64 and item[key].ndim == 0
        assert item[key].item() == exp[key]
    assert item["timestamp"].dtype == torch.float32 and item["timestamp"].ndim == 0
    assert item["timestamp"].item() == pytest.approx(exp["timestamp"], abs=0)
    assert item["task"] == exp["task"]
    for key in ("observation.state", "action"):
        assert item[key].dtype == torch.float32
        np.testing.assert_array_equal(item[key].numpy(), exp[key])
    img = item["observation.images.front"]
    exp_img = exp["observation.images.front"]
    assert list(img.shape) == exp_img["shape"] and img.dtype == torch.float32
    np.testing.assert_allclose(img.mean(dim=(1, 2)).numpy(), exp_img["mean_per_channel"], atol=PIXEL_TOL)
    np.testing.assert_allclose(
        img.mean(dim=(1, 2)).numpy(), exp["written"]["color_rgb_float"], atol=PIXEL_TOL
    )


@pytest.mark.parametrize("idx", ["19", "20"])
def test_delta_timestamps_match(peer_expected, idx):
    spec = peer_expected["delta_timestamps_loading"]
    ds = LeRobotDataset("peer/video_small", root=PEER_VIDEO, delta_timestamps=spec["delta_timestamps"])
    exp = spec["samples"][idx]
    item = ds[int(idx)]
    assert sorted(item) == exp["keys"]
    np.testing.assert_array_equal(item["action"].numpy(), exp["action"])
    assert list(item["action"].shape) == exp["action_shape"]
    for key in ("action", "observation.state", "observation.images.front"):
        assert item[f"{key}_is_pad"].dtype == torch.bool
        assert item[f"{key}_is_pad"].tolist() == exp[f"{key}_is_pad"]
    np.testing.assert_array_equal(item["observation.state"].numpy(), exp["observation.state"])
    img = item["observation.images.front"]
    assert list(img.shape) == exp["observation.images.front"]["shape"]
    np.testing.assert_allclose(
        img.mean(dim=(2, 3)).numpy(), exp["observation.images.front"]["mean_per_channel"], atol=PIXEL_TOL
    )


def test_backends_agree():
    a = LeRobotDataset("peer/video_small", root=PEER_VIDEO, video_backend="torchcodec")
    b = LeRobotDataset("peer/video_small", root=PEER_VIDEO, video_backend="pyav")
    for i in (0, 7, 33, 59):
        diff = (a[i]["observation.images.front"] - b[i]["observation.images.front"]).abs().max()
        assert diff <= 1 / 255


def test_frame_cache_gives_same_frames():
    plain = LeRobotDataset("peer/video_small", root=PEER_VIDEO)
    cached = LeRobotDataset("peer/video_small", root=PEER_VIDEO, cache_video_frames=True)
    for i in (0, 19, 20, 59):
        assert torch.allclose(
            plain[i]["observation.images.front"], cached[i]["observation.images.front"], atol=1 / 255
        )


def test_episode_selection_and_get_episode():
    ds = LeRobotDataset("peer/video_small", root=PEER_VIDEO, episodes=[2, 1])
    assert ds.episodes == [1, 2] and len(ds) == 40
    assert ds[0]["index"].item() == 20 and ds[0]["episode_index"].item() == 1
    ep = ds.get_episode(2)
    assert len(ep) == 15
    assert ep[0]["index"].item() == 45 and ep[-1]["frame_index"].item() == 14
    with pytest.raises(IndexError):
        ds.get_episode(0)


def test_delta_padding_respects_selected_episode_edges():
    ds = LeRobotDataset(
        "peer/video_small", root=PEER_VIDEO, episodes=[1], delta_timestamps={"action": [-0.1, 0, 0.1]}
    )
    first, last = ds[0], ds[len(ds) - 1]
    assert first["action_is_pad"].tolist() == [True, False, False]
    assert last["action_is_pad"].tolist() == [False, False, True]
    assert first["action"][0, 0].item() == 1100.0


@pytest.mark.parametrize(
    "split,episodes",
    [("train", [0, 1, 2]), ("train[:67%]", [0, 1]), ("train[67%:]", [2]), ("train[1:2]", [1])],
)
def test_split(split, episodes):
    assert LeRobotDataset("peer/video_small", root=PEER_VIDEO, split=split).episodes == episodes


def test_unknown_split_lists_known():
    with pytest.raises(DatasetError, match="train"):
        LeRobotDataset("peer/video_small", root=PEER_VIDEO, split="validation")


@pytest.mark.parametrize("num_workers", [0, 2, 4])
def test_dataloader_workers_after_parent_decoded(num_workers):
    ds = LeRobotDataset(
        "peer/video_small", root=PEER_VIDEO, delta_timestamps={"observation.images.front": [-0.1, 0.0]}
    )
    _ = ds[5]["observation.images.front"]  # the parent opens a decoder before the workers fork
    loader = torch.utils.data.DataLoader(ds, batch_size=8, shuffle=True, num_workers=num_workers)
    seen = []
    for batch in loader:
        assert batch["observation.images.front"].shape[1:] == (2, 3, 64, 96)
        seen += batch["index"].tolist()
    assert sorted(seen) == list(range(60))


def test_missing_dataset_offline_names_path(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path))
    with pytest.raises(DatasetError, match=str(tmp_path / "nobody/nothing")):
        LeRobotDataset("nobody/nothing")


def test_default_root_is_hf_lerobot_home(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path))
    shutil.copytree(PEER_VIDEO, tmp_path / "peer" / "video_small")
    ds = LeRobotDataset("peer/video_small")
    assert ds.root == tmp_path / "peer" / "video_small" and len(ds) == 60


def test_info_json_roundtrips_byte_for_byte():
    raw = (PEER_VIDEO / "meta" / "info.json").read_text()
    assert json.dumps(json.loads(raw), indent=4, ensure_ascii=False) == raw


def test_falls_back_to_pyav_when_torchcodec_is_unusable(monkeypatch, caplog, peer_expected):
    """The reference's most common install failure: torchcodec (or its FFmpeg) missing or mismatched."""
    import logging
    import sys

    from lerobot.datasets import video

    monkeypatch.setitem(sys.modules, "torchcodec.decoders", None)  # makes `import torchcodec.decoders` fail
    video.get_safe_default_video_backend.cache_clear()
    try:
        with caplog.at_level(logging.INFO, logger="lerobot.datasets.video"):
            ds = LeRobotDataset("peer/video_small", root=PEER_VIDEO)
            item = ds[44]
        assert ds.video_backend == "pyav"
        lines = [r.getMessage() for r in caplog.records if "backend" in r.getMessage()]
        assert len(lines) == 1 and "pyav" in lines[0] and "torchcodec is not usable" in lines[0]
        exp = peer_expected["samples"]["44"]["written"]["color_rgb_float"]
        np.testing.assert_allclose(
            item["observation.images.front"].mean(dim=(1, 2)).numpy(), exp, atol=PIXEL_TOL
        )
    finally:
        video.get_safe_default_video_backend.cache_clear()
