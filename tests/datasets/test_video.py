"""Video encoding, concatenation and decoding agree with the reference's files and timestamps."""

import json
import logging
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from lerobot.datasets.utils import DatasetError
from lerobot.datasets.video import (
    FrameTimestampError,
    StreamingVideoEncoder,
    VideoEncoderConfig,
    concatenate_video_files,
    decode_all_frames,
    decode_video_frames,
    encode_video_frames,
    get_safe_default_video_backend,
    get_video_duration_s,
    get_video_info,
)

BACKENDS = ["torchcodec", "pyav"]
PEER_VIDEO = Path(__file__).parents[1] / "fixtures" / "peer_v30_video"
FIXTURE_MP4 = PEER_VIDEO / "videos/observation.images.front/chunk-000/file-000.mp4"
FPS = 10
TOL = 1e-4
EPISODE_LENGTHS = (20, 25, 15)
EPISODE_STARTS = (0.0, 2.0, 4.5)


def solid_rgb(episode: int, frame: int) -> tuple[int, int, int]:
    """The fixture's content formula, reused for the videos written here."""
    return 20 + 8 * frame, 60 + 60 * episode, 200 - 4 * frame


def solid_frames(episode: int, n: int, h: int = 64, w: int = 96) -> list[np.ndarray]:
    return [np.full((h, w, 3), solid_rgb(episode, f), np.uint8) for f in range(n)]


