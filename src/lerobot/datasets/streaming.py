"""``StreamingLeRobotDataset``: iterate over a Hub dataset without downloading it first.

Only ``meta/`` is fetched up front (it is small and says where every episode lives). Frames are then
read one data file at a time: each parquet (and the mp4s its episodes need) is downloaded when the
iterator reaches it, through the revision-safe Hub cache, so a training run starts after one file
instead of after the whole dataset. Frames come out as the same dicts ``LeRobotDataset[i]`` gives,
mixed through a shuffle buffer; DataLoader workers each take a disjoint share of the episodes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from lerobot.datasets.columns import png_to_chw, table_columns
from lerobot.datasets.hub import hub_offline
from lerobot.datasets.metadata import (
    LeRobotDatasetMetadata,
    MetadataView,
    check_frame_size,
    check_stored_shape,
    read_parquet,
)
from lerobot.datasets.text import Text
from lerobot.datasets.utils import CODEBASE_VERSION, INFO_PATH, DatasetError, hf_lerobot_home
from lerobot.datasets.video import decode_video_frames, get_safe_default_video_backend

logger = logging.getLogger(__name__)


class StreamingLeRobotDataset(MetadataView, torch.utils.data.IterableDataset):
    """Frames of a LeRobotDataset, streamed file by file from the Hub (or read from ``root``).

    ``shuffle=True`` visits data files in a seeded random order and mixes frames through a buffer of
    ``buffer_size`` frames: memory stays bounded while neighbouring frames are decorrelated. Call
    ``set_epoch(e)`` between epochs for a new order (the seed is ``seed + epoch``).
    """

    def __init__(
        self,
        repo_id: str,
        root: str | Path | None = None,
        episodes: Sequence[int] | None = None,
        image_transforms: Callable | None = None,
        tolerance_s: float = 1e-4,
        revision: str | None = None,
        buffer_size: int = 1000,
        seed: int = 42,
        shuffle: bool = True,
        return_uint8: bool = False,
        video_backend: str | None = None,
        token: str | None = None,
    ):
        super().__init__()
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be at least 1, got {buffer_size}.")
        self.repo_id = repo_id
        self.root = Path(root) if root is not None else None
        self.image_transforms = image_transforms
        self.tolerance_s = tolerance_s
        self.buffer_size = buffer_size
        self.seed = seed
        self.shuffle = shuffle
        self.return_uint8 = return_uint8
        self.token = token
        self.epoch = 0
        self._cache_dir = hf_lerobot_home() / "hub"
        local = self.root is not None and (self.root / INFO_PATH).is_file()
        self.revision = None if local else self._resolve_revision(revision or CODEBASE_VERSION)
        meta_root = self.root if local else self._fetch_meta()
        self.meta = LeRobotDatasetMetadata(repo_id, root=meta_root)
        self.episodes = self.meta.episodes_with(list(episodes) if episodes is not None else None)
        self.video_backend = video_backend or (
            get_safe_default_video_backend() if self.meta.video_keys else None
        )
        self._tasks = self.meta.task_strings()

    # ------------------------------------------------------------------ Hub access

    def _resolve_revision(self, revision: str) -> str:
        """Pin one commit for the whole run, so workers and later files all read the same snapshot."""
        if hub_offline():
            raise DatasetError(
                f"Streaming {self.repo_id!r} needs the Hub but HF_HUB_OFFLINE=1; unset it, or pass "
                "root=<folder that holds meta/info.json> to stream a local copy."
            )
        from huggingface_hub import HfApi
        from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

        api = HfApi(token=self.token)
        try:
            try:
                return api.dataset_info(self.repo_id, revision=revision).sha
            except RevisionNotFoundError:
                logger.warning(
                    "Revision %r not found for %s; streaming the main branch.", revision, self.repo_id
                )
                return api.dataset_info(self.repo_id, revision="main").sha
        except RepositoryNotFoundError as e:
            raise DatasetError(f"Dataset {self.repo_id!r} is not on the Hub; check the repo id.") from e

    def _fetch_meta(self) -> Path:
        from huggingface_hub import snapshot_download

        if self.root is not None:
            snapshot_download(
                self.repo_id,
                repo_type="dataset",
                revision=self.revision,
                allow_patterns=["meta/*", "meta/**"],
                local_dir=self.root,
                token=self.token,
            )
            return self.root
        return Path(
            snapshot_download(
                self.repo_id,
                repo_type="dataset",
                revision=self.revision,
                allow_patterns=["meta/*", "meta/**"],
                cache_dir=self._cache_dir,
                token=self.token,
            )
        )

    def _file(self, rel: Path) -> Path:
        """The local path of one dataset file, downloading just that file if needed."""
        if self.root is not None and (self.root / rel).is_file():
            return self.root / rel
        if self.revision is None:
            raise DatasetError(f"{self.root / rel} is missing from the local dataset at {self.root}.")
        from huggingface_hub import hf_hub_download

        kwargs: dict[str, Any] = (
            {"local_dir": self.root} if self.root is not None else {"cache_dir": self._cache_dir}
        )
        return Path(
            hf_hub_download(
                self.repo_id,
                rel.as_posix(),
                repo_type="dataset",
                revision=self.revision,
                token=self.token,
                **kwargs,
            )
        )

    # ------------------------------------------------------------------ iteration

    @property
    def num_frames(self) -> int:
        return int(sum(self.meta.episodes.array("length")[self.episodes])) if self.episodes else 0

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _my_episodes(self) -> list[int]:
        """This worker's share: every ``num_workers``-th episode, so workers never repeat a frame."""
        info = torch.utils.data.get_worker_info()
        if info is None:
            return list(self.episodes)
        return list(self.episodes[info.id :: info.num_workers])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, self.epoch, info.id if info else 0])
        by_file: dict[Path, list[int]] = {}
        for ep in self._my_episodes():
            by_file.setdefault(self.meta.get_data_file_path(ep), []).append(ep)
        files = list(by_file)
        if self.shuffle:
            files = [files[i] for i in rng.permutation(len(files))]
        frames = (frame for rel in files for frame in self._frames_of_file(rel, by_file[rel]))
        if not self.shuffle:
            yield from frames
            return
        buffer: list[dict[str, Any]] = []
        for frame in frames:
            if len(buffer) < self.buffer_size:
                buffer.append(frame)
                continue
            i = int(rng.integers(len(buffer)))
            yield buffer[i]
            buffer[i] = frame
        for i in rng.permutation(len(buffer)):
            yield buffer[i]

    def _frames_of_file(self, rel: Path, episodes: list[int]) -> Iterator[dict[str, Any]]:
        features = self.meta.features
        columns = [k for k, ft in features.items() if ft["dtype"] != "video"]
        path = self._file(rel)
        table = read_parquet(path, columns=columns)
        for key in columns:
            check_stored_shape(table.column(key), key, features[key], path)
        for ep in episodes:
            rows = table.filter(pc.equal(table["episode_index"], pa.scalar(ep, pa.int64())))
            yield from self._frames_of_episode(ep, rows)

    def _frames_of_episode(self, ep: int, rows: pa.Table) -> Iterator[dict[str, Any]]:
        n = rows.num_rows
        expected = int(self.meta.episodes.array("length")[ep])
        if n != expected:
            raise DatasetError(
                f"{self.repo_id}: episode {ep} has {n} frames in its data file but the metadata says {expected}."
            )
        columns = table_columns(rows, self.meta.features, rows.column_names)
        videos = {
            key: self._episode_video(ep, key, columns.numeric["timestamp"].numpy())
            for key in self.meta.video_keys
        }
        for j in range(n):
            item: dict[str, Any] = {key: col[j] for key, col in columns.numeric.items()}
            item.update({key: col[j] for key, col in columns.strings.items()})
            for key, col in columns.images.items():
                item[key] = self._camera(png_to_chw(col[j].as_py()))
            for key, frames in videos.items():
                item[key] = self._camera(frames[j])
            item["task"] = Text(self._tasks[int(item["task_index"])])
            yield item

    def _episode_video(self, ep: int, key: str, timestamps: np.ndarray) -> torch.Tensor:
        """All frames of one episode from one camera, decoded in a single pass (uint8, T x C x H x W)."""
        path = self._file(self.meta.get_video_file_path(ep, key))
        start = float(self.meta.episodes.array(f"videos/{key}/from_timestamp")[ep])
        query = (start + timestamps.astype(np.float64)).tolist()
        frames = decode_video_frames(path, query, self.tolerance_s, backend=self.video_backend)
        check_frame_size(*frames.shape[-2:], key, self.meta.features[key], lambda: path)
        return frames

    def _camera(self, frame: torch.Tensor) -> torch.Tensor:
        if not self.return_uint8:
            frame = frame.to(torch.float32).div_(255.0)
        if self.image_transforms is not None:
            frame = self.image_transforms(frame)
        return frame

    def __repr__(self) -> str:
        return (
            f"StreamingLeRobotDataset(repo_id={self.repo_id!r}, revision={self.revision!r}, "
            f"episodes={self.num_episodes}, frames={self.num_frames}, shuffle={self.shuffle}, "
            f"buffer_size={self.buffer_size})"
        )
