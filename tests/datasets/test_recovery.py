"""Opening a dataset never writes; interrupted recordings and edits are repaired only on request.

A recording killed with kill -9 leaves its saved episodes staged under ``.pending/``: they are read
in place (bit-identical to what the merge then writes) and merged by ``recover()`` or ``resume``.
An edit killed at any moment leaves hidden leftovers beside its target; the next edit, split,
resume or ``recover()`` removes them (or puts an in-place edit's original back), so nothing blocks
the next run and nothing is lost.
"""

import logging
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from tests.datasets.test_tools import LENGTHS, assert_same_frame, record_episodes
from tests.datasets.test_write_read import make_frame
from tests.datasets.validate import validate_v30

from lerobot.datasets import tools
from lerobot.datasets.dataset_writer import recover
from lerobot.datasets.hub import push_to_hub
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.datasets.metadata import LeRobotDatasetMetadata
from lerobot.datasets.utils import PENDING_DIR, DatasetError

TESTS_PARENT = str(Path(__file__).resolve().parents[2])


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every path under ``folder`` with its kind, size and mtime: any write shows up."""
    out = {}
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(folder))] = (p.is_dir(), st.st_size if p.is_file() else 0, st.st_mtime_ns)
    return out


def run_killed(script: str) -> None:
    """Run ``script`` in a fresh interpreter that ends by SIGKILL (as a crash or kill -9 would)."""
    code = f"import sys; sys.path.insert(0, {TESTS_PARENT!r})\n" + textwrap.dedent(script)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=180)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()


CRASHED_RECORDING = """
    import os, signal
    from tests.datasets.test_write_read import make_frame, features
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    ds = LeRobotDataset.create("test/crash", fps=10, features=features(), root={root!r}, **{sizes!r})
    for e in range(4):
        ds.add_episode([make_frame(e, f) for f in range(5 + e)], task=f"task {{e % 2}}")
    for f in range(3):
        ds.add_frame(make_frame(4, f), task="t")
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize(
    "sizes",
    [
        {},  # every saved episode still staged
        # files roll over at every episode: earlier episodes merged, the last one staged
        {"data_files_size_in_mb": 0.001, "video_files_size_in_mb": 0.001},
    ],
    ids=["all-staged", "partly-merged"],
)
def test_open_reads_staged_episodes_in_place_and_writes_nothing(tmp_path, sizes, caplog):
    root = tmp_path / "ds"
    run_killed(CRASHED_RECORDING.format(root=str(root), sizes=sizes))
    assert (root / PENDING_DIR / "episodes").is_dir()
    before = snapshot(tmp_path)

    with caplog.at_level(logging.WARNING):
        ds = LeRobotDataset("test/crash", root=root)
    assert "not yet merged" in caplog.text
    assert snapshot(tmp_path) == before, "opening a dataset wrote to it"
    staged = ds.meta.staged_episodes
    assert staged and staged[-1] == 3 and (len(staged) == 4) == (not sizes)
    assert ds.num_episodes == 4 and len(ds) == 5 + 6 + 7 + 8
    assert ds.meta.total_frames == len(ds) and ds.meta.stats["action"]["count"].item() == len(ds)
    frames = [ds[i] for i in range(len(ds))]
    assert frames[-1]["observation.state"][:2].tolist() == [3, 7] and frames[-1]["task"] == "task 1"
    # Staged episodes read through StreamingLeRobotDataset too (same metadata), still without writes.
    from lerobot.datasets.streaming import StreamingLeRobotDataset

    streamed = list(StreamingLeRobotDataset("test/crash", root=root, shuffle=False))
    assert len(streamed) == len(ds) and torch.equal(
        streamed[-1]["observation.images.cam"], frames[-1]["observation.images.cam"]
    )
    assert snapshot(tmp_path) == before

    ds.recover()
    assert not (root / PENDING_DIR).exists() and ds.meta.staged_episodes == []
    validate_v30(root)
    merged = LeRobotDataset("test/crash", root=root)
    assert merged.num_episodes == 4
    for i in range(len(merged)):  # what was read in place is exactly what the merge wrote
        assert_same_frame(merged[i], frames[i])
        assert merged[i]["index"].item() == i


