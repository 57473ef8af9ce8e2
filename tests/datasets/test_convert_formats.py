"""convert_dataset from robomimic / D4RL / ALOHA (HDF5 written with h5py) and RLDS (TFRecords written
with our TFRecord/Example writer, whose CRCs are checked against published values): every value
must arrive, the output must pass the strict validator, and bad inputs give one clear error."""

import io
import json
import struct

import numpy as np
import pytest
import torch
from PIL import Image
from tests.datasets.validate import validate_v30

from lerobot.datasets.convert import convert_dataset
from lerobot.datasets.convert.rlds import (
    crc32c,
    encode_example,
    masked_crc32c,
    parse_example,
    read_tfrecord,
    write_tfrecord,
)
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.datasets.utils import DatasetError

h5py = pytest.importorskip("h5py")
RNG = np.random.default_rng(0)
H, W = 16, 24


def _frames(n):
    """Smooth images (they survive lossy video coding closely enough to compare)."""
    base = np.linspace(0, 255, W, dtype=np.float32)[None, :, None]
    return (
        np.stack([np.broadcast_to(base + 5 * t, (H, W, 3)) for t in range(n)]).clip(0, 255).astype(np.uint8)
    )


def _load(root):
    validate_v30(root)
    return LeRobotDataset("x/y", root=root)


def _episode_rows(ds, key):
    return torch.stack([ds[i][key] for i in range(len(ds))]).numpy()


def test_crc32c_known_values_and_tfrecord_framing(tmp_path):
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4 test vector
    assert masked_crc32c(b"") == 0xA282EAD8  # crc 0 masked is the mask constant
    write_tfrecord(tmp_path / "r.tfrecord", [b"abc", b""])
    raw = (tmp_path / "r.tfrecord").read_bytes()
    assert raw[:8] == struct.pack("<Q", 3) and struct.unpack("<I", raw[8:12])[0] == masked_crc32c(raw[:8])
    assert list(read_tfrecord(tmp_path / "r.tfrecord")) == [b"abc", b""]
    bad = bytearray(raw)
    bad[13] ^= 0xFF
    (tmp_path / "bad.tfrecord").write_bytes(bytes(bad))
    with pytest.raises(DatasetError, match="CRC mismatch"):
        list(read_tfrecord(tmp_path / "bad.tfrecord"))
    (tmp_path / "cut.tfrecord").write_bytes(raw[:14])
    with pytest.raises(DatasetError, match="truncated"):
        list(read_tfrecord(tmp_path / "cut.tfrecord"))


def test_example_roundtrip_matches_protobuf_bytes():
    ex = {"a": [1.5, -2.0], "b": [3, -4], "c": [b"xy"]}
    assert parse_example(encode_example(ex)) == ex
    # Hand-assembled wire bytes of Example{features{feature{key:"k" value{int64_list{value:[1]}}}}}
    manual = bytes([0x0A, 0x0C, 0x0A, 0x0A, 0x0A, 0x01, 0x6B, 0x12, 0x05, 0x1A, 0x03, 0x0A, 0x01, 0x01])
    assert encode_example({"k": [1]}) == manual and parse_example(manual) == {"k": [1]}


def test_robomimic(tmp_path):
    path = tmp_path / "demo.hdf5"
    lengths = [6, 4]
    truth = []
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "env_kwargs": {}})
        for i, n in enumerate(lengths):
            g = data.create_group(f"demo_{i}")
            ep = {
                "eef_pos": RNG.normal(size=(n, 3)).astype(np.float32),
                "gripper": RNG.normal(size=(n, 2)).astype(np.float64),
                "actions": RNG.normal(size=(n, 7)),
                "rewards": RNG.random(n),
                "dones": (np.arange(n) == n - 1).astype(np.int64),
                "img": _frames(n),
            }
            g.create_dataset("obs/robot0_eef_pos", data=ep["eef_pos"])
            g.create_dataset("obs/robot0_gripper_qpos", data=ep["gripper"])
            g.create_dataset("obs/agentview_image", data=ep["img"])
            for k in ("actions", "rewards", "dones"):
                g.create_dataset(k, data=ep[k])
            truth.append(ep)
    root = convert_dataset(
        "robomimic", path, "conv/robomimic", fps=20, robot_type="panda", root=tmp_path / "out"
    )
    ds = _load(root)
    assert ds.num_episodes == 2 and len(ds) == 10 and ds.fps == 20 and ds.meta.robot_type == "panda"
    assert ds.features["observation.state"]["names"] == [
        "robot0_eef_pos_0", "robot0_eef_pos_1", "robot0_eef_pos_2", "robot0_gripper_qpos_0", "robot0_gripper_qpos_1",
    ]  # fmt: skip
    state, action = _episode_rows(ds, "observation.state"), _episode_rows(ds, "action")
    reward, done = _episode_rows(ds, "next.reward"), _episode_rows(ds, "next.done")
    exp = lambda k: np.concatenate([e[k] for e in truth])  # noqa: E731
    np.testing.assert_allclose(state, np.concatenate([exp("eef_pos"), exp("gripper")], 1), rtol=1e-6)
    np.testing.assert_allclose(action, exp("actions"), rtol=1e-6)
    np.testing.assert_allclose(reward.ravel(), exp("rewards"), rtol=1e-6)
    assert done.ravel().tolist() == exp("dones").astype(bool).tolist()
    assert {ds[i]["task"] for i in range(len(ds))} == {"Lift"}
    img = (ds[7]["observation.images.agentview_image"].permute(1, 2, 0).numpy() * 255).round()
    assert np.abs(img - truth[1]["img"][1]).mean() < 6


