"""``lerobot-edit-dataset`` round trips: each operation from flags gives the same dataset as the Python call."""

import subprocess
import sys

import numpy as np
import pytest
from tests.datasets.test_tools import LENGTHS, assert_same_frame, record_episodes
from tests.datasets.validate import validate_v30

from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.scripts.edit_dataset import main


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_LEROBOT_HOME", str(tmp_path))
    record_episodes(tmp_path / "me/src", [0, 1, 2], repo_id="me/src")
    return tmp_path


def test_delete_episodes_and_in_place(home):
    assert (
        main(["--repo_id=me/src", "--operation.type=delete_episodes", "--operation.episode_indices=[1]"]) == 0
    )
    out = LeRobotDataset("me/src_delete_episodes", root=home / "me/src_delete_episodes")
    validate_v30(out.root)
    src = LeRobotDataset("me/src")
    assert out.num_episodes == 2 and len(out) == LENGTHS[0] + LENGTHS[2]
    assert_same_frame(out[LENGTHS[0]], src.get_episode(2)[0])
    argv = [
        "--repo_id=me/src",
        "--new_repo_id=me/src",
        "--operation.type=delete_episodes",
        "--operation.episode_indices=[0]",
    ]
    assert main(argv) == 0
    assert LeRobotDataset("me/src").num_episodes == 2
    validate_v30(home / "me/src")


def test_split_merge_round_trip(home, capsys):
    argv = ["--repo-id=me/src", "--operation.type=split", '--operation.splits={"train": 2, "val": [2]}']
    assert main(argv) == 2
    assert "mixes fractions and episode lists" in capsys.readouterr().err
    argv = ["--repo-id=me/src", "--operation.type=split", '--operation.splits={"train": [0, 1], "val": [2]}']
    assert main(argv) == 0
    assert "re-encoded 0" in capsys.readouterr().out
    train, val = LeRobotDataset("me/src_train"), LeRobotDataset("me/src_val")
    assert (train.num_episodes, val.num_episodes) == (2, 1)
    argv = [
        "--operation.type=merge",
        '--operation.repo_ids=["me/src_train", "me/src_val"]',
        "--new_repo_id=me/back",
    ]
    assert main(argv) == 0
    back, src = LeRobotDataset("me/back"), LeRobotDataset("me/src")
    validate_v30(back.root)
    assert len(back) == len(src)
    for i in range(len(src)):
        assert_same_frame(back[i], src[i])


def test_add_and_remove_feature(home, tmp_path):
    n = sum(LENGTHS[e] for e in (0, 1, 2))
    values = np.linspace(0, 1, n).astype(np.float32)
    np.save(tmp_path / "reward.npy", values)
    argv = [
        "--repo_id=me/src",
        "--operation.type=add_feature",
        "--operation.feature_name=reward",
        f"--operation.values_path={tmp_path / 'reward.npy'}",
        f"--new_root={tmp_path / 'with_reward'}",
    ]
    assert main(argv) == 0
    out = LeRobotDataset("me/with_reward", root=tmp_path / "with_reward")
    validate_v30(out.root)
    assert out.features["reward"]["dtype"] == "float32" and tuple(out.features["reward"]["shape"]) == (1,)
    assert [out[i]["reward"].item() for i in range(n)] == values.tolist()
    argv = [
        "--repo_id=me/x",
        f"--root={out.root}",
        "--operation.type=remove_feature",
        "--operation.feature_name=reward",
    ]
    assert main(argv) == 0
    assert "reward" not in LeRobotDataset("x", root=f"{out.root}_remove_feature").features


def test_bad_flags_give_one_clear_error(home, capsys):
    assert main(["--repo_id=me/src", "--operation.type=delete_episode"]) == 2
    assert "Did you mean 'delete_episodes'" in capsys.readouterr().err
    assert (
        main(["--repo_id=me/src", "--operation.type=remove_feature", "--operation.feature_name=index"]) == 2
    )
    assert "required by the format" in capsys.readouterr().err
    assert main(["--repo_id=me/src"]) == 2
    assert "--operation.type is required" in capsys.readouterr().err


def test_console_entry_runs_as_a_module(home):
    proc = subprocess.run(
        [sys.executable, "-m", "lerobot.scripts.edit_dataset", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        proc.returncode == 0
        and "--operation.type=split" in proc.stdout
        and "--operation.splits" in proc.stdout
    )
