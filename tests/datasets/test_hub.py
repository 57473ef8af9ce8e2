"""The Hub path: a dataset missing locally is fetched with huggingface_hub (patched here: no network)."""

import shutil

import pytest
from tests.conftest import PEER_VIDEO

import lerobot.datasets.hub as hub
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.datasets.utils import DatasetError


@pytest.fixture
def fake_hub(monkeypatch):
    """snapshot_download copies the fixture's files that match allow_patterns into local_dir."""
    import fnmatch

    import huggingface_hub

    calls = []

    def snapshot_download(repo_id, repo_type, revision, local_dir, allow_patterns=None):
        calls.append(
            {"repo_id": repo_id, "repo_type": repo_type, "revision": revision, "patterns": allow_patterns}
        )
        for src in PEER_VIDEO.rglob("*"):
            rel = str(src.relative_to(PEER_VIDEO))
            if src.is_file() and (
                allow_patterns is None or any(fnmatch.fnmatch(rel, p) for p in allow_patterns)
            ):
                (local_dir / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(src, local_dir / rel)
        return str(local_dir)

    monkeypatch.setattr(hub, "hub_offline", lambda: False)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return calls


def test_missing_dataset_is_fetched_meta_first_then_only_needed_files(tmp_path, fake_hub):
    ds = LeRobotDataset("peer/video_small", root=tmp_path / "ds", episodes=[1])
    assert len(ds) == 25 and ds[0]["index"].item() == 20
    assert fake_hub[0]["repo_type"] == "dataset" and fake_hub[0]["revision"] == "v3.0"
    assert fake_hub[0]["patterns"] == ["meta/*", "meta/**"]
    assert sorted(fake_hub[1]["patterns"]) == [
        "data/chunk-000/file-000.parquet",
        "videos/observation.images.front/chunk-000/file-000.mp4",
    ]


def test_local_copy_is_never_refetched(tmp_path, fake_hub):
    shutil.copytree(PEER_VIDEO, tmp_path / "ds")
    LeRobotDataset("peer/video_small", root=tmp_path / "ds")
    assert fake_hub == []


def test_download_videos_false_skips_videos(tmp_path, fake_hub):
    LeRobotDataset("peer/video_small", root=tmp_path / "ds", download_videos=False)
    assert all("videos/" not in p for call in fake_hub for p in call["patterns"])


def test_repo_not_found_is_one_clear_error(tmp_path, monkeypatch):
    import types

    import huggingface_hub
    from huggingface_hub.errors import RepositoryNotFoundError

    def missing(*args, **kwargs):
        raise RepositoryNotFoundError(
            "404", response=types.SimpleNamespace(headers={}, status_code=404, request=None)
        )

    monkeypatch.setattr(hub, "hub_offline", lambda: False)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", missing)
    with pytest.raises(DatasetError, match="neither on disk .* nor on the Hub"):
        LeRobotDataset("nobody/nothing", root=tmp_path / "x")
