"""Encoding, concatenating, probing and decoding the mp4 files of LeRobotDataset v3.0 (spec §1.9).

Timestamps are the contract between the parquet files and the videos: frame ``i`` of a segment
encoded at ``fps`` is presented at exactly ``i / fps`` seconds, and a segment concatenated after
others starts exactly where they end, so ``from_timestamp + frame_index / fps`` always lands on
one frame to well within the reader's 1e-4 s tolerance.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import queue
import struct
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from lerobot.datasets.utils import DatasetError, atomic_path

logger = logging.getLogger(__name__)

_VIDEO_BACKENDS = ("torchcodec", "pyav")
_BACKEND_ALIASES = {"video_reader": "pyav"}

# Codec names users may write -> the FFmpeg encoder that produces that stream.
_CODEC_ALIASES = {"av1": "libsvtav1", "h264": "libx264", "hevc": "libx265"}
_SUPPORTED_ENCODERS = ("libsvtav1", "libx264", "libx265", "libaom-av1")
_DEFAULT_SVTAV1_PRESET = 12
# Encoder options whose value is a ':'-separated list, so user extras append instead of clashing.
_PARAM_LIST_OPTIONS = {"libsvtav1": "svtav1-params", "libx265": "x265-params"}

_FIX_HINT = (
    "Re-download the dataset (delete its folder and load it again) or re-encode the video from the "
    "original frames."
)


class FrameTimestampError(DatasetError):
    """No decoded frame lies within ``tolerance_s`` of a query timestamp.

    Usually the parquet timestamps and the video disagree (a video cut short, a wrong fps, or an
    episode's ``from_timestamp`` pointing into the wrong file), so the message gives both sides.
    """


# --------------------------------------------------------------------------------------- encoding


def _available_encoders() -> list[str]:
    """Encoders from ``_SUPPORTED_ENCODERS`` that this PyAV build can actually open."""
    out = []
    for name in _SUPPORTED_ENCODERS:
        try:
            av.codec.Codec(name, "w")
        except (av.error.FFmpegError, ValueError):
            continue
        out.append(name)
    return out


@dataclass
class VideoEncoderConfig:
    """How camera streams are compressed; the defaults reproduce the reference's files.

    ``g=2`` (a keyframe every other frame) trades file size for random access: any frame is at
    most one frame away from a keyframe, which is what makes single-frame decoding cheap.
    """

    vcodec: str = "libsvtav1"
    pix_fmt: str = "yuv420p"
    g: int | None = 2
    crf: int | None = 30
    preset: int | None = None
    fast_decode: int = 0
    extra_options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Resolved now, not at the first frame, so a typo fails before a recording starts.
        name = _CODEC_ALIASES.get(self.vcodec, self.vcodec)
        available = _available_encoders()
        if name not in available:
            raise DatasetError(
                f"Video codec '{self.vcodec}' is unknown or not available in this PyAV build. "
                f"Available: {available} (aliases: {_CODEC_ALIASES})."
            )
        self.vcodec = name

    def _resolved_preset(self) -> int | None:
        if self.preset is None and self.vcodec == "libsvtav1":
            return _DEFAULT_SVTAV1_PRESET
        return self.preset

    def encoder_info(self) -> dict[str, Any]:
        """The ``video.*`` encoder keys of a video feature's ``info`` in info.json, in reference order."""
        return {
            "video.g": self.g,
            "video.crf": self.crf,
            "video.preset": self._resolved_preset(),
            "video.fast_decode": self.fast_decode,
            "video.video_backend": "pyav",
            "video.extra_options": dict(self.extra_options),
        }

    def _codec_options(self, threads: int | None = None) -> dict[str, str]:
        """FFmpeg encoder options; ``extra_options`` may add keys but never silently override ours."""
        opts: dict[str, str] = {}
        params: list[str] = []
        if self.g is not None:
            opts["g"] = str(self.g)
        if self.crf is not None:
            opts["crf"] = str(self.crf)
        if self.vcodec == "libsvtav1":
            opts["preset"] = str(self._resolved_preset())
            if self.fast_decode:
                params.append(f"fast-decode={self.fast_decode}")
            if threads:
                params.append(f"lp={threads}")
        else:
            if self.fast_decode and self.vcodec in ("libx264", "libx265"):
                opts["tune"] = "fastdecode"
            if threads:
                opts["threads"] = str(threads)
        if self.vcodec == "libx265":
            # x265 prints a banner and per-file summary straight to stderr otherwise.
            params.append("log-level=error")
        list_key = _PARAM_LIST_OPTIONS.get(self.vcodec)
        for key, value in self.extra_options.items():
            if key == list_key:
                params.append(str(value))
            elif key in opts:
                raise DatasetError(
                    f"extra_options['{key}'] conflicts with a VideoEncoderConfig field; set that field instead."
                )
            else:
                opts[key] = str(value)
        if params and list_key:
            opts[list_key] = ":".join(params)
        return opts


def _as_hwc_uint8(frame: np.ndarray | torch.Tensor) -> np.ndarray:
    """numpy frames are (H, W, 3) as cameras give them; tensors are (3, H, W) as this module decodes them."""
    if isinstance(frame, torch.Tensor):
        if frame.ndim != 3 or frame.shape[0] != 3 or frame.dtype != torch.uint8:
            raise DatasetError(
                f"Video frames given as tensors must be uint8 (3, H, W); got {frame.dtype} {tuple(frame.shape)}."
            )
        return frame.permute(1, 2, 0).contiguous().numpy()
    arr = np.asarray(frame)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise DatasetError(
            f"Video frames must be uint8 RGB arrays of shape (H, W, 3); got {arr.dtype} {arr.shape}."
        )
    return arr


class _Mp4Writer:
    """One video stream into an mp4, frame ``i`` at pts ``i`` in a 1/fps time base.

    The mp4 muxer rescales that to a track timescale of fps * 2**k >= 10000 (1/10240 at 10 fps,
    1024 ticks per frame), exactly as in the reference's files, so every timestamp is exact.
    """

    def __init__(
        self, path: Path, fps: int, width: int, height: int, config: VideoEncoderConfig, threads: int | None
    ) -> None:
        if "420" in config.pix_fmt and (width % 2 or height % 2):
            raise DatasetError(
                f"{config.pix_fmt} needs an even width and height; got frames of {width}x{height}."
            )
        # SVT-AV1 prints a multi-line banner per encoder to stderr unless told otherwise.
        os.environ.setdefault("SVT_LOG", "1")
        self._time_base = Fraction(1, fps)
        self._container = av.open(str(path), "w", format="mp4")
        try:
            self._stream = self._container.add_stream(
                config.vcodec, rate=fps, options=config._codec_options(threads)
            )
            self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, config.pix_fmt
        except BaseException:
            self._container.close()
            raise
        self.n_frames = 0
        self._closed = False

    def write(self, rgb: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts, frame.time_base = self.n_frames, self._time_base
        self._container.mux(self._stream.encode(frame))
        self.n_frames += 1

    def finish(self) -> None:
        try:
            self._container.mux(self._stream.encode(None))
        finally:
            self._closed = True
            self._container.close()

    def discard(self) -> None:
        """Release the encoder after a failure; the file is deleted by the caller's ``atomic_path``."""
        if not self._closed:
            self._closed = True
            # The original error is the one worth reporting, not a failure to write the trailer.
            with contextlib.suppress(av.error.FFmpegError):
                self._container.close()


def encode_video_frames(
    frames: Iterable[np.ndarray | torch.Tensor],
    path: Path,
    fps: int,
    config: VideoEncoderConfig | None = None,
) -> float:
    """Encode ``frames`` into ``path`` and return the duration (n_frames / fps) in seconds.

    Written to a temporary sibling and renamed, so a crash never leaves a playable-looking but
    truncated mp4 behind.
    """
    config = config or VideoEncoderConfig()
    path = Path(path)
    with atomic_path(path) as tmp:
        writer: _Mp4Writer | None = None
        try:
            for frame in frames:
                rgb = _as_hwc_uint8(frame)
                if writer is None:
                    writer = _Mp4Writer(tmp, fps, rgb.shape[1], rgb.shape[0], config, None)
                writer.write(rgb)
            if writer is None:
                raise DatasetError(f"No frames given to encode into {path}.")
            writer.finish()
        except BaseException as e:
            if writer is not None:
                writer.discard()
            if isinstance(e, av.error.FFmpegError):
                raise DatasetError(f"Encoding {path} with {config.vcodec} failed: {e}") from e
            raise
    return writer.n_frames / fps


_STOP = object()


class _Aborted(Exception):
    """Raised inside the encoder thread so ``atomic_path`` deletes the partial file."""


class StreamingVideoEncoder:
    """Encodes frames pushed one at a time into an mp4, in a background thread, so recording never waits on the encoder.

    Unlike the reference, a full queue blocks ``add_frame`` rather than dropping the frame: a
    dropped frame would shift every later timestamp of the episode against its parquet row.
    """

    def __init__(
        self,
        path: Path,
        fps: int,
        config: VideoEncoderConfig | None = None,
        threads: int | None = None,
        max_queue: int = 64,
    ) -> None:
        self.path = Path(path)
        self.fps = fps
        self.config = config or VideoEncoderConfig()
        self.threads = threads
        self.n_frames = 0
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._aborted = threading.Event()
        self._shape: tuple[int, ...] | None = None
        self._finished = False

    def add_frame(self, frame: np.ndarray) -> None:
        """Queue one (H, W, 3) uint8 RGB frame; copied, because camera drivers reuse their buffers."""
        if self._finished:
            raise DatasetError(f"{self.path}: add_frame() after close() or abort().")
        rgb = _as_hwc_uint8(frame)
        if self._shape is None:
            self._shape = rgb.shape
            self._thread = threading.Thread(
                target=self._run,
                args=(rgb.shape[1], rgb.shape[0]),
                name=f"encoder:{self.path.name}",
                daemon=True,
            )
            self._thread.start()
        elif rgb.shape != self._shape:
            raise DatasetError(
                f"{self.path}: frame of shape {rgb.shape} after frames of shape {self._shape}."
            )
        self._put(rgb.copy())
        self.n_frames += 1

    def _put(self, item: object) -> None:
        # Bounded waits so that an encoder thread which died with a full queue is reported, not waited on.
        while True:
            self._raise_if_failed()
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise DatasetError(
                f"Encoding {self.path} with {self.config.vcodec} failed: {self._error}"
            ) from self._error

    def _run(self, width: int, height: int) -> None:
        try:
            with atomic_path(self.path) as tmp:
                writer = _Mp4Writer(tmp, self.fps, width, height, self.config, self.threads)
                try:
                    while (item := self._queue.get()) is not _STOP:
                        if self._aborted.is_set():
                            raise _Aborted
                        writer.write(item)
                    if self._aborted.is_set():
                        raise _Aborted
                    writer.finish()
                except BaseException:
                    writer.discard()
                    raise
        except _Aborted:
            pass
        except BaseException as e:  # handed to the recording thread by add_frame/close
            self._error = e

    def close(self) -> float:
        """Flush and wait for the file; returns its duration in seconds (n_frames / fps)."""
        if self._finished:
            raise DatasetError(f"{self.path}: close() called twice or after abort().")
        self._finished = True
        if self._thread is None:
            raise DatasetError(f"{self.path}: no frames were added; call abort() to drop an empty episode.")
        self._put(_STOP)
        self._thread.join()
        self._raise_if_failed()
        return self.n_frames / self.fps

    def abort(self) -> None:
        """Stop encoding and delete the partial file (re-recording an episode)."""
        self._finished = True
        self._aborted.set()
        if self._thread is None:
            return
        # Make room for the stop marker; the frames would be discarded anyway.
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(_STOP)
        self._thread.join()


# ---------------------------------------------------------------------------------- file checks


def _corrupt_error(path: Path, detail: object) -> DatasetError:
    return DatasetError(f"{path} is corrupt or truncated ({detail}). {_FIX_HINT}")


def _check_video_file(path: Path) -> None:
    """Fail early, naming the file, on a missing or truncated mp4.

    A cut-off mp4 whose index sits at the front opens fine and only fails deep inside the decoder
    (torchcodec: "Could not push packet to decoder"), so walk the top-level boxes and check that
    the last one ends where the file does.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DatasetError(f"Video file {path} is missing. {_FIX_HINT}") from None
    with open(path, "rb") as f:
        pos = 0
        while pos < size:
            f.seek(pos)
            header = f.read(16)
            if len(header) < 8:
                raise _corrupt_error(path, f"incomplete mp4 box header at byte {pos}")
            box_size, box_type = struct.unpack(">I4s", header[:8])
            if pos == 0 and box_type != b"ftyp":
                return  # not ISO-BMFF; leave the diagnosis to the demuxer
            if box_size == 1 and len(header) == 16:
                box_size = struct.unpack(">Q", header[8:16])[0]
            elif box_size == 0:
                return  # the last box runs to the end of the file by definition
            if box_size < 8:
                raise _corrupt_error(path, f"invalid mp4 box size {box_size} at byte {pos}")
            pos += box_size
    if size < 8 or pos > size:
        raise _corrupt_error(path, f"file has {size} bytes, its mp4 boxes need {pos}")


def _open_input(path: Path) -> av.container.InputContainer:
    _check_video_file(path)
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as e:
        raise _corrupt_error(path, e) from e
    if not container.streams.video:
        container.close()
        raise DatasetError(f"{path} has no video stream.")
    return container


# ------------------------------------------------------------------------------------ probing


def get_video_info(path: Path) -> dict[str, Any]:
    """The stream-derived keys of a video feature's ``info`` in info.json (spec §1.4), in reference order."""
    path = Path(path)
    with _open_input(path) as container:
        stream = container.streams.video[0]
        pix_fmt = stream.codec_context.pix_fmt
        rate = stream.base_rate or stream.average_rate
        info: dict[str, Any] = {
            "video.height": stream.codec_context.height,
            "video.width": stream.codec_context.width,
            "video.codec": stream.codec_context.codec.canonical_name,
            "video.pix_fmt": pix_fmt,
            "video.fps": int(rate),
            "video.channels": len(av.VideoFormat(pix_fmt).components),
            "has_audio": bool(container.streams.audio),
        }
        if container.streams.audio:
            audio = container.streams.audio[0]
            info.update(
                {
                    "audio.channels": audio.codec_context.channels,
                    "audio.codec": audio.codec_context.codec.canonical_name,
                    "audio.bit_rate": audio.bit_rate,
                    "audio.sample_rate": audio.sample_rate,
                    "audio.bit_depth": audio.format.bits,
                    "audio.channel_layout": audio.layout.name,
                }
            )
    return info


def get_video_duration_s(path: Path) -> float:
    """Duration of the video stream (its header), falling back to the container's."""
    path = Path(path)
    with _open_input(path) as container:
        stream = container.streams.video[0]
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        if container.duration is None:
            raise _corrupt_error(path, "no duration in the header")
        return container.duration / av.time_base


# ------------------------------------------------------------------------------- concatenation


def concatenate_video_files(inputs: Sequence[Path], output: Path) -> list[float]:
    """Append ``inputs`` into ``output`` without re-encoding; returns where each input starts in it (s).

    Input ``k`` is shifted by the summed durations of inputs ``0..k-1`` so presentation times stay
    continuous (``frame_index / fps + from_timestamp``). ``output`` may be one of the inputs: the
    result is built in a temporary file and renamed over it, so appending an episode to an existing
    file is crash-safe. The index (moov) is moved to the front so the file can be streamed.
    """
    inputs = [Path(p) for p in inputs]
    output = Path(output)
    if not inputs:
        raise DatasetError(f"No input videos to concatenate into {output}.")
    containers = [_open_input(p) for p in inputs]
    try:
        first = containers[0].streams.video[0]
        for path, c in zip(inputs[1:], containers[1:]):
            _check_compatible(inputs[0], first, path, c.streams.video[0])
        starts: list[float] = []
        with (
            atomic_path(output) as tmp,
            av.open(str(tmp), "w", format="mp4", container_options={"movflags": "faststart"}) as out,
        ):
            out_stream = out.add_stream_from_template(first, opaque=True)
            offset = Fraction(0)
            for path, c in zip(inputs, containers):
                starts.append(float(offset))
                offset += _copy_packets(path, c, out, out_stream, offset)
    except av.error.FFmpegError as e:
        raise DatasetError(
            f"Concatenating {[str(p) for p in inputs]} into {output} failed: {e}. {_FIX_HINT}"
        ) from e
    finally:
        for c in containers:
            c.close()
    return starts


def _check_compatible(
    ref_path: Path, ref: av.video.stream.VideoStream, path: Path, s: av.video.stream.VideoStream
) -> None:
    """Stream copy only works between files from the same encoder settings and frame rate."""
    a = (
        ref.codec_context.name,
        ref.codec_context.width,
        ref.codec_context.height,
        ref.codec_context.pix_fmt,
        ref.average_rate,
    )
    b = (
        s.codec_context.name,
        s.codec_context.width,
        s.codec_context.height,
        s.codec_context.pix_fmt,
        s.average_rate,
    )
    if a != b:
        raise DatasetError(
            f"Cannot concatenate {path} (codec, width, height, pix_fmt, fps = {b}) after {ref_path} ({a}); "
            "re-encode one of them with the other's settings."
        )


def _copy_packets(
    path: Path,
    container: av.container.InputContainer,
    out: av.container.OutputContainer,
    out_stream: Any,
    offset: Fraction,
) -> Fraction:
    """Remux one input starting at ``offset`` seconds; returns its duration in seconds.

    Packets are written as they are read, so appending to a large file needs no memory for it;
    the header's start time (the first presented frame) anchors the shift.
    """
    stream = container.streams.video[0]
    tb = stream.time_base
    frame_ticks = round(1 / (stream.average_rate * tb)) if stream.average_rate else 0
    start = stream.start_time or 0
    shift = round(offset / tb) - start
    end = None
    for p in container.demux(stream):
        if not p.size or p.pts is None:
            continue
        packet_end = p.pts + (p.duration or frame_ticks)
        end = packet_end if end is None else max(end, packet_end)
        p.pts += shift
        if p.dts is not None:
            p.dts += shift
        p.stream = out_stream
        out.mux(p)
    if end is None:
        raise _corrupt_error(path, "no video packets")
    return (end - start) * tb


# ---------------------------------------------------------------------------------- decoding


@functools.cache
def get_safe_default_video_backend() -> str:
    """torchcodec when it imports and really decodes a video here, else pyav.

    Importing is not enough: a torchcodec wheel built against another torch or FFmpeg imports
    fine and fails at the first decode, so decode a tiny AV1 clip once per process.
    """
    try:
        from torchcodec.decoders import VideoDecoder

        with tempfile.TemporaryDirectory() as tmp:
            probe = Path(tmp) / "probe.mp4"
            encode_video_frames([np.zeros((64, 64, 3), np.uint8)] * 2, probe, fps=10)
            VideoDecoder(str(probe), seek_mode="approximate").get_frames_at([1])
    except Exception as e:  # any failure means "not usable here", whatever its type
        logger.info("Video decoding backend: pyav (torchcodec is not usable: %s: %s).", type(e).__name__, e)
        return "pyav"
    logger.info("Video decoding backend: torchcodec.")
    return "torchcodec"


def _resolve_backend(backend: str | None) -> str:
    if backend is None:
        return get_safe_default_video_backend()
    backend = _BACKEND_ALIASES.get(backend, backend)
    if backend not in _VIDEO_BACKENDS:
        raise ValueError(
            f"Unknown video backend {backend!r}; choose one of {list(_VIDEO_BACKENDS)}, None (auto) "
            f"or an alias {list(_BACKEND_ALIASES)}."
        )
    return backend


class _PyAVReader:
    """Nearest frames by seeking to the keyframe before the first query and decoding forward."""

    def __init__(self, path: Path) -> None:
        self.container = _open_input(path)
        self.stream = self.container.streams.video[0]
        # One decoder thread: a single random frame is latency-bound, and DataLoader workers
        # already supply the parallelism.
        self.stream.thread_count = 1
        self.time_base = self.stream.time_base
        self.start_pts = self.stream.start_time or 0
        self.path = path

    def nearest(self, queries: np.ndarray, tolerance_s: float) -> tuple[torch.Tensor, np.ndarray]:
        target = queries[0] - tolerance_s
        while True:
            seek_pts = max(math.floor(target / self.time_base), self.start_pts)
            self.container.seek(seek_pts, stream=self.stream, backward=True)
            best, best_pts, first_time = self._scan(queries)
            # The demuxer seeks on decode timestamps; with reordered frames (h264/hevc B-frames)
            # the keyframe found may be presented after the first query, so step back and retry.
            if (
                first_time is not None
                and first_time - queries[0] >= tolerance_s
                and seek_pts > self.start_pts
            ):
                target -= 1.0
                continue
            break
        if first_time is None:
            raise _corrupt_error(self.path, "no frame could be decoded")
        # A single-threaded conversion: swscale's default thread pool costs more than it saves on one
        # small frame, and stalls whenever another process holds the cores.
        rgb = {id(f): f.to_ndarray(format="rgb24", threads=1) for f in best}
        frames = torch.from_numpy(np.stack([rgb[id(f)] for f in best])).permute(0, 3, 1, 2)
        return frames.contiguous(), best_pts

    def _scan(self, queries: np.ndarray) -> tuple[list[av.VideoFrame], np.ndarray, float | None]:
        best: list[Any] = [None] * len(queries)
        best_pts = np.full(len(queries), np.nan)
        best_dist = np.full(len(queries), np.inf)
        first_time = None
        for frame in self.container.decode(self.stream):
            if frame.pts is None:
                continue
            t = float(frame.pts * self.time_base)
            if first_time is None:
                first_time = t
            dist = np.abs(queries - t)
            for i in np.flatnonzero(dist < best_dist):
                best[i], best_pts[i], best_dist[i] = frame, t, dist[i]
            if t >= queries[-1]:
                break  # every later frame is farther from every query
        return best, best_pts, first_time


class _TorchCodecReader:
    """Nearest frames via torchcodec, mapping a timestamp to frame ``round(ts * fps)``.

    Approximate seek mode trusts the header's frame rate instead of scanning every packet at open;
    the returned pts are checked against the tolerance, so a file that breaks that assumption
    fails loudly rather than returning the wrong frame.
    """

    def __init__(self, path: Path) -> None:
        try:
            from torchcodec.decoders import VideoDecoder
        except ImportError as e:
            raise ImportError(
                f"backend='torchcodec' needs a working torchcodec ({e}); use backend='pyav'."
            ) from e
        _check_video_file(path)
        try:
            self.decoder = VideoDecoder(str(path), seek_mode="approximate", num_ffmpeg_threads=1)
        except RuntimeError as e:
            raise _corrupt_error(path, e) from e
        meta = self.decoder.metadata
        self.fps = meta.average_fps
        self.num_frames = meta.num_frames

    def nearest(self, queries: np.ndarray, tolerance_s: float) -> tuple[torch.Tensor, np.ndarray]:
        indices = np.clip(np.round(queries * self.fps), 0, self.num_frames - 1).astype(np.int64)
        batch = self.decoder.get_frames_at(indices.tolist())
        return batch.data, batch.pts_seconds.numpy()


_Reader = _PyAVReader | _TorchCodecReader


@dataclass
class _CacheEntry:
    reader: _Reader
    signature: tuple[int, int, int]
    lock: threading.Lock = field(default_factory=threading.Lock)


class _DecoderCache:
    """Open readers per (process id, backend, path), least recently used evicted.

    A reader opened before a fork must never be used in the child: its file offset is shared with
    the parent, and a threaded decoder waits on worker threads that do not exist there (a forked
    DataLoader worker reusing one hangs; the reference fails with "Could not push packet to
    decoder"). Nor may the child free it, since closing a threaded decoder joins those missing
    threads; readers inherited from another process are therefore parked in ``_inherited`` and
    never touched.
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._entries: OrderedDict[tuple[int, str, str], _CacheEntry] = OrderedDict()
        self._inherited: list[_CacheEntry] = []
        self._lock = threading.Lock()

    def after_fork_in_child(self) -> None:
        # The lock may have been held by a parent thread at the moment of the fork.
        self._lock = threading.Lock()
        self._inherited.extend(self._entries.values())
        self._entries = OrderedDict()

    def get(self, path: Path, backend: str) -> _CacheEntry:
        try:
            st = path.stat()
        except FileNotFoundError:
            raise DatasetError(f"Video file {path} is missing. {_FIX_HINT}") from None
        # The file may have been replaced (an episode appended by rename) since it was opened.
        signature = (st.st_ino, st.st_size, st.st_mtime_ns)
        key = (os.getpid(), backend, os.fspath(path))
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.signature == signature:
                self._entries.move_to_end(key)
                return entry
        reader = _TorchCodecReader(path) if backend == "torchcodec" else _PyAVReader(path)
        entry = _CacheEntry(reader, signature)
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_size:
                (pid, _, _), old = self._entries.popitem(last=False)
                # Only reachable after a fork that bypassed the Python-level hook (a C-level fork).
                if pid != os.getpid():
                    self._inherited.append(old)
        return entry

    def discard(self, path: Path, backend: str) -> None:
        with self._lock:
            self._entries.pop((os.getpid(), backend, os.fspath(path)), None)


_DECODERS = _DecoderCache(int(os.environ.get("LEROBOT_VIDEO_DECODER_CACHE_SIZE", "32")))
os.register_at_fork(after_in_child=_DECODERS.after_fork_in_child)


def decode_video_frames(
    video_path: Path | str, timestamps: Sequence[float], tolerance_s: float, backend: str | None = None
) -> torch.Tensor:
    """uint8 (T, C, H, W) RGB: for each query timestamp (s) the nearest frame, which must be strictly within ``tolerance_s``.

    Queries may be unsorted and repeated (padding repeats edge frames); each distinct frame is
    decoded once.
    """
    backend = _resolve_backend(backend)
    path = Path(video_path)
    query = np.asarray(timestamps, dtype=np.float64).reshape(-1)
    if query.size == 0:
        raise ValueError("decode_video_frames needs at least one timestamp.")
    unique, inverse = np.unique(query, return_inverse=True)
    # The common case (one timestamp, or distinct sorted ones) needs no gather at the end.
    identity = len(unique) == len(query) and np.array_equal(unique, query)
    entry = _DECODERS.get(path, backend)
    with entry.lock:
        try:
            frames, pts = entry.reader.nearest(unique, tolerance_s)
        except (av.error.FFmpegError, RuntimeError) as e:
            # Its state after a failed decode is unknown; the next call reopens the file.
            _DECODERS.discard(path, backend)
            raise _corrupt_error(path, e) from e
    far = ~(np.abs(pts - unique) < tolerance_s)
    if far.any():
        raise FrameTimestampError(
            f"{path}: no frame within tolerance_s={tolerance_s} of query timestamps {unique[far].tolist()} "
            f"(nearest frame timestamps found: {pts[far].tolist()}; backend {backend}). The parquet timestamps "
            "and the video disagree: the video may be cut short, encoded at another fps, or the episode's "
            "from_timestamp may point into the wrong file."
        )
    return frames if identity else frames[torch.from_numpy(inverse)]


def decode_all_frames(path: Path) -> tuple[torch.Tensor, np.ndarray]:
    """Every frame of a file as uint8 (N, C, H, W) plus its presentation times (s), for in-memory caches."""
    path = Path(path)
    with _open_input(path) as container:
        stream = container.streams.video[0]
        stream.thread_count = 0  # sequential decoding does benefit from frame threads
        frames, pts = [], []
        try:
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                pts.append(float(frame.pts * stream.time_base))
        except av.error.FFmpegError as e:
            raise _corrupt_error(path, e) from e
    if not frames:
        raise _corrupt_error(path, "no frame could be decoded")
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous(), np.asarray(pts)
