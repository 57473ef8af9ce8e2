"""The shared capture thread: freshness, timeouts, max age, shutdown, geometry checks, config parsing."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from lerobot.cameras import CameraConfig, ColorMode, Cv2Rotation, ThreadedCamera, register_camera_config
from lerobot.cameras.camera import orient_frame
from lerobot.utils.errors import DeviceAlreadyConnectedError, DeviceNotConnectedError


@dataclass(kw_only=True)
class FakeCameraConfig(CameraConfig):
    fps: int | None = 200
    warmup_s: float = 0.0


class FakeCamera(ThreadedCamera):
    """Frames filled with a running counter; the test can stall the source or make grabs fail."""

    config_class = FakeCameraConfig

    def __init__(self, config: FakeCameraConfig | None = None, shape: tuple[int, int] = (4, 6)):
        super().__init__(config or FakeCameraConfig(), label="fake")
        self.shape = shape
        self.counter = 0
        self.flowing = threading.Event()
        self.flowing.set()
        self.fail_with: Exception | None = None
        self.closed = False

    @staticmethod
    def find_cameras() -> list[dict]:
        return []

    def _open(self) -> None:
        self._pace_fps = self.fps
        self.closed = False

    def _grab(self) -> np.ndarray:
        self.flowing.wait()
        if self.fail_with is not None:
            raise self.fail_with
        self.counter += 1
        return np.full((*self.shape, 3), self.counter % 256, dtype=np.uint8)

    def _close(self) -> None:
        self.closed = True


@pytest.fixture
def camera():
    cam = FakeCamera()
    cam.connect()
    yield cam
    cam.flowing.set()  # a stalled grab would otherwise hold disconnect() for its join timeout
    cam.fail_with = None
    if cam.is_connected:
        cam.disconnect()


def stall(cam: FakeCamera) -> None:
    """Stop the source and consume whatever was already captured."""
    cam.flowing.clear()
    time.sleep(0.03)
    while True:
        try:
            cam.async_read(timeout_ms=20)
        except TimeoutError:
            return


def test_async_read_returns_each_frame_once_and_fresh(camera):
    values = [int(camera.async_read()[0, 0, 0]) for _ in range(5)]
    assert values == sorted(set(values)), values  # strictly increasing: no frame handed out twice
    assert camera.read_latest().shape == (4, 6, 3)


def test_read_waits_for_a_frame_captured_after_the_call(camera):
    before = int(camera.read_latest()[0, 0, 0])
    assert int(camera.read()[0, 0, 0]) > before


def test_async_read_times_out_naming_the_camera_when_the_source_stalls(camera):
    stall(camera)
    start = time.perf_counter()
    with pytest.raises(TimeoutError, match=r"FakeCamera\(fake\): no new frame within 100 ms"):
        camera.async_read(timeout_ms=100)
    assert time.perf_counter() - start < 0.4  # the control loop is never held past its timeout
    camera.flowing.set()
    camera.async_read(timeout_ms=500)  # and it recovers when frames flow again


def test_timeout_reports_the_last_capture_error(camera):
    camera.fail_with = OSError("USB device gone")
    time.sleep(0.05)
    with pytest.raises(TimeoutError, match="USB device gone") as info:
        for _ in range(10):
            camera.async_read(timeout_ms=50)
    assert isinstance(info.value.__cause__, OSError)


def test_read_latest_peeks_without_waiting_and_enforces_max_age(camera):
    stall(camera)
    time.sleep(0.15)
    start = time.perf_counter()
    with pytest.raises(TimeoutError, match="older than max_age_ms=100"):
        camera.read_latest(max_age_ms=100)
    assert time.perf_counter() - start < 0.1  # a peek, never a wait
    frame = camera.read_latest(max_age_ms=5000)
    assert np.array_equal(camera.read_latest(max_age_ms=5000), frame)  # peeking does not consume


def test_disconnect_stops_the_thread_and_releases_the_device(camera):
    thread = camera._thread
    camera.disconnect()
    assert not thread.is_alive()
    assert camera.closed and not camera.is_connected
    for call in (camera.read, camera.async_read, camera.read_latest, camera.disconnect):
        with pytest.raises(DeviceNotConnectedError, match="not connected"):
            call()


def test_connect_twice_refused_and_context_manager_disconnects():
    with FakeCamera() as cam:
        with pytest.raises(DeviceAlreadyConnectedError):
            cam.connect()
        cam.read()
    assert not cam.is_connected and cam.closed


def test_resolution_mismatch_fails_connect_with_expected_and_found():
    cam = FakeCamera(FakeCameraConfig(width=8, height=4), shape=(4, 6))
    with pytest.raises(RuntimeError, match=r"FakeCamera\(fake\) delivers 6x4 frames .* expects 8x4"):
        cam.connect()
    assert not cam.is_connected and cam.closed


def test_size_taken_from_first_frame_and_swapped_by_rotation():
    cam = FakeCamera(FakeCameraConfig(rotation=Cv2Rotation.ROTATE_90), shape=(4, 6))
    with cam:
        assert cam.read().shape == (6, 4, 3)
        assert (cam.width, cam.height) == (4, 6)


@pytest.mark.parametrize(
    "rotation, cv2_code",
    [
        (Cv2Rotation.NO_ROTATION, None),
        (Cv2Rotation.ROTATE_90, cv2.ROTATE_90_CLOCKWISE),
        (Cv2Rotation.ROTATE_180, cv2.ROTATE_180),
        (Cv2Rotation.ROTATE_270, cv2.ROTATE_90_COUNTERCLOCKWISE),
    ],
)
def test_orient_frame_matches_opencv_rotation_and_channel_swap(rotation, cv2_code):
    bgr = np.random.default_rng(0).integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    expected = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if cv2_code is not None:
        expected = cv2.rotate(expected, cv2_code)
    out = orient_frame(bgr, rotation, ColorMode.BGR, ColorMode.RGB)
    assert out.flags.c_contiguous and np.array_equal(out, expected)
    assert np.array_equal(
        orient_frame(bgr, rotation, ColorMode.BGR, ColorMode.BGR)[..., 0], orient_frame(bgr[..., 0], rotation)
    )


def test_config_validation_and_cli_strings():
    config = CameraConfig(fps=30, width=640, height=480, color_mode="bgr", rotation="-90")
    assert config.color_mode is ColorMode.BGR and config.rotation is Cv2Rotation.ROTATE_270
    with pytest.raises(ValueError, match="both set or both None"):
        CameraConfig(width=640)
    with pytest.raises(ValueError, match="fps must be a positive int"):
        CameraConfig(fps=0)
    with pytest.raises(ValueError, match="rotation must be one of 0, 90, 180, -90"):
        CameraConfig(rotation=45)
    with pytest.raises(ValueError, match="color_mode must be one of"):
        CameraConfig(color_mode="gray")


def test_camera_config_registry_refuses_duplicates():
    with pytest.raises(ValueError, match="'opencv' is already registered"):

        @register_camera_config("opencv")
        class Impostor(CameraConfig):
            pass