def test_d4rl_splits_on_terminals_and_timeouts(tmp_path):
    path = tmp_path / "d4rl.hdf5"
    n = 12
    obs, act, rew = RNG.normal(size=(n, 4)), RNG.normal(size=(n, 2)), RNG.random(n)
    term = np.zeros(n, bool)
    tout = np.zeros(n, bool)
    term[3], tout[8] = True, True  # episodes 0..3, 4..8, 9..11 (last one unterminated)
    with h5py.File(path, "w") as f:
        for k, v in dict(observations=obs, actions=act, rewards=rew, terminals=term, timeouts=tout).items():
            f.create_dataset(k, data=v)
    ds = _load(convert_dataset("d4rl", path, "conv/d4rl", fps=50, root=tmp_path / "out", task="hopper"))
    assert [int(x) for x in ds.meta.episodes.array("length")] == [4, 5, 3]
    np.testing.assert_allclose(_episode_rows(ds, "observation.state"), obs, rtol=1e-6)
    np.testing.assert_allclose(_episode_rows(ds, "action"), act, rtol=1e-6)
    np.testing.assert_allclose(_episode_rows(ds, "next.reward").ravel(), rew, rtol=1e-6)
    assert _episode_rows(ds, "next.done").ravel().tolist() == term.tolist()
    assert ds[0]["task"] == "hopper" and "observation.images" not in str(list(ds.features))


def test_aloha_folder_of_episodes_raw_and_jpeg(tmp_path):
    folder = tmp_path / "aloha"
    folder.mkdir()
    truth = []
    for i, n in enumerate([5, 3]):
        qpos, qvel, action, top = (
            RNG.normal(size=(n, 14)),
            RNG.normal(size=(n, 14)),
            RNG.normal(size=(n, 14)),
            _frames(n),
        )
        with h5py.File(folder / f"episode_{i}.hdf5", "w") as f:
            f.attrs["sim"] = True
            f.create_dataset("observations/qpos", data=qpos)
            f.create_dataset("observations/qvel", data=qvel)
            f.create_dataset("observations/images/top", data=top)
            pngs = []
            for fr in top:
                buf = io.BytesIO()
                Image.fromarray(fr).save(buf, format="PNG")
                pngs.append(np.frombuffer(buf.getvalue(), np.uint8))
            dt = h5py.vlen_dtype(np.uint8)
            ds_ = f.create_dataset("observations/images/wrist", (n,), dtype=dt)
            for t, p in enumerate(pngs):
                ds_[t] = p
            f.create_dataset("action", data=action)
        truth.append((qpos, qvel, action, top))
    ds = _load(
        convert_dataset("aloha_hdf5", folder, "conv/aloha", fps=50, robot_type="aloha", root=tmp_path / "out")
    )
    assert len(ds) == 8 and set(ds.meta.video_keys) == {"observation.images.top", "observation.images.wrist"}
    np.testing.assert_allclose(
        _episode_rows(ds, "observation.state"), np.concatenate([t[0] for t in truth]), rtol=1e-6
    )
    np.testing.assert_allclose(
        _episode_rows(ds, "observation.qvel"), np.concatenate([t[1] for t in truth]), rtol=1e-6
    )
    np.testing.assert_allclose(_episode_rows(ds, "action"), np.concatenate([t[2] for t in truth]), rtol=1e-6)
    for key in ("observation.images.top", "observation.images.wrist"):
        img = (ds[6][key].permute(1, 2, 0).numpy() * 255).round()
        assert np.abs(img - truth[1][3][1]).mean() < 6, key


def _rlds_episode(n, instruction):
    pngs = []
    for fr in _frames(n):
        buf = io.BytesIO()
        Image.fromarray(fr).save(buf, format="PNG")
        pngs.append(buf.getvalue())
    ep = {
        "steps/observation/state": RNG.normal(size=(n, 3)).astype(np.float32),
        "steps/action": RNG.normal(size=(n, 4)).astype(np.float32),
        "steps/reward": RNG.random(n).astype(np.float32),
        "steps/is_first": (np.arange(n) == 0).astype(np.int64),
        "steps/is_last": (np.arange(n) == n - 1).astype(np.int64),
        "steps/is_terminal": (np.arange(n) == n - 1).astype(np.int64),
    }
    record = {
        k: [float(x) for x in v.ravel()] if v.dtype == np.float32 else v.ravel().tolist()
        for k, v in ep.items()
    }
    record["steps/observation/image"] = pngs
    record["steps/language_instruction"] = [instruction.encode()] * n
    return ep, record