def smooth_frames(n: int, h: int = 64, w: int = 96, seed: int = 0) -> np.ndarray:
    """Random but smooth content: what cameras see, and what a lossy codec keeps well."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    freq, phase, speed = rng.uniform(0.03, 0.12, (3, 2)), rng.uniform(0, 6.3, 3), rng.uniform(0.05, 0.3, 3)
    out = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        for c in range(3):
            wave = np.sin(freq[c, 0] * xx + freq[c, 1] * yy + phase[c] + speed[c] * i)
            out[i, :, :, c] = np.clip(128 + 90 * wave, 0, 255).astype(np.uint8)
    return out


def channel_means(frames: torch.Tensor) -> np.ndarray:
    return frames.float().mean(dim=(-2, -1)).numpy()


@pytest.fixture(scope="module")
def concatenated(tmp_path_factory) -> tuple[Path, list[float]]:
    """Three solid-colour segments of 20/25/15 frames concatenated as the writer does."""
    root = tmp_path_factory.mktemp("concat")
    segments = []
    for e, n in enumerate(EPISODE_LENGTHS):
        seg = root / f"episode-{e:06d}.mp4"
        assert encode_video_frames(solid_frames(e, n), seg, FPS) == pytest.approx(n / FPS)
        segments.append(seg)
    out = root / "file-000.mp4"
    return out, concatenate_video_files(segments, out)


# ------------------------------------------------------------------------------------- encoding


def test_encoded_stream_matches_reference_layout(tmp_path):
    path = tmp_path / "v.mp4"
    assert encode_video_frames(solid_frames(0, 7), path, FPS) == pytest.approx(0.7)
    with av.open(str(path)) as c:
        fixture = av.open(str(FIXTURE_MP4))
        stream, ref = c.streams.video[0], fixture.streams.video[0]
        assert len(c.streams) == 1 and not c.streams.audio
        assert stream.time_base == ref.time_base == Fraction(1, 10240)
        assert stream.codec_context.codec.canonical_name == "av1"
        assert stream.codec_context.pix_fmt == "yuv420p"
        packets = [p for p in c.demux(stream) if p.size]
        fixture.close()
    assert [p.pts for p in packets] == [1024 * i for i in range(7)]
    assert [p.is_keyframe for p in packets] == [i % 2 == 0 for i in range(7)]


def test_smooth_frames_round_trip_both_backends(tmp_path):
    frames = smooth_frames(12)
    path = tmp_path / "smooth.mp4"
    encode_video_frames(frames, path, FPS)
    expected = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    decoded = {}
    for backend in BACKENDS:
        out = decode_video_frames(path, [i / FPS for i in range(12)], TOL, backend=backend)
        assert out.dtype == torch.uint8 and out.shape == (12, 3, 64, 96)
        assert (out.float() - expected).abs().mean() < 4
        decoded[backend] = out
    assert (decoded["pyav"].int() - decoded["torchcodec"].int()).abs().max() <= 1


def test_solid_colours_within_3_of_255(concatenated):
    path, _ = concatenated
    for backend in BACKENDS:
        frames = decode_video_frames(path, [f / FPS for f in range(20)], TOL, backend=backend)
        assert np.abs(channel_means(frames) - np.array([solid_rgb(0, f) for f in range(20)])).max() <= 3


def test_encoder_config_defaults_and_info():
    cfg = VideoEncoderConfig()
    assert cfg.vcodec == "libsvtav1"
    assert list(cfg.encoder_info().items()) == [
        ("video.g", 2),
        ("video.crf", 30),
        ("video.preset", 12),
        ("video.fast_decode", 0),
        ("video.video_backend", "pyav"),
        ("video.extra_options", {}),
    ]
    assert VideoEncoderConfig(vcodec="av1").vcodec == "libsvtav1"
    assert VideoEncoderConfig(vcodec="h264").encoder_info()["video.preset"] is None


def test_unknown_codec_lists_available():
    with pytest.raises(DatasetError, match="libsvtav1"):
        VideoEncoderConfig(vcodec="nonexistent")


def test_h264_selectable(tmp_path):
    path = tmp_path / "h264.mp4"
    encode_video_frames(solid_frames(1, 6), path, FPS, VideoEncoderConfig(vcodec="h264", fast_decode=1))
    assert get_video_info(path)["video.codec"] == "h264"
    for backend in BACKENDS:
        frames = decode_video_frames(path, [0.5, 0.0], TOL, backend=backend)
        assert np.abs(channel_means(frames) - np.array([solid_rgb(1, 5), solid_rgb(1, 0)])).max() <= 4


def test_encode_accepts_decoded_tensors(tmp_path):
    """Decoded (C, H, W) tensors can be re-encoded directly (used when rewriting videos)."""
    frames, pts = decode_all_frames(FIXTURE_MP4)
    assert frames.shape == (60, 3, 64, 96) and pts[20] == pytest.approx(2.0)
    path = tmp_path / "reencoded.mp4"
    assert encode_video_frames(frames[20:25], path, FPS) == pytest.approx(0.5)
    assert np.abs(channel_means(decode_all_frames(path)[0]) - channel_means(frames[20:25])).max() <= 3


# ------------------------------------------------------------------------------- streaming encoder


def test_streaming_encoder_never_drops_frames(tmp_path):
    path = tmp_path / "stream.mp4"
    enc = StreamingVideoEncoder(path, FPS, max_queue=1)
    for frame in solid_frames(2, 15):
        enc.add_frame(frame)
    assert enc.close() == pytest.approx(1.5)
    assert enc.n_frames == 15
    frames, pts = decode_all_frames(path)
    assert len(frames) == 15 and np.allclose(pts, np.arange(15) / FPS)
    assert np.abs(channel_means(frames) - np.array([solid_rgb(2, f) for f in range(15)])).max() <= 3


def test_streaming_encoder_abort_leaves_nothing(tmp_path):
    path = tmp_path / "aborted.mp4"
    enc = StreamingVideoEncoder(path, FPS)
    for frame in solid_frames(0, 5):
        enc.add_frame(frame)
    enc.abort()
    assert list(tmp_path.iterdir()) == []


def test_streaming_encoder_reports_failures(tmp_path):
    enc = StreamingVideoEncoder(tmp_path / "odd.mp4", FPS)
    with pytest.raises(DatasetError, match="even width and height"):
        for frame in solid_frames(0, 3, h=63, w=95):
            enc.add_frame(frame)
        enc.close()
    enc = StreamingVideoEncoder(tmp_path / "shape.mp4", FPS)
    enc.add_frame(solid_frames(0, 1)[0])
    with pytest.raises(DatasetError, match="shape"):
        enc.add_frame(np.zeros((32, 32, 3), np.uint8))
    enc.abort()


# --------------------------------------------------------------------------------- concatenation


def test_concatenation_timestamps_and_content(concatenated):
    path, starts = concatenated
    assert starts == [0.0, 2.0, 4.5]
    assert get_video_duration_s(path) == pytest.approx(6.0)
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        pts = [p.pts for p in c.demux(stream) if p.size]
    assert pts == [1024 * i for i in range(60)]
    with open(path, "rb") as f:
        assert f.read(8)[4:] == b"ftyp" and f.read(32).find(b"moov") >= 0  # index at the front
    for backend in BACKENDS:
        # float32 parquet timestamps + from_timestamp, as the reader queries them
        ts = [2.0 + float(np.float32(f / FPS)) for f in range(25)]
        frames = decode_video_frames(path, ts, TOL, backend=backend)
        assert np.abs(channel_means(frames) - np.array([solid_rgb(1, f) for f in range(25)])).max() <= 3


def test_concatenation_appends_onto_output(tmp_path, concatenated):
    path, _ = concatenated
    target = tmp_path / "file.mp4"
    target.write_bytes(path.read_bytes())
    extra = tmp_path / "extra.mp4"
    encode_video_frames(solid_frames(2, 5), extra, FPS)
    assert concatenate_video_files([target, extra], target) == [0.0, 6.0]
    assert get_video_duration_s(target) == pytest.approx(6.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["extra.mp4", "file.mp4"]
    frames = decode_video_frames(target, [6.4, 4.5], TOL, backend="pyav")
    assert np.abs(channel_means(frames) - np.array([solid_rgb(2, 4), solid_rgb(2, 0)])).max() <= 3


def test_concatenation_with_reordered_frames(tmp_path):
    """h264 has B-frames, so decode times run ahead of presentation times across the joins."""
    cfg = VideoEncoderConfig(vcodec="h264")
    segments = []
    for e, n in enumerate((6, 8)):
        segments.append(tmp_path / f"{e}.mp4")
        encode_video_frames(solid_frames(e, n), segments[-1], FPS, cfg)
    out = tmp_path / "out.mp4"
    assert concatenate_video_files(segments, out) == [0.0, 0.6]
    for backend in BACKENDS:
        frames = decode_video_frames(out, [0.5, 0.6, 1.3], TOL, backend=backend)
        expected = [solid_rgb(0, 5), solid_rgb(1, 0), solid_rgb(1, 7)]
        assert np.abs(channel_means(frames) - np.array(expected)).max() <= 4


def test_concatenation_rejects_mismatched_inputs(tmp_path):
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    encode_video_frames(solid_frames(0, 2), a, FPS)
    encode_video_frames(solid_frames(0, 2, h=32, w=32), b, FPS)
    with pytest.raises(DatasetError, match="Cannot concatenate"):
        concatenate_video_files([a, b], tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()


# ------------------------------------------------------------------------------------- decoding


@pytest.mark.parametrize("backend", BACKENDS)
def test_fixture_colours(backend, peer_expected):
    for e, (start, n) in enumerate(zip(EPISODE_STARTS, EPISODE_LENGTHS)):
        idx = [0, 1, n // 2, n - 1]
        ts = [start + float(np.float32(f / FPS)) for f in idx]
        frames = decode_video_frames(FIXTURE_MP4, ts, TOL, backend=backend)
        assert frames.shape == (4, 3, 64, 96)
        assert np.abs(channel_means(frames) - np.array([solid_rgb(e, f) for f in idx])).max() <= 3
    # the reference's own decoded means for its sample rows
    for index, sample in peer_expected["samples"].items():
        i = int(index)
        e = next(k for k in range(3) if i < sum(EPISODE_LENGTHS[: k + 1]))
        ts = EPISODE_STARTS[e] + sample["timestamp"]
        frame = decode_video_frames(FIXTURE_MP4, [ts], TOL, backend=backend)[0]
        ref = np.array(sample["observation.images.front"]["mean_per_channel"])
        assert np.abs(channel_means(frame) / 255 - ref).max() <= 1 / 255


def test_backends_agree_on_fixture():
    ts = [i / FPS for i in range(60)]
    a = decode_video_frames(FIXTURE_MP4, ts, TOL, backend="pyav")
    b = decode_video_frames(FIXTURE_MP4, ts, TOL, backend="torchcodec")
    assert (a.int() - b.int()).abs().max() <= 1


def test_backends_agree_with_long_gops_and_b_frames(tmp_path):
    """With B-frames the demuxer's seek can land after the query; pyav must step back, not miss it."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (24, 64, 96, 3), dtype=np.uint8)
    path = tmp_path / "hevc.mp4"
    encode_video_frames(frames, path, FPS, VideoEncoderConfig(vcodec="hevc", g=8))
    for f in range(24):
        a = decode_video_frames(path, [f / FPS], TOL, backend="pyav")
        b = decode_video_frames(path, [f / FPS], TOL, backend="torchcodec")
        assert (a.int() - b.int()).abs().max() <= 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_unsorted_and_repeated_queries(backend):
    ts = [4.5, 0.0, 0.0, 2.0, 4.5, 0.1]
    frames = decode_video_frames(FIXTURE_MP4, ts, TOL, backend=backend)
    expected = [
        solid_rgb(2, 0),
        solid_rgb(0, 0),
        solid_rgb(0, 0),
        solid_rgb(1, 0),
        solid_rgb(2, 0),
        solid_rgb(0, 1),
    ]
    assert np.abs(channel_means(frames) - np.array(expected)).max() <= 3
    assert torch.equal(frames[1], frames[2]) and torch.equal(frames[0], frames[4])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ts", [0.05, 6.0, 7.3])
