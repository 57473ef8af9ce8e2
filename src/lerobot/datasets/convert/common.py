"""What every converter produces (``Episode``) and the one writer that turns episodes into a
LeRobotDataset v3.0, so each input format only has to say how it reads its files."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.datasets.utils import REWARD_FEATURES, DatasetError, atomic_dir

logger = logging.getLogger(__name__)


@dataclass
class Episode:
    """One episode as arrays over its ``n`` steps (the first axis of every array)."""

    action: np.ndarray
    state: np.ndarray | None = None
    state_names: list[str] | None = None
    images: dict[str, np.ndarray] = field(default_factory=dict)  # (n, H, W, 3) uint8
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # other per-step arrays, e.g. velocity
    reward: np.ndarray | None = None
    done: np.ndarray | None = None
    task: str | None = None

    def __len__(self) -> int:
        return len(self.action)


def decode_image(data: bytes) -> np.ndarray:
    """PNG/JPEG bytes (as RLDS and compressed ALOHA files store cameras) -> (H, W, 3) uint8."""
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


def _features(ep: Episode, use_videos: bool) -> dict[str, dict]:
    def vec(arr: np.ndarray, names: list[str] | None = None, dtype: str = "float32") -> dict:
        shape = (int(np.prod(arr.shape[1:])) or 1,)
        return {"dtype": dtype, "shape": shape, "names": names}

    features = {}
    if ep.state is not None:
        features["observation.state"] = vec(ep.state, ep.state_names)
    for name, arr in ep.extra.items():
        features[name] = vec(arr)
    for cam, frames in ep.images.items():
        features[f"observation.images.{cam}"] = {
            "dtype": "video" if use_videos else "image",
            "shape": tuple(int(s) for s in frames.shape[1:]),
            "names": ["height", "width", "channels"],
        }
    features["action"] = vec(ep.action)
    if ep.reward is not None:
        features["next.reward"] = dict(REWARD_FEATURES["next.reward"])
    if ep.done is not None:
        features["next.done"] = dict(REWARD_FEATURES["next.done"])
    return features


def _check_episode(ep: Episode, i: int, features: dict[str, dict]) -> None:
    n = len(ep)
    if n == 0:
        raise DatasetError(f"Episode {i} of the input has no steps.")
    arrays = {
        "observation.state": ep.state,
        "action": ep.action,
        "next.reward": ep.reward,
        "next.done": ep.done,
    }
    arrays.update(ep.extra)
    arrays.update({f"observation.images.{c}": v for c, v in ep.images.items()})
    got = {k for k, v in arrays.items() if v is not None}
    if got != set(features):
        raise DatasetError(
            f"Episode {i} has fields {sorted(got)} but episode 0 had {sorted(features)}; every episode of a "
            "dataset must carry the same fields."
        )
    for key, arr in arrays.items():
        if arr is not None and len(arr) != n:
            raise DatasetError(f"Episode {i}: '{key}' has {len(arr)} steps but 'action' has {n}.")


def write_episodes(
    episodes: Iterable[Episode],
    repo_id: str,
    root: Path,
    fps: int,
    robot_type: str | None,
    default_task: str,
    use_videos: bool = True,
    vcodec: str = "libsvtav1",
) -> Path:
    """Write ``episodes`` as a dataset at ``root`` (which must not exist), via a temporary sibling.

    The folder appears at ``root`` only once the last episode is saved and the writer is closed, so
    an interrupted conversion never leaves something that looks like a dataset.
    """
    root = Path(root)
    if root.exists():
        raise FileExistsError(f"{root} already exists; choose another output root or delete it.")
    ds = None
    with atomic_dir(root, "converting") as tmp:
        count = 0
        for i, ep in enumerate(episodes):
            if ds is None:
                features = _features(ep, use_videos)
                ds = LeRobotDataset.create(
                    repo_id,
                    fps,
                    features,
                    robot_type=robot_type,
                    root=tmp,
                    use_videos=use_videos,
                    vcodec=vcodec,
                )
            _check_episode(ep, i, {k: v for k, v in features.items()})
            for t in range(len(ep)):
                frame = {"action": np.asarray(ep.action[t], np.float32).reshape(-1)}
                if ep.state is not None:
                    frame["observation.state"] = np.asarray(ep.state[t], np.float32).reshape(-1)
                for name, arr in ep.extra.items():
                    frame[name] = np.asarray(arr[t], np.float32).reshape(-1)
                for cam, frames in ep.images.items():
                    frame[f"observation.images.{cam}"] = np.asarray(frames[t], np.uint8)
                if ep.reward is not None:
                    frame["next.reward"] = np.asarray([ep.reward[t]], np.float32)
                if ep.done is not None:
                    frame["next.done"] = np.asarray([bool(ep.done[t])], bool)
                ds.add_frame(frame, task=ep.task or default_task)
            ds.save_episode()
            count += 1
        if ds is None:
            raise DatasetError("The input holds no episodes; nothing to convert.")
        ds.finalize()
    logger.info("Converted %d episodes into %s", count, root)
    return root
