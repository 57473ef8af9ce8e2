"""``LeRobotDataset``: random access to a LeRobotDataset (v3.0, or v2.1 read as is) for training.

Shapes at the boundary (``ds[i]``, see spec §1.11):
  - numeric feature of shape (D,)      -> float/int tensor (D,)  or (T, D) with delta_timestamps
  - scalar columns (timestamp, index)  -> 0-d tensor             or (T,)
  - camera (image or video) feature    -> float32 (C, H, W) in [0, 1]  or (T, C, H, W)
  - ``<key>_is_pad``                   -> bool (T,) when delta_timestamps asks for ``key``
  - ``task``                           -> str

The parquet columns are loaded once into numpy arrays (Arrow is only the file format here), so a
sample costs a few array lookups plus, for videos, one decode per camera.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from lerobot.datasets import tools
from lerobot.datasets.columns import png_to_chw, table_columns
from lerobot.datasets.dataset_writer import DatasetWriter, data_schema
from lerobot.datasets.dataset_writer import recover as recover_root
from lerobot.datasets.hub import push_to_hub
from lerobot.datasets.metadata import (
    LeRobotDatasetMetadata,
    MetadataView,
    check_frame_size,
    check_stored_shape,
    read_parquet,
)
from lerobot.datasets.paths import dataset_root
from lerobot.datasets.text import Text
from lerobot.datasets.utils import (
    CODEBASE_VERSION,
    DatasetError,
)
from lerobot.datasets.video import (
    FrameTimestampError,
    VideoEncoderConfig,
    decode_all_frames,
    decode_video_frames,
    get_safe_default_video_backend,
)

logger = logging.getLogger(__name__)

_SPLIT_RE = re.compile(r"^(?P<name>[\w.-]+)(\[(?P<start>-?\d+%?)?:(?P<stop>-?\d+%?)?\])?$")


def select_split_episodes(info: dict, split: str) -> list[int]:
    """Episodes of ``split`` ("train", "train[:80%]", "train[10:20]", "train[80%:]")."""
    m = _SPLIT_RE.match(split.replace(" ", ""))
    splits = info.get("splits") or {"train": f"0:{info['total_episodes']}"}
    if not m or m.group("name") not in splits:
        raise DatasetError(
            f"Unknown split {split!r}. This dataset has splits {sorted(splits)}; slice them like "
            "'train[:80%]', 'train[80%:]' or 'train[10:20]' (episode positions)."
        )
    lo, hi = (int(x) for x in str(splits[m.group("name")]).split(":"))
    eps = list(range(lo, hi))

    def bound(tok: str | None, default: int) -> int:
        if tok is None:
            return default
        if tok.endswith("%"):
            return round(len(eps) * int(tok[:-1]) / 100)
        return int(tok)

    return eps[bound(m.group("start"), 0) : bound(m.group("stop"), len(eps))]


def check_delta_timestamps(
    delta_timestamps: dict[str, Sequence[float]], fps: int, tolerance_s: float, features: dict
) -> dict[str, np.ndarray]:
    """Deltas (seconds) -> integer frame offsets, refusing keys or deltas the dataset cannot serve."""
    offsets = {}
    for key, deltas in delta_timestamps.items():
        if key not in features:
            raise DatasetError(
                f"delta_timestamps names {key!r}, which is not a feature; features are {list(features)}."
            )
        d = np.asarray(list(deltas), dtype=np.float64)
        k = np.round(d * fps)
        off = np.abs(d - k / fps)
        if np.any(off > tolerance_s):
            raise DatasetError(
                f"delta_timestamps[{key!r}] = {d.tolist()} holds values that are not multiples of 1/fps = {1 / fps:.6g} s "
                f"within tolerance_s={tolerance_s}; use multiples of 1/{fps}."
            )
        offsets[key] = k.astype(np.int64)
    return offsets


class EpisodeFrames(Sequence):
    """The frames of one episode as a sequence (``ds.get_episode(i)[j]`` is ``ds[start + j]``)."""

    def __init__(self, dataset: LeRobotDataset, start: int, stop: int):
        self.dataset, self.start, self.stop = dataset, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, j):  # type: ignore[override]
        if isinstance(j, slice):
            return [self[k] for k in range(*j.indices(len(self)))]
        if j < 0:
            j += len(self)
        if not 0 <= j < len(self):
            raise IndexError(f"frame {j} out of range for an episode of {len(self)} frames")
        return self.dataset[self.start + j]


class LeRobotDataset(MetadataView, torch.utils.data.Dataset):
    """A LeRobotDataset on disk (or fetched from the Hub into the local cache) as a map-style dataset."""

    def __init__(
        self,
        repo_id: str,
        root: str | Path | None = None,
        episodes: Sequence[int] | None = None,
        image_transforms: Callable | None = None,
        delta_timestamps: dict[str, Sequence[float]] | None = None,
        tolerance_s: float = 1e-4,
        revision: str | None = None,
        force_cache_sync: bool = False,
        download_videos: bool = True,
        video_backend: str | None = None,
        split: str | None = None,
        return_uint8: bool = False,
        cache_video_frames: bool = False,
        meta: LeRobotDatasetMetadata | None = None,
        _writer: DatasetWriter | None = None,
    ):
        """Open a dataset for reading (``create`` / ``resume`` pass the ``_writer`` they made).

        Opening never writes: episodes an interrupted recording saved but did not merge are read
        where they lie (``meta.staged_episodes``, with a log line); ``recover()`` merges them.
        ``meta`` is metadata already loaded for this dataset (e.g. to choose episodes), so opening
        does not read ``meta/`` again; several datasets (train and val episodes) may share one.

        ``cache_video_frames=True`` decodes every needed video file once, up front, and serves frames
        from memory afterwards: worth it for small datasets read many epochs (decoding dominates), and
        done in the parent so DataLoader workers share the frames copy-on-write.
        """
        super().__init__()
        if meta is not None and root is not None and Path(root).resolve() != meta.root.resolve():
            raise ValueError(f"meta was loaded from {meta.root}, not from root={root}; pass one of them.")
        self.repo_id = repo_id
        if meta is not None:
            root = meta.root
        self.root = Path(root) if root is not None else dataset_root(repo_id)
        self.revision = revision or CODEBASE_VERSION
        self.image_transforms = image_transforms
        self.delta_timestamps = delta_timestamps
        self.tolerance_s = tolerance_s
        self.download_videos = download_videos
        self.video_backend = video_backend
        self.return_uint8 = return_uint8
        self.cache_video_frames = cache_video_frames
        self._requested_episodes = list(episodes) if episodes is not None else None
        self._split = split
        self.writer = _writer
        self.edit_report = None  # set on datasets returned by the editing methods (tools.EditReport)
        self._loaded = _writer is None
        if _writer is not None:  # being recorded: frames are loaded on first read
            self.meta = _writer.meta
            return
        self.meta = meta or LeRobotDatasetMetadata(
            repo_id, self.root, revision=self.revision, force_cache_sync=force_cache_sync
        )
        self._load()

    # ------------------------------------------------------------------ loading

    def _load(self) -> None:
        meta = self.meta
        eps = meta.episodes_with(self._requested_episodes)
        if self._split is not None:
            in_split = set(select_split_episodes(meta.info, self._split))
            eps = [e for e in eps if e in in_split]
        self.episodes = eps
        meta.ensure_episode_files(eps, videos=self.download_videos)
        self._load_data()
        self._delta_offsets = (
            check_delta_timestamps(self.delta_timestamps, meta.fps, self.tolerance_s, meta.features)
            if self.delta_timestamps
            else {}
        )
        if meta.video_keys and self.video_backend is None:
            self.video_backend = get_safe_default_video_backend()
        if meta.video_keys and self.video_backend == "torchcodec":
            # Import it once here: forked DataLoader workers then share it instead of each paying
            # ~1 s and ~170 MB to import it again (decoders themselves are still opened per process).
            import torchcodec.decoders  # noqa: F401
        self._frame_cache: dict[Path, tuple[torch.Tensor, np.ndarray]] = {}
        if self.cache_video_frames:
            for path in sorted(set(self._video_paths.values())):
                self._frame_cache[path] = decode_all_frames(path)

    def _data_files(self) -> list[Path]:
        files = []
        for e in self.episodes:
            f = self.meta.get_data_file_path(e)
            if not files or files[-1] != f:
                files.append(f)
        return list(dict.fromkeys(files))

    def _load_data(self) -> None:
        meta = self.meta
        features = meta.features
        columns = [k for k, ft in features.items() if ft["dtype"] != "video"]
        selected = set(self.episodes)
        tables = []
        for rel in self._data_files():
            path = self.root / rel
            table = read_parquet(path)
            missing = [c for c in columns if c not in table.column_names]
            if missing:
                raise DatasetError(
                    f"{path} lacks columns {missing} that meta/info.json declares as features."
                )
            table = table.select(columns)
            for key in columns:
                check_stored_shape(table.column(key), key, features[key], path)
            if len(selected) != meta.total_episodes:
                table = table.filter(pc.is_in(table["episode_index"], pa.array(sorted(selected), pa.int64())))
            tables.append(table)
        if not tables:  # a dataset with no episodes yet: an empty table of the declared columns
            tables = [data_schema(features).empty_table()]
        table = pa.concat_tables(tables)
        n = table.num_rows
        expected = int(sum(meta.episodes.array("length")[self.episodes])) if self.episodes else 0
        if n != expected:
            raise DatasetError(
                f"The data files of {self.repo_id} hold {n} frames for the selected episodes but the episode "
                f"metadata says {expected}. A data parquet is truncated or stale; re-download the dataset."
            )
        self.hf_dataset = table
        split = table_columns(table, features, columns)
        self._numeric, self._images, self._strings = split.numeric, split.images, split.strings
        # Episode bounds per row, as row positions in the loaded table, for delta windows.
        ep_rows = self._numeric["episode_index"].numpy()
        lengths = meta.episodes.array("length")[self.episodes]
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        pos = np.searchsorted(np.asarray(self.episodes), ep_rows)
        self._row_start = starts[pos]
        self._row_end = (starts + lengths)[pos]
        self._row_episode = ep_rows
        self._episode_start = dict(zip(self.episodes, starts.tolist()))
        self._tasks = meta.task_strings()
        # Where each episode's frames live in each video, and the absolute time they start at.
        self._video_paths: dict[tuple[str, int], Path] = {}
        self._video_from = {}
        for key in meta.video_keys if self.episodes else []:
            from_ts = meta.episodes.array(f"videos/{key}/from_timestamp").astype(np.float64)
            self._video_from[key] = from_ts
            for e in self.episodes:
                self._video_paths[(key, e)] = self.root / meta.get_video_file_path(e, key)

    # ------------------------------------------------------------------ properties

    @property
    def num_frames(self) -> int:
        self._ensure_loaded()
        return len(self._row_episode)

    @property
    def num_episodes(self) -> int:
        self._ensure_loaded()
        return len(self.episodes)

    def __len__(self) -> int:
        return self.num_frames

    def __repr__(self) -> str:
        return (
            f"LeRobotDataset(repo_id={self.repo_id!r}, root={str(self.root)!r}, episodes={self.num_episodes}, "
            f"frames={self.num_frames}, fps={self.fps}, cameras={self.camera_keys}, "
            f"features={[k for k in self.features if k not in self.camera_keys]})"
        )

    # ------------------------------------------------------------------ access

    def sample_starts(
        self, drop_last: int = 0, first_frames: int = 0, first_frames_repeat: int = 1
    ) -> np.ndarray:
        """Dataset positions at least ``drop_last`` frames before their episode's last frame.

        For samplers: a policy whose action window reaches ``drop_last`` frames past the present
        (Diffusion's ``drop_n_last_frames``) learns little from windows that are mostly padding.
        An episode too short for that keeps its first frame, so no episode drops out entirely.

        ``first_frames`` / ``first_frames_repeat``: each episode's first ``first_frames`` positions
        appear ``first_frames_repeat`` times. Where a decision is taken only at the start of an
        episode (which cube to pick), later frames already show it in the arm's motion, so a policy
        can fit them without the input that decided it; repeating the start makes it learn that input.
        """
        self._ensure_loaded()
        positions = np.arange(len(self._row_episode))
        starts = positions[positions < np.maximum(self._row_start + 1, self._row_end - max(0, drop_last))]
        if first_frames > 0 and first_frames_repeat > 1:
            early = starts[starts - self._row_start[starts] < first_frames]
            starts = np.concatenate([starts, np.repeat(early, first_frames_repeat - 1)])
        return starts

    def get_episode(self, episode_index: int) -> EpisodeFrames:
        """The frames of one (selected) episode, by its ``episode_index``."""
        self._ensure_loaded()
        if episode_index not in self._episode_start:
            raise IndexError(
                f"Episode {episode_index} is not loaded; loaded episodes are {self.episodes[:20]}..."
            )
        start = self._episode_start[episode_index]
        return EpisodeFrames(self, start, start + int(self.meta.episodes.array("length")[episode_index]))

    def _rows_for(self, key: str, row: int) -> tuple[np.ndarray | int, torch.Tensor | None]:
        offsets = self._delta_offsets.get(key)
        if offsets is None:
            return row, None
        target = row + offsets
        start, end = self._row_start[row], self._row_end[row]
        pad = (target < start) | (target >= end)
        return np.clip(target, start, end - 1), torch.from_numpy(pad)

    def _decode_frames(self, key: str, rows: np.ndarray | int) -> torch.Tensor:
        rows_arr = np.atleast_1d(rows)
        episode = int(self._row_episode[rows_arr[0]])
        path = self._video_paths[(key, episode)]
        timestamps = self._video_from[key][episode] + self._numeric["timestamp"].numpy()[rows_arr].astype(
            np.float64
        )
        if path in self._frame_cache:
            frames_all, pts = self._frame_cache[path]
            idx = np.clip(np.searchsorted(pts, timestamps), 1, len(pts) - 1)
            idx = np.where(np.abs(pts[idx - 1] - timestamps) <= np.abs(pts[idx] - timestamps), idx - 1, idx)
            worst = np.max(np.abs(pts[idx] - timestamps))
            if worst >= self.tolerance_s:
                raise FrameTimestampError(
                    f"{path}: no frame within tolerance_s={self.tolerance_s} of {timestamps.tolist()} "
                    f"(nearest {pts[idx].tolist()})."
                )
            frames = frames_all[torch.from_numpy(idx)]
        else:
            frames = decode_video_frames(
                path, timestamps.tolist(), self.tolerance_s, backend=self.video_backend
            )
        return frames if np.ndim(rows) else frames[0]

    def _camera_file(self, key: str, rows: np.ndarray | int) -> Path:
        episode = int(self._row_episode[np.atleast_1d(rows)[0]])
        if key in self._images:
            return self.root / self.meta.get_data_file_path(episode)
        return self._video_paths[(key, episode)]

    def _camera_item(self, key: str, rows: np.ndarray | int) -> torch.Tensor:
        if key in self._images:
            rows_arr = np.atleast_1d(rows)
            frames = torch.stack([png_to_chw(self._images[key][int(r)].as_py()) for r in rows_arr])
            frames = frames if np.ndim(rows) else frames[0]
        else:
            frames = self._decode_frames(key, rows)
        check_frame_size(
            *frames.shape[-2:], key, self.meta.features[key], lambda: self._camera_file(key, rows)
        )
        if not self.return_uint8:
            frames = frames.to(torch.float32).div_(255.0)
        if self.image_transforms is not None:
            frames = self.image_transforms(frames)
        return frames

    def __getitem__(self, idx: int | slice) -> dict[str, Any] | LeRobotDataset:
        """``ds[i]`` is frame ``i`` as a dict; ``ds[a:b]`` writes frames ``[a, b)`` as a new dataset.

        A slice is written to ``<root>_frames_<a>_<b>`` (see ``slice_frames`` for the rule at cut
        episodes and for choosing the folder); steps other than 1 are refused.
        """
        if isinstance(idx, slice):
            if idx.step not in (None, 1):
                raise DatasetError(
                    f"Slices of a LeRobotDataset take contiguous frames; step {idx.step} is not supported."
                )
            return self.slice_frames(idx.start, idx.stop)
        self._ensure_loaded()
        n = self.num_frames
        row = int(idx)
        if row < 0:
            row += n
        if not 0 <= row < n:
            raise IndexError(f"index {idx} out of range for a dataset of {n} frames")
        item: dict[str, Any] = {}
        for key, column in self._numeric.items():
            rows, pad = self._rows_for(key, row)
            item[key] = column[rows] if pad is None else column[torch.from_numpy(rows)]
            if pad is not None:
                item[f"{key}_is_pad"] = pad
        for key, values in self._strings.items():
            item[key] = Text(values[row])
        for key in self.camera_keys:
            rows, pad = self._rows_for(key, row)
            item[key] = self._camera_item(key, rows)
            if pad is not None:
                item[f"{key}_is_pad"] = pad
        item["task"] = Text(self._tasks[int(item["task_index"])])
        return item

    # ------------------------------------------------------------------ editing (see tools.py)

    def push_to_hub(self, repo_id: str | None = None, **kwargs: Any) -> str:
        """Upload this finished dataset to the Hub; see :func:`lerobot.datasets.hub.push_to_hub`."""
        return push_to_hub(self, repo_id, **kwargs)

    def edit_source(self) -> tools.EditSource:
        """This dataset's metadata and selected episodes, as the editing tools take them."""
        if self.writer is not None:
            raise DatasetError(f"{self.repo_id} is still being recorded; call finalize() before editing it.")
        return tools.EditSource(self.meta, list(self.episodes), self.tolerance_s, self.video_backend)

    @classmethod
    def open_edited(cls, report: tools.EditReport, video_backend: str | None = None) -> LeRobotDataset:
        """The dataset an edit wrote, with its ``edit_report`` (what was copied or re-encoded)."""
        out = cls(report.repo_id, root=report.root, video_backend=video_backend)
        out.edit_report = report
        return out

    def delete_episodes(
        self,
        episode_indices: Sequence[int],
        output_dir: str | Path | None = None,
        repo_id: str | None = None,
        in_place: bool = False,
    ) -> LeRobotDataset:
        """A new dataset without these episodes (default folder ``<root>_delete_episodes``)."""
        report = tools.delete_episodes(
            self.edit_source(), episode_indices, output_dir=output_dir, repo_id=repo_id, in_place=in_place
        )
        return self.open_edited(report, self.video_backend)

    def split(
        self, splits: Sequence[float] | dict[str, Any], output_dir: str | Path | None = None
    ) -> list[LeRobotDataset] | dict[str, LeRobotDataset]:
        """Split by episode: ``[0.8, 0.2]`` -> list, ``{"train": 0.8, "val": 0.2}`` -> dict of datasets."""
        reports = tools.split_dataset(self.edit_source(), splits, output_dir=output_dir)
        if isinstance(reports, dict):
            return {name: self.open_edited(r, self.video_backend) for name, r in reports.items()}
        return [self.open_edited(r, self.video_backend) for r in reports]

    def slice_frames(
        self,
        start: int | None,
        stop: int | None,
        output_dir: str | Path | None = None,
        repo_id: str | None = None,
    ) -> LeRobotDataset:
        """Frames ``[start, stop)`` as a new dataset; ``ds[start:stop]`` with a chosen folder."""
        report = tools.slice_frames(self.edit_source(), start, stop, output_dir=output_dir, repo_id=repo_id)
        return self.open_edited(report, self.video_backend)

    def add_feature(
        self,
        name: str,
        dtype: str,
        shape: Sequence[int],
        values: Any = None,
        names: list[str] | None = None,
        output_dir: str | Path | None = None,
        repo_id: str | None = None,
        in_place: bool = False,
    ) -> LeRobotDataset:
        """A new dataset with a per-frame feature (``values``: one row per frame, ``f(frame) -> value``, or zeros)."""
        report = tools.add_feature(
            self.edit_source(),
            name,
            dtype,
            shape,
            values,
            names=names,
            output_dir=output_dir,
            repo_id=repo_id,
            in_place=in_place,
        )
        return self.open_edited(report, self.video_backend)

    def remove_feature(
        self,
        name: str | Sequence[str],
        output_dir: str | Path | None = None,
        repo_id: str | None = None,
        in_place: bool = False,
    ) -> LeRobotDataset:
        """A new dataset without the feature(s); required index columns cannot be removed."""
        report = tools.remove_feature(
            self.edit_source(), name, output_dir=output_dir, repo_id=repo_id, in_place=in_place
        )
        return self.open_edited(report, self.video_backend)

    @classmethod
    def merge(
        cls,
        datasets: Sequence[LeRobotDataset | LeRobotDatasetMetadata | str | Path],
        output_repo_id: str,
        output_dir: str | Path | None = None,
    ) -> LeRobotDataset:
        """One dataset holding the episodes of ``datasets`` in order; see ``tools.merge_datasets``."""
        report = tools.merge_datasets(datasets, output_repo_id=output_repo_id, output_dir=output_dir)
        return cls.open_edited(report)

    # ------------------------------------------------------------------ writing (see dataset_writer.py)

    @classmethod
    def create(
        cls,
        repo_id: str,
        fps: int,
        features: dict[str, dict],
        robot_type: str | None = None,
        root: str | Path | None = None,
        use_videos: bool = True,
        tolerance_s: float = 1e-4,
        video_backend: str | None = None,
        vcodec: str = "libsvtav1",
        video_encoder: VideoEncoderConfig | None = None,
        data_files_size_in_mb: int | None = None,
        video_files_size_in_mb: int | None = None,
        chunks_size: int | None = None,
        image_writer_threads: int = 4,
        resume: bool = False,
    ) -> LeRobotDataset:
        """Start a new dataset at ``root`` (default ``$HF_LEROBOT_HOME/repo_id``), which must not exist.

        Camera features declared as ``video`` are encoded while recording (AV1 by default; pass
        ``vcodec="h264"`` or a ``VideoEncoderConfig`` for another codec). With ``use_videos=False``
        cameras are stored as PNG images inside the parquet files instead. ``resume=True`` continues
        a dataset already at ``root`` (after checking its features are the ones given) instead of
        refusing it, so a recording script can be re-run after a crash unchanged.
        """
        root = Path(root) if root is not None else dataset_root(repo_id)
        if resume and (root / "meta" / "info.json").is_file():
            ds = cls.resume(
                repo_id,
                root=root,
                tolerance_s=tolerance_s,
                video_backend=video_backend,
                video_encoder=video_encoder or VideoEncoderConfig(vcodec=vcodec),
                image_writer_threads=image_writer_threads,
            )
            ds.writer.check_features(features, fps)
            return ds
        writer = DatasetWriter.create(
            repo_id,
            root,
            fps,
            features,
            robot_type=robot_type,
            use_videos=use_videos,
            video_encoder=video_encoder or VideoEncoderConfig(vcodec=vcodec),
            data_files_size_in_mb=data_files_size_in_mb,
            video_files_size_in_mb=video_files_size_in_mb,
            chunks_size=chunks_size,
            image_writer_threads=image_writer_threads,
        )
        return cls._for_writer(writer, tolerance_s, video_backend)

    @classmethod
    def resume(
        cls,
        repo_id: str,
        root: str | Path | None = None,
        tolerance_s: float = 1e-4,
        video_backend: str | None = None,
        video_encoder: VideoEncoderConfig | None = None,
        image_writer_threads: int = 4,
    ) -> LeRobotDataset:
        """Append episodes to an existing dataset; an interrupted recording is recovered first."""
        root = Path(root) if root is not None else dataset_root(repo_id)
        writer = DatasetWriter.resume(
            repo_id, root, video_encoder=video_encoder, image_writer_threads=image_writer_threads
        )
        return cls._for_writer(writer, tolerance_s, video_backend)

    @classmethod
    def _for_writer(
        cls, writer: DatasetWriter, tolerance_s: float, video_backend: str | None
    ) -> LeRobotDataset:
        return cls(
            writer.repo_id,
            root=writer.root,
            tolerance_s=tolerance_s,
            video_backend=video_backend,
            _writer=writer,
        )

    def recover(self) -> None:
        """Merge the episodes an interrupted recording left staged (and clean an interrupted edit's
        leftovers), then reload. Opening a dataset never does this; see ``dataset_writer.recover``."""
        if self.writer is not None:
            raise RuntimeError("This dataset is being recorded; finalize() merges its episodes.")
        recover_root(self.root)
        self.meta = LeRobotDatasetMetadata(self.repo_id, self.root, revision=self.revision)
        self._load()

    def _ensure_loaded(self) -> None:
        """A dataset being recorded loads its frames on first read, after flushing the writer."""
        if not self._loaded:
            self._refresh_from_writer()

    def _refresh_from_writer(self) -> None:
        self.writer.flush()
        self.meta = LeRobotDatasetMetadata(self.repo_id, self.root)
        self.writer.meta = self.meta
        self._loaded = True
        self._load()

    def _writer_or_raise(self):
        if self.writer is None:
            raise RuntimeError(
                "This dataset was opened for reading. Use LeRobotDataset.create(...) for a new dataset or "
                "LeRobotDataset.resume(repo_id, root=...) to add episodes to this one."
            )
        self._loaded = False
        return self.writer

    def add_frame(self, frame: dict[str, Any], task: str | None = None) -> None:
        """Buffer one frame of the current episode (``task`` may come in the frame or per episode)."""
        self._writer_or_raise().add_frame(frame, task=task)

    def save_episode(self, task: str | None = None) -> int:
        """Write the buffered episode; returns its episode_index. ``task`` fills frames that have none."""
        return self._writer_or_raise().save_episode(task=task)

    def add_episode(self, frames: Sequence[dict[str, Any]], task: str | None = None) -> int:
        """The guide's one-call form: ``add_frame`` for each frame, then ``save_episode``."""
        writer = self._writer_or_raise()
        for frame in frames:
            writer.add_frame(frame, task=task)
        return writer.save_episode(task=task)

    def clear_episode_buffer(self) -> None:
        self._writer_or_raise().clear_episode_buffer()

    def consolidate(self) -> None:
        """Flush every pending episode into the v3.0 files and write the aggregated stats."""
        self._writer_or_raise().flush()
        self._refresh_from_writer()

    def finalize(self) -> None:
        """Close the writer (idempotent). After this the dataset is complete on disk and read-only."""
        if self.writer is not None:
            self.writer.close()
            self.meta = LeRobotDatasetMetadata(self.repo_id, self.root)
            self._loaded = True
            self._load()
            self.writer = None

    def save(self, path: str | Path) -> Path:
        """Finalize and copy the dataset folder to ``path`` (which must not exist); returns it."""
        self.finalize()
        path = Path(path)
        if path.resolve() != self.root.resolve():
            if path.exists():
                raise FileExistsError(f"{path} already exists; choose a new folder to save the dataset into.")
            shutil.copytree(self.root, path)
        return path

    @property
    def num_videos(self) -> int:
        return len(self.meta.video_keys)

    def __enter__(self) -> LeRobotDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finalize()


__all__ = ["LeRobotDataset", "LeRobotDatasetMetadata", "FrameTimestampError", "EpisodeFrames"]