def test_frame_timestamp_error(backend, ts):
    with pytest.raises(FrameTimestampError) as info:
        decode_video_frames(FIXTURE_MP4, [0.0, ts], TOL, backend=backend)
    message = str(info.value)
    assert FIXTURE_MP4.name in message and str(ts) in message and "tolerance_s=0.0001" in message
    assert isinstance(info.value, DatasetError)


def test_backend_choice():
    with pytest.raises(ValueError, match="torchcodec"):
        decode_video_frames(FIXTURE_MP4, [0.0], TOL, backend="opencv")
    a = decode_video_frames(FIXTURE_MP4, [1.0], TOL, backend="video_reader")
    assert torch.equal(a, decode_video_frames(FIXTURE_MP4, [1.0], TOL, backend="pyav"))
    assert decode_video_frames(FIXTURE_MP4, [1.0], TOL).shape == (1, 3, 64, 96)


def test_default_backend_logs_once(caplog):
    get_safe_default_video_backend.cache_clear()
    with caplog.at_level(logging.INFO, logger="lerobot.datasets.video"):
        first = get_safe_default_video_backend()
        assert get_safe_default_video_backend() == first
    assert first in BACKENDS
    lines = [r.getMessage() for r in caplog.records if r.name == "lerobot.datasets.video"]
    assert len(lines) == 1 and first in lines[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_and_missing_files(tmp_path, backend):
    data = FIXTURE_MP4.read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=r"truncated.mp4 is corrupt or truncated.*[Rr]e-download"):
        decode_video_frames(truncated, [5.0], TOL, backend=backend)
    with pytest.raises(DatasetError, match="corrupt or truncated"):
        get_video_info(truncated)
    with pytest.raises(DatasetError, match="missing"):
        decode_video_frames(tmp_path / "nope.mp4", [0.0], TOL, backend=backend)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all" * 10)
    with pytest.raises(DatasetError, match="corrupt or truncated"):
        decode_video_frames(garbage, [0.0], TOL, backend=backend)


