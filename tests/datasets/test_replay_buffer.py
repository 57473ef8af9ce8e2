"""ReplayBuffer: sequences stay inside their episode, pads mark the rest, and save/load resumes sampling exactly."""

import numpy as np
import pytest
import torch

from lerobot.datasets.replay_buffer import ReplayBuffer

FEATURES = {
    "observation.state": {"dtype": "float32", "shape": (1,)},
    "observation.image": {"dtype": "video", "shape": (4, 4, 3)},
    "action": {"dtype": "float32", "shape": (2,)},
    "next.reward": {"dtype": "float32", "shape": (1,)},
}


def fill(buffer: ReplayBuffer, lengths: list[int], first_episode: int = 0) -> None:
    """Episode e, step t: state 100 e + t, action (t, -t), reward 10 e + t; then the final observation."""
    for e, length in enumerate(lengths, start=first_episode):
        for t in range(length + 1):
            obs = {
                "observation.state": [100.0 * e + t],
                "observation.image": np.full((4, 4, 3), (e * 7 + t) % 256, np.uint8),
            }
            if t < length:
                buffer.add(obs, [t, -t], 10.0 * e + t)
            else:
                buffer.end_episode(obs)


def test_sequences_follow_their_episode_and_pad_past_its_end():
    buffer = ReplayBuffer(100, FEATURES, seed=0)
    fill(buffer, [5, 3])
    assert len(buffer) == 6 + 4
    batch = buffer.sample(256, horizon=3)
    state, pad = batch["observation.state"][..., 0], batch["observation.state_is_pad"]
    assert (
        state.shape == (256, 4)
        and batch["action"].shape == (256, 3, 2)
        and batch["next.reward"].shape == (256, 3)
    )
    assert (
        batch["observation.image"].shape == (256, 4, 3, 4, 4)
        and batch["observation.image"].dtype == torch.float32
    )
    start = state[:, 0]
    episode, t0 = (start // 100).long(), (start % 100).long()
    lengths = torch.tensor([5, 3])[episode]
    assert (t0 < lengths).all()  # starts are frames with an action, never a final observation
    for k in range(4):
        inside = t0 + k <= lengths  # the final observation (t = length) is stored
        assert torch.equal(pad[:, k], ~inside)
        expected = torch.where(inside, start + k, 100.0 * episode + lengths)  # past the end: the last frame
        assert torch.equal(state[:, k], expected)
    for k in range(3):
        has_action = t0 + k < lengths
        assert torch.equal(batch["action_is_pad"][:, k], ~has_action)
        ok = has_action
        assert torch.equal(batch["next.reward"][ok, k], (10.0 * episode + t0 + k)[ok])
        assert torch.equal(batch["action"][ok, k, 0], (t0 + k)[ok].float())
    image = batch["observation.image"][:, 0, 0, 0, 0] * 255
    assert torch.allclose(image, ((episode * 7 + t0) % 256).float())
    assert set(episode.tolist()) == {0, 1}


def test_ring_overwrites_oldest_frames_and_never_mixes_episodes():
    buffer = ReplayBuffer(10, FEATURES, seed=1)
    fill(buffer, [6, 6])  # 14 frames into 10 rows: episode 0's first 4 frames are gone
    assert len(buffer) == 10
    batch = buffer.sample(500, horizon=4)
    state, pad = batch["observation.state"][..., 0], batch["observation.state_is_pad"]
    steps = state[:, 1:] - state[:, :-1]
    assert ((steps == 1) | pad[:, 1:]).all()  # consecutive frames of one episode, or padding
    assert (state[:, 0] >= 4).all()  # overwritten frames are never sampled


def test_single_frames_without_horizon():
    buffer = ReplayBuffer(20, FEATURES)
    fill(buffer, [4])
    batch = buffer.sample(8)
    assert batch["observation.state"].shape == (8, 1) and batch["action"].shape == (8, 2)
    assert torch.equal(
        batch["next.reward"], batch["observation.state"][:, 0]
    )  # episode 0: reward t = state t


def test_save_load_resumes_the_same_samples(tmp_path):
    buffer = ReplayBuffer(50, FEATURES, seed=3)
    fill(buffer, [7, 9])
    buffer.sample(4, horizon=2)
    buffer.save(tmp_path / "buffer.safetensors")
    loaded = ReplayBuffer.load(tmp_path / "buffer.safetensors")
    for _ in range(3):
        x, y = buffer.sample(16, horizon=3), loaded.sample(16, horizon=3)
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
    fill(buffer, [2], first_episode=5)  # writing continues at the same place in both
    fill(loaded, [2], first_episode=5)
    assert all(torch.equal(buffer.storage[k], loaded.storage[k]) for k in buffer.storage)
    assert (buffer.cursor, buffer.size, buffer.episode) == (loaded.cursor, loaded.size, loaded.episode)


def test_bad_input_says_what_is_wrong(tmp_path):
    buffer = ReplayBuffer(10, FEATURES)
    with pytest.raises(ValueError, match="no transition"):
        buffer.sample(2, horizon=1)
    with pytest.raises(KeyError, match="observation.image"):
        buffer.add({"observation.state": [0.0]}, [0, 0], 0.0)
    (tmp_path / "x.safetensors").write_bytes(b"")
    with pytest.raises(Exception):  # noqa: B017 (safetensors' own error for a non-safetensors file)
        ReplayBuffer.load(tmp_path / "x.safetensors")


def test_a_buffer_too_big_for_memory_is_refused_before_allocating(monkeypatch):
    """480x480 camera frames x 100,000 is 69 GB: one error naming the flags, not a failed allocation."""
    import lerobot.datasets.replay_buffer as replay_buffer

    monkeypatch.setattr(replay_buffer, "available_memory_bytes", lambda: 8 * 2**30)
    features = {
        "observation.image": {"dtype": "video", "shape": (480, 480, 3)},
        "observation.state": {"dtype": "float32", "shape": (4,)},
        "action": {"dtype": "float32", "shape": (4,)},
    }
    with pytest.raises(MemoryError, match=r"64\.4 GiB.*--online.buffer_capacity \(e\.g\. 6,213\)"):
        ReplayBuffer(100_000, features)
    assert len(ReplayBuffer(1_000, features)) == 0  # 0.6 GiB fits