def test_rlds(tmp_path):
    (tmp_path / "rlds").mkdir()
    eps = [_rlds_episode(5, "pick the block"), _rlds_episode(3, "open the drawer")]
    write_tfrecord(tmp_path / "rlds/ds-train.tfrecord-00000-of-00001", [encode_example(r) for _, r in eps])
    ds = _load(convert_dataset("rlds", tmp_path / "rlds", "conv/rlds", fps=10, root=tmp_path / "out"))
    assert [int(x) for x in ds.meta.episodes.array("length")] == [5, 3]
    exp = lambda k: np.concatenate([e[k] for e, _ in eps])  # noqa: E731
    np.testing.assert_allclose(_episode_rows(ds, "observation.state"), exp("steps/observation/state"))
    np.testing.assert_allclose(_episode_rows(ds, "action"), exp("steps/action"))
    np.testing.assert_allclose(_episode_rows(ds, "next.reward").ravel(), exp("steps/reward"))
    assert _episode_rows(ds, "next.done").ravel().tolist() == exp("steps/is_terminal").astype(bool).tolist()
    assert [ds[i]["task"] for i in (0, 5)] == ["pick the block", "open the drawer"]
    assert "observation.images.image" in ds.meta.video_keys


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="Unknown input_format 'lmdb'"):
        convert_dataset("lmdb", tmp_path, "a/b", fps=10)
    with pytest.raises(DatasetError, match="does not exist"):
        convert_dataset("robomimic", tmp_path / "nope.hdf5", "a/b", fps=10)
    (tmp_path / "junk.hdf5").write_bytes(b"not hdf5")
    with pytest.raises(DatasetError, match="not a readable HDF5"):
        convert_dataset("robomimic", tmp_path / "junk.hdf5", "a/b", fps=10, root=tmp_path / "o1")
    with h5py.File(tmp_path / "nodata.hdf5", "w") as f:
        f.create_dataset("observations", data=np.zeros((3, 2)))
    with pytest.raises(DatasetError, match="'data' is missing"):
        convert_dataset("robomimic", tmp_path / "nodata.hdf5", "a/b", fps=10, root=tmp_path / "o2")
    with pytest.raises(DatasetError, match="'actions' is missing"):
        convert_dataset("d4rl", tmp_path / "nodata.hdf5", "a/b", fps=10, root=tmp_path / "o3")
    with pytest.raises(DatasetError, match="fps must be a positive integer"):
        convert_dataset("d4rl", tmp_path / "nodata.hdf5", "a/b", fps=None)
    write_tfrecord(tmp_path / "x.tfrecord", [encode_example({"foo": [1.0]})])
    with pytest.raises(DatasetError, match="is this an RLDS dataset"):
        convert_dataset("rlds", tmp_path / "x.tfrecord", "a/b", fps=10, root=tmp_path / "o4")
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o4").exists()
    assert not list(tmp_path.glob(".o*"))  # no temporary output left behind


def test_cli_converts_d4rl(tmp_path, capsys):
    from lerobot.scripts.convert_dataset import main

    with h5py.File(tmp_path / "d.hdf5", "w") as f:
        f.create_dataset("observations", data=np.ones((4, 2)))
        f.create_dataset("actions", data=np.zeros((4, 1)))
    args = ["--input-format", "d4rl", "--input-path", str(tmp_path / "d.hdf5"), "--output-repo-id", "a/b"]
    assert main([*args, "--fps", "30", "--output-root", str(tmp_path / "out")]) == 0
    validate_v30(tmp_path / "out")
    assert main([*args, "--fps", "30", "--output-root", str(tmp_path / "out")]) == 1
    assert "already exists" in capsys.readouterr().err


def test_rlds_instruction_stored_as_an_observation_is_the_task(tmp_path):
    """Open X-Embodiment keeps the instruction in steps/observation/natural_language_instruction."""
    (tmp_path / "rlds").mkdir()
    _, record = _rlds_episode(4, "unused")
    record["steps/observation/natural_language_instruction"] = [b"stack the cups"] * 4
    del record["steps/language_instruction"]
    write_tfrecord(tmp_path / "rlds/ds-train.tfrecord-00000-of-00001", [encode_example(record)])
    ds = _load(convert_dataset("rlds", tmp_path / "rlds", "conv/oxe", fps=10, root=tmp_path / "out"))
    assert ds[0]["task"] == "stack the cups"
    assert set(ds.meta.video_keys) == {"observation.images.image"}