def test_video_info_matches_fixture_info():
    info = json.loads((PEER_VIDEO / "meta/info.json").read_text())["features"]["observation.images.front"][
        "info"
    ]
    probed = get_video_info(FIXTURE_MP4)
    assert list(probed) == [
        "video.height",
        "video.width",
        "video.codec",
        "video.pix_fmt",
        "video.fps",
        "video.channels",
        "has_audio",
    ]
    assert probed == {k: info[k] for k in probed}
    assert get_video_duration_s(FIXTURE_MP4) == pytest.approx(6.0)


class _FrameDataset(Dataset):
    def __init__(self, backend: str) -> None:
        self.backend = backend

    def __len__(self) -> int:
        return 60

    def __getitem__(self, i: int) -> torch.Tensor:
        return decode_video_frames(FIXTURE_MP4, [i / FPS], TOL, backend=self.backend)[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_dataloader_workers_after_parent_decoded(backend):
    """Decoders opened in the parent must not be reused by forked workers."""
    parent = decode_video_frames(FIXTURE_MP4, [i / FPS for i in range(60)], TOL, backend=backend)
    # A worker reusing a threaded decoder from the parent hangs, hence the timeout.
    loader = DataLoader(
        _FrameDataset(backend), batch_size=8, num_workers=2, multiprocessing_context="fork", timeout=60
    )
    assert torch.equal(torch.cat(list(loader)), parent)
    # and the parent's own decoder still works afterwards
    assert torch.equal(decode_video_frames(FIXTURE_MP4, [5.9], TOL, backend=backend)[0], parent[59])
