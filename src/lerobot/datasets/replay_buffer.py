"""``ReplayBuffer``: transitions from interaction (and optionally a dataset), sampled as training batches.

The one buffer every policy that learns from interaction uses (TD-MPC here; SAC and ``OnlineLearner``
later). Frames are stored like a LeRobotDataset's rows, each with its episode and frame index::

    frame t of an episode:  observation_t, action_t, next.reward_t  (the reward after action_t)
    last frame (end_episode):  the final observation, with no action (``has_action`` False)

``sample(batch_size, horizon=H)`` returns what a LeRobotDataset with ``delta_timestamps`` gives a policy
whose observation / action / reward delta indices are ``0..H`` / ``0..H-1`` / ``0..H-1``::

    <observation key>       (B, H + 1, ...)   float32; images (B, H + 1, C, S, S) in [0, 1]
    action                  (B, H, A)
    next.reward             (B, H)
    <key>_is_pad            (B, H[+1]) bool   steps past the episode's last stored frame (copies of it)

(with ``horizon=None`` one frame per sample, no time axis). Starts are drawn uniformly among frames with
an action, from the buffer's own ``torch.Generator``, so sampling is reproducible and resumes exactly.
Storage is a preallocated ring of ``capacity`` frames (images as uint8, channel first); when full the
oldest frames are overwritten, and sequences never cross into a newer episode. ``save`` / ``load`` write
one safetensors file (atomically: temporary name, then rename).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from lerobot.utils.memory import available_memory_bytes

ACTION = "action"
REWARD = "next.reward"
_INDEX_KEYS = ("episode_index", "frame_index", "has_action")


class ReplayBuffer:
    """A ring of ``capacity`` frames with the given features (see the module docstring)."""

    def __init__(self, capacity: int, features: Mapping[str, Mapping[str, Any]], seed: int = 0):
        """``features``: ``{name: {"shape": (...), "dtype": ...}}`` as in a dataset's ``info.json`` (``image`` /
        ``video`` dtypes are stored as uint8 channel-first); must include ``action``."""
        if capacity < 2:
            raise ValueError(f"ReplayBuffer capacity must be >= 2 frames, got {capacity}.")
        if ACTION not in features:
            raise ValueError(f"ReplayBuffer features need an {ACTION!r} entry; got {sorted(features)}.")
        self.capacity = int(capacity)
        self.image_keys = [k for k, f in features.items() if f.get("dtype") in ("image", "video")]
        self.shapes: dict[str, tuple[int, ...]] = {}
        for name, ft in features.items():
            if name == REWARD or not (name == ACTION or name.startswith("observation.")):
                continue
            shape = tuple(int(s) for s in ft["shape"])
            if name in self.image_keys and shape[-1] in (1, 3) and shape[0] not in (1, 3):
                shape = (shape[-1], *shape[:-1])  # info.json's (H, W, C) -> stored (C, H, W)
            self.shapes[name] = shape
        self._check_fits_in_memory()
        self.storage: dict[str, Tensor] = {
            name: torch.zeros(
                (self.capacity, *shape), dtype=torch.uint8 if name in self.image_keys else torch.float32
            )
            for name, shape in self.shapes.items()
        }
        self.storage[REWARD] = torch.zeros(self.capacity, dtype=torch.float32)
        self.storage["episode_index"] = torch.full((self.capacity,), -1, dtype=torch.int64)
        self.storage["frame_index"] = torch.zeros(self.capacity, dtype=torch.int64)
        self.storage["has_action"] = torch.zeros(self.capacity, dtype=torch.bool)
        self.cursor = 0  # next row to write
        self.size = 0  # rows written so far (<= capacity)
        self.episode = 0  # index of the episode being written
        self.frame = 0  # frame index within it
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.size

    def _check_fits_in_memory(self) -> None:
        """Refuse, before allocating, a buffer larger than the memory available (camera frames add up)."""
        per_frame = 4 + 8 + 8 + 1  # reward, episode and frame index, has_action
        for name, shape in self.shapes.items():
            per_frame += math.prod(shape) * (1 if name in self.image_keys else 4)
        needed, available = self.capacity * per_frame, available_memory_bytes()
        if available is not None and needed > available:
            fits = max(2, available // (2 * per_frame))
            raise MemoryError(
                f"A replay buffer of {self.capacity:,} frames needs {needed / 2**30:.1f} GiB "
                f"({per_frame:,} bytes a frame: {', '.join(f'{k} {v}' for k, v in self.shapes.items())}) "
                f"and {available / 2**30:.1f} GiB is available: lower --online.buffer_capacity "
                f"(e.g. {fits:,}) or the camera resolution (--env.image_size)."
            )

    @property
    def observation_keys(self) -> list[str]:
        return [k for k in self.shapes if k != ACTION]

    # ---- writing ----------------------------------------------------------------------------------
    def add(self, observation: Mapping[str, Any], action: Any, reward: float) -> None:
        """Store one step of the current episode: the observation, the action taken, the reward received."""
        self._write(observation, action, reward)

    def end_episode(self, final_observation: Mapping[str, Any] | None = None) -> None:
        """Close the current episode, storing the observation after its last action when given."""
        if final_observation is not None:
            self._write(final_observation, None, 0.0)
        self.episode += 1
        self.frame = 0

    def _write(self, observation: Mapping[str, Any], action: Any, reward: float) -> None:
        row = self.cursor
        for key in self.observation_keys:
            if key not in observation:
                raise KeyError(
                    f"ReplayBuffer: the observation has no {key!r} (it has {sorted(observation)}); the buffer "
                    "was built for the policy's input features."
                )
            self.storage[key][row] = self._as_stored(key, observation[key])
        if action is None:
            self.storage[ACTION][row] = 0.0
        else:
            self.storage[ACTION][row] = torch.as_tensor(np.asarray(action, dtype=np.float32)).reshape(
                self.shapes[ACTION]
            )
        self.storage[REWARD][row] = float(reward)
        self.storage["episode_index"][row] = self.episode
        self.storage["frame_index"][row] = self.frame
        self.storage["has_action"][row] = action is not None
        self.frame += 1
        self.cursor = (self.cursor + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def _as_stored(self, key: str, value: Any) -> Tensor:
        x = torch.as_tensor(np.asarray(value))
        if key in self.image_keys:
            if x.dtype != torch.uint8:  # float images in [0, 1]
                x = (x.float() * 255).round().clamp(0, 255).to(torch.uint8)
            shape = self.shapes[key]
            if tuple(x.shape) != shape and tuple(x.shape[-1:] + x.shape[:-1]) == shape:
                x = x.movedim(-1, 0)  # H x W x C -> C x H x W
            return x.reshape(shape)
        return x.to(torch.float32).reshape(self.shapes[key])

    def add_dataset(self, dataset: Any) -> int:
        """Copy every frame of a LeRobotDataset (opened without ``delta_timestamps``) in as its own episodes;
        returns the frames added. The dataset must have ``next.reward`` (TD learning needs rewards)."""
        if REWARD not in dataset.meta.features:
            raise ValueError(
                f"Dataset {dataset.repo_id!r} has no {REWARD!r} column, so it cannot seed a replay buffer for "
                "reinforcement learning. Record it with rewards: python -m lerobot.scripts.record_expert --rewards=true ..."
            )
        last_episode = None
        for i in range(len(dataset)):
            item = dataset[i]
            episode = int(item["episode_index"])
            if last_episode is not None and episode != last_episode:
                self.end_episode()
            last_episode = episode
            self.add(item, item[ACTION], float(item[REWARD]))
        if last_episode is not None:
            self.end_episode()
        return len(dataset)

    def observation_stats(self, keys: list[str], min_std: float = 1e-3) -> dict[str, dict[str, np.ndarray]]:
        """Mean, std, min and max over the stored frames of each (non-camera) observation ``key``.

        A purely online run has no dataset to take normalisation statistics from; these, taken once the
        random seed phase has filled the buffer, stand in for them. ``std`` is floored at ``min_std``: a
        value that did not vary then (a resting cube's height) must not be divided by ~0 when it does.
        """
        if self.size == 0:
            raise ValueError("The replay buffer is empty: there is nothing to compute statistics from.")
        out = {}
        for key in keys:
            if key in self.image_keys or key not in self.storage:
                raise ValueError(
                    f"{key!r} is not a stored low-dimensional observation ({self.observation_keys})."
                )
            x = self.storage[key][: self.size].double()
            out[key] = {
                "mean": x.mean(0).numpy(),
                "std": x.std(0, unbiased=False).clamp_min(min_std).numpy(),
                "min": x.amin(0).numpy(),
                "max": x.amax(0).numpy(),
            }
        return out

    # ---- sampling ---------------------------------------------------------------------------------
    def sample(self, batch_size: int, horizon: int | None = None) -> dict[str, Tensor]:
        """A batch of ``batch_size`` sequences (see the module docstring), starts drawn by ``self.generator``."""
        starts = torch.nonzero(self.storage["has_action"][: self.size]).squeeze(1)
        if len(starts) == 0:
            raise ValueError("ReplayBuffer.sample: no transition stored yet (add steps first).")
        pick = starts[torch.randint(len(starts), (batch_size,), generator=self.generator)]
        steps = 0 if horizon is None else horizon
        offsets = torch.arange(steps + 1)
        rows = (pick[:, None] + offsets) % self.capacity  # (B, T+1)
        episode, frame = self.storage["episode_index"], self.storage["frame_index"]
        # Unwritten rows hold episode -1; overwritten ones another episode or frame: both end the sequence.
        same = (episode[rows] == episode[pick][:, None]) & (frame[rows] == frame[pick][:, None] + offsets)
        inside = same.cumprod(1).bool()  # a sequence stops at its episode's last stored frame
        last = inside.sum(1, keepdim=True) - 1
        rows = torch.where(inside, rows, rows.gather(1, last))  # past the end: copies of the last frame
        obs_pad = ~inside
        act_pad = obs_pad | ~self.storage["has_action"][rows]

        batch: dict[str, Tensor] = {}
        for key in self.observation_keys:
            x = self.storage[key][rows]
            if key in self.image_keys:
                x = x.float() / 255.0
            batch[key] = x
            batch[f"{key}_is_pad"] = obs_pad
        batch[ACTION] = self.storage[ACTION][rows[:, :steps]]
        batch[REWARD] = self.storage[REWARD][rows[:, :steps]]
        batch[f"{ACTION}_is_pad"] = act_pad[:, :steps]
        batch[f"{REWARD}_is_pad"] = act_pad[:, :steps]
        if horizon is None:
            batch = {k: batch[k][:, 0] for k in self.observation_keys}
            batch[ACTION] = self.storage[ACTION][pick]
            batch[REWARD] = self.storage[REWARD][pick]
        return batch

    # ---- save / load ------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "capacity": self.capacity,
            "cursor": self.cursor,
            "size": self.size,
            "episode": self.episode,
            "frame": self.frame,
            "image_keys": self.image_keys,
            "shapes": {k: list(v) for k, v in self.shapes.items()},
        }

    def save(self, path: str | Path) -> Path:
        """Write every stored frame, the write position and the sampler's RNG to one safetensors file."""
        path = Path(path)
        tensors = {k: v[: self.size].contiguous() for k, v in self.storage.items()}
        tensors["generator_state"] = self.generator.get_state()
        tmp = path.with_name(f".{path.name}.tmp")
        save_file(tensors, str(tmp), metadata={"replay_buffer": json.dumps(self.state())})
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> ReplayBuffer:
        """The buffer ``save`` wrote, ready to continue adding and sampling where it stopped."""
        with safe_open(str(path), "pt") as f:
            meta = f.metadata()
            if not meta or "replay_buffer" not in meta:
                raise ValueError(f"{path} is not a replay buffer file (no 'replay_buffer' metadata).")
            state = json.loads(meta["replay_buffer"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
        features = {
            k: {"shape": shape, "dtype": "image" if k in state["image_keys"] else "float32"}
            for k, shape in state["shapes"].items()
        }
        buffer = cls(state["capacity"], features)
        size = state["size"]
        for key, storage in buffer.storage.items():
            storage[:size] = tensors[key]
        buffer.cursor, buffer.size = state["cursor"], size
        buffer.episode, buffer.frame = state["episode"], state["frame"]
        buffer.generator.set_state(tensors["generator_state"])
        return buffer
