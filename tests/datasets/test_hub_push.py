"""push_to_hub and revision-pinned download, end to end: the real huggingface_hub client talks HTTP
to the in-memory Hub of tests/hub_server.py on 127.0.0.1."""

import shutil

import pytest
import torch
import yaml
from tests.conftest import PEER_VIDEO
from tests.datasets.validate import validate_v30
from tests.hub_server import serve_online

from lerobot.datasets.hub import push_to_hub
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.datasets.utils import DatasetError, load_json, write_json

REPO = "user/pushed"


@pytest.fixture
def hub(monkeypatch):
    """A running fake Hub with HF_ENDPOINT pointed at it and the client online (Xet disabled)."""
    yield from serve_online(monkeypatch)


@pytest.fixture
def local_ds(tmp_path):
    root = tmp_path / "local"
    shutil.copytree(PEER_VIDEO, root)
    (root / "images/observation.images.front").mkdir(parents=True)
    (root / "images/observation.images.front/frame-000000.png").write_bytes(b"leftover")
    (root / "meta/.info.json.abc.tmp.json").write_text("{}")
    return LeRobotDataset("peer/video_small", root=root)


def _files(hub, rev="main"):
    repo = hub.repos[("dataset", REPO)]
    return repo.commits[repo.resolve(rev)]


def test_push_card_tag_and_files(hub, local_ds):
    url = push_to_hub(local_ds, REPO, tags=["so100", "tutorial"], license="mit", private=True)
    files = _files(hub)
    repo = hub.repos[("dataset", REPO)]
    assert url.endswith(repo.branches["main"]) and repo.tags["v3.0"] == repo.branches["main"]
    assert repo.private
    local = {p.relative_to(local_ds.root).as_posix() for p in local_ds.root.rglob("*") if p.is_file()}
    pushed = {p for p in files if p not in (".gitattributes", "README.md")}
    assert pushed == {p for p in local if not p.startswith("images/") and "/." not in p}
    for p in pushed:
        assert files[p] == (local_ds.root / p).read_bytes(), p
    card = files["README.md"].decode()
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["license"] == "mit" and front["task_categories"] == ["robotics"]
    assert front["tags"] == ["LeRobot", "so100", "tutorial"]
    assert front["configs"] == [{"config_name": "default", "data_files": "data/*/*.parquet"}]
    assert '"codebase_version": "v3.0"' in card


def test_push_without_videos_then_repush_moves_tag(hub, local_ds):
    push_to_hub(local_ds, REPO, push_videos=False)
    assert not any(p.startswith("videos/") for p in _files(hub))
    first = hub.repos[("dataset", REPO)].tags["v3.0"]
    push_to_hub(local_ds, REPO)
    repo = hub.repos[("dataset", REPO)]
    assert any(p.startswith("videos/") for p in _files(hub))
    assert repo.tags["v3.0"] == repo.branches["main"] != first


def test_pull_from_fresh_cache_is_pinned_to_the_tag(hub, local_ds, tmp_path):
    push_to_hub(local_ds, REPO)
    # A later commit on main changes info.json; readers at the default revision must not see it.
    changed = tmp_path / "changed"
    shutil.copytree(local_ds.root, changed)
    info = load_json(changed / "meta/info.json")
    info["robot_type"] = "changed_robot"
    write_json(info, changed / "meta/info.json")
    push_to_hub(changed, REPO, tag_version=False)

    pulled = LeRobotDataset(REPO)  # root=None: fresh $HF_LEROBOT_HOME (per-test), default revision v3.0
    assert pulled.meta.robot_type == "so100_follower"
    validate_v30(pulled.root)
    assert len(pulled) == len(local_ds) == 60
    for i in (0, 33, 59):
        a, b = pulled[i], local_ds[i]
        assert a["task"] == b["task"]
        for k in ("observation.state", "action", "index", "observation.images.front"):
            torch.testing.assert_close(a[k], b[k])
    main = LeRobotDataset(REPO, root=tmp_path / "at_main", revision="main")
    assert main.meta.robot_type == "changed_robot"


def test_push_refuses_dataset_being_recorded_and_offline(hub, local_ds, monkeypatch):
    class Recording:
        root, repo_id, writer = local_ds.root, REPO, object()

    with pytest.raises(DatasetError, match="finalize"):
        push_to_hub(Recording(), REPO)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DatasetError, match="HF_HUB_OFFLINE"):
        push_to_hub(local_ds, REPO)


def test_dataset_method_delegates_to_push_to_hub(monkeypatch, tmp_path):
    from lerobot.datasets import lerobot_dataset

    calls = []
    monkeypatch.setattr(
        lerobot_dataset, "push_to_hub", lambda ds, repo_id, **kw: calls.append((ds, repo_id, kw)) or "url"
    )
    ds = object.__new__(lerobot_dataset.LeRobotDataset)
    assert ds.push_to_hub("me/x", private=True) == "url"
    assert calls == [(ds, "me/x", {"private": True})]
