"""OpenCVCamera on a generated video file: geometry, colour order, rotation, pacing, refused settings."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from lerobot.cameras import ColorMode, Cv2Rotation, OpenCVCamera, OpenCVCameraConfig

WIDTH, HEIGHT, FPS, N_FRAMES = 96, 64, 30, 12
RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    """A 96x64 30 fps clip whose quadrants are red | green over blue | white (RGB)."""
    path = tmp_path_factory.mktemp("video") / "quadrants.mp4"
    rgb = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    h, w = HEIGHT // 2, WIDTH // 2
    rgb[:h, :w], rgb[:h, w:], rgb[h:, :w], rgb[h:, w:] = RED, GREEN, BLUE, WHITE
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    assert writer.isOpened()
    for _ in range(N_FRAMES):
        writer.write(rgb[..., ::-1].copy())
    writer.release()
    return path


def quadrants(frame: np.ndarray) -> list[tuple[int, ...]]:
    """Centre pixel of the top-left, top-right, bottom-left, bottom-right quadrants."""
    h, w = frame.shape[:2]
    return [tuple(int(v) for v in frame[y, x]) for y in (h // 4, 3 * h // 4) for x in (w // 4, 3 * w // 4)]


def assert_colors(frame: np.ndarray, expected: list[tuple[int, int, int]]) -> None:
    found = quadrants(frame)
    assert all(np.abs(np.subtract(f, e)).max() < 40 for f, e in zip(found, expected)), (found, expected)


def open_camera(video: Path, **kwargs) -> OpenCVCamera:
    cam = OpenCVCamera(OpenCVCameraConfig(video, warmup_s=0, **kwargs))
    cam.connect()
    return cam


def test_reads_rgb_frames_and_fills_unset_settings(video):
    cam = open_camera(video)
    try:
        frame = cam.read()
        assert frame.shape == (HEIGHT, WIDTH, 3) and frame.dtype == np.uint8
        assert (cam.width, cam.height, cam.fps) == (WIDTH, HEIGHT, FPS)
        assert_colors(frame, [RED, GREEN, BLUE, WHITE])
    finally:
        cam.disconnect()


def test_bgr_color_mode(video):
    cam = open_camera(video, color_mode=ColorMode.BGR, fps=FPS, width=WIDTH, height=HEIGHT)
    try:
        assert_colors(cam.read(), [BLUE, GREEN, RED, WHITE])
    finally:
        cam.disconnect()


@pytest.mark.parametrize(
    "rotation, expected",
    [
        (Cv2Rotation.ROTATE_90, [BLUE, RED, WHITE, GREEN]),  # clockwise
        (Cv2Rotation.ROTATE_180, [WHITE, BLUE, GREEN, RED]),
        (Cv2Rotation.ROTATE_270, [GREEN, WHITE, RED, BLUE]),
    ],
)
def test_rotation_with_config_size_after_rotation(video, rotation, expected):
    quarter = rotation != Cv2Rotation.ROTATE_180
    width, height = (HEIGHT, WIDTH) if quarter else (WIDTH, HEIGHT)
    cam = open_camera(video, rotation=rotation, width=width, height=height)
    try:
        frame = cam.async_read()
        assert frame.shape == (height, width, 3)
        assert_colors(frame, expected)
    finally:
        cam.disconnect()


def test_file_plays_at_its_own_pace_and_loops(video):
    """A 12-frame clip streams for longer than it lasts, at about its 30 fps."""
    cam = open_camera(video)
    try:
        n = int(1.5 * N_FRAMES)
        start = time.perf_counter()
        frames = [cam.async_read(timeout_ms=500) for _ in range(n)]
        elapsed = time.perf_counter() - start
        assert all(f.shape == (HEIGHT, WIDTH, 3) for f in frames)
        # Unpaced decoding would deliver these in milliseconds; paced, they take about n / fps.
        assert 0.6 * (n - 1) / FPS < elapsed < 3 * n / FPS, elapsed
    finally:
        cam.disconnect()


def test_refused_settings_name_requested_and_actual(video):
    with pytest.raises(RuntimeError, match=r"did not accept fps=60 \(it runs at 30\)"):
        open_camera(video, fps=60)
    with pytest.raises(RuntimeError, match=r"640x480 capture size \(it gives 96x64\)"):
        open_camera(video, width=640, height=480)


def test_unknown_index_or_path_suggests_find_cameras(tmp_path):
    with pytest.raises(ConnectionError, match=r"OpenCVCamera\(97\).*lerobot-find-cameras opencv"):
        OpenCVCamera(OpenCVCameraConfig(97, warmup_s=0)).connect()
    with pytest.raises(ConnectionError, match="does not exist.*lerobot-find-cameras opencv"):
        OpenCVCamera(OpenCVCameraConfig(tmp_path / "missing.mp4")).connect()


def test_config_parses_cli_strings():
    assert OpenCVCameraConfig("2").index_or_path == 2
    assert OpenCVCameraConfig("/dev/video0").index_or_path == Path("/dev/video0")
    assert OpenCVCameraConfig(0).type == "opencv"
    with pytest.raises(ValueError, match="4 characters"):
        OpenCVCameraConfig(0, fourcc="MJPEG")