def test_recover_function_and_resume_merge(tmp_path):
    root = tmp_path / "ds"
    run_killed(CRASHED_RECORDING.format(root=str(root), sizes={}))
    # What would publish or rewrite the dataset asks for the merge first, naming it.
    with pytest.raises(DatasetError, match="not merged yet"):
        push_to_hub(root, "user/crash")
    with pytest.raises(DatasetError, match="not merged yet"):
        tools.delete_episodes(root, [0], output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    recover(root)
    assert not (root / PENDING_DIR).exists()
    validate_v30(root)
    recover(root)  # idempotent on a clean dataset
    meta = LeRobotDatasetMetadata("test/crash", root=root)
    assert meta.total_episodes == 4 and meta.staged_episodes == []


def test_open_accepts_loaded_metadata(tmp_path):
    root = tmp_path / "ds"
    record_episodes(root, [0, 1, 2])
    meta = LeRobotDatasetMetadata("test/src", root=root)
    train = LeRobotDataset("test/src", meta=meta, episodes=[0, 1])
    val = LeRobotDataset("test/src", root=root, meta=meta, episodes=[2])
    assert train.meta is meta and val.meta is meta and train.root == root
    assert len(train) == LENGTHS[0] + LENGTHS[1] and len(val) == LENGTHS[2]
    assert_same_frame(val[0], LeRobotDataset("test/src", root=root)[LENGTHS[0] + LENGTHS[1]])
    with pytest.raises(ValueError, match="meta was loaded from"):
        LeRobotDataset("test/src", root=tmp_path / "other", meta=meta)


# ------------------------------------------------------------------------------ interrupted edits

KILL_ON_RENAME = """
    import os, signal
    from lerobot.datasets import utils
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    real_rename, calls = os.rename, []
    def rename(src, dst):
        calls.append(dst)
        if len(calls) == {kill_at}:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_rename(src, dst)
    utils.os.rename = rename
    ds = LeRobotDataset("test/src", root={root!r})
    {call}
"""


def test_split_killed_between_part_renames_does_not_block_the_next_split(tmp_path):
    root = tmp_path / "ds"
    record_episodes(root, [0, 1, 2, 3, 4])
    # The kill lands after the first part is renamed into place, before the second is.
    run_killed(KILL_ON_RENAME.format(root=str(root), kill_at=2, call="ds.split({'train': 0.6, 'val': 0.4})"))
    assert (tmp_path / "ds_train").is_dir() and not (tmp_path / "ds_val").exists()
    assert any(p.name.endswith(".journal") for p in tmp_path.iterdir())
    before = snapshot(tmp_path)
    ds = LeRobotDataset("test/src", root=root)  # opening writes nothing, even here
    assert snapshot(tmp_path) == before

    parts = ds.split({"train": 0.6, "val": 0.4})  # the half output is undone, then written whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "ds_train", "ds_val"]
    assert parts["train"].num_episodes == 3 and parts["val"].num_episodes == 2
    for part in parts.values():
        validate_v30(part.root)


def test_split_killed_while_writing_leaves_only_hidden_folders_the_next_split_removes(tmp_path):
    root = tmp_path / "ds"
    record_episodes(root, [0, 1, 2])
    script = """
        import os, signal
        from lerobot.datasets import tools
        from lerobot.datasets.lerobot_dataset import LeRobotDataset
        real, calls = tools._write_episodes, []
        def killing(*args, **kwargs):
            calls.append(1)
            if len(calls) == 2:  # the second part is half written
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        tools._write_episodes = killing
        LeRobotDataset("test/src", root={root!r}).split([0.5, 0.5])
    """
    run_killed(script.format(root=str(root)))
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name != "ds")
    assert leftovers and all(n.startswith(".ds_split") and n.endswith(".tmp") for n in leftovers)
    parts = LeRobotDataset("test/src", root=root).split([0.5, 0.5])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "ds_split0", "ds_split1"]
    assert [p.num_episodes for p in parts] == [2, 1]


@pytest.mark.parametrize("repair", ["recover", "next_edit", "resume"])
def test_in_place_edit_killed_between_its_renames_is_undone(tmp_path, repair):
    root = tmp_path / "ds"
    source = record_episodes(root, [0, 1, 2])
    expected = [source[i] for i in range(len(source))]
    # atomic_dir renames the original away, then the edited copy in: kill between the two.
    run_killed(
        KILL_ON_RENAME.format(root=str(root), kill_at=2, call="ds.delete_episodes([0], in_place=True)")
    )
    assert not root.exists()
    names = sorted(p.suffix for p in tmp_path.iterdir())
    assert names == [".old", ".tmp"]
    with pytest.raises(DatasetError, match=r"in-place edit was interrupted; the original is intact.*recover"):
        LeRobotDataset("test/src", root=root)  # says how to get it back, and writes nothing
    assert sorted(p.suffix for p in tmp_path.iterdir()) == names
    if repair == "recover":
        recover(root)
        ds = LeRobotDataset("test/src", root=root)
    elif repair == "resume":
        ds = LeRobotDataset.resume("test/src", root=root)
        ds.add_episode([make_frame(9, f) for f in range(4)], task="t")
        ds.finalize()
    else:
        report = tools.delete_episodes(root, [0], in_place=True)  # edits take paths, not only datasets
        ds = LeRobotDataset(report.repo_id, root=report.root)
        expected = expected[LENGTHS[0] :]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
    validate_v30(root)
    for i, frame in enumerate(expected):
        assert_same_frame(ds[i], frame)


def test_edit_cleans_leftovers_of_an_interrupted_edit_of_its_input(tmp_path):
    root = tmp_path / "ds"
    source = record_episodes(root, [0, 1])
    leftover = tmp_path / ".ds.delete_episodes-0123abcd.tmp"
    (leftover / "meta").mkdir(parents=True)
    unrelated = tmp_path / ".ds_other.tmp"
    unrelated.mkdir()
    before = snapshot(tmp_path)
    LeRobotDataset("test/src", root=root)
    assert snapshot(tmp_path) == before
    out = source.remove_feature("grid", in_place=True)
    assert not leftover.exists() and unrelated.exists()
    assert "grid" not in out.features


def test_recover_removes_torn_temporary_files(tmp_path):
    root = tmp_path / "ds"
    record_episodes(root, [0])
    torn = root / "meta" / ".info.json.k3j_9x2a.tmp.json"  # what atomic_path leaves after a kill
    torn.write_text("{")
    before = snapshot(tmp_path)
    LeRobotDataset("test/src", root=root)
    assert snapshot(tmp_path) == before
    recover(root)
    assert not torn.exists()
    validate_v30(root)
