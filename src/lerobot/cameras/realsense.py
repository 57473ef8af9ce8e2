"""Intel RealSense depth cameras (D400 series and friends) through Intel's ``pyrealsense2``.

Colour comes out as RGB like every other camera. With ``use_depth=True`` the depth stream is
aligned to the colour image (so pixel ``(v, u)`` of both describe the same point) and returned by
``read_depth()`` / ``read_latest_depth()`` as ``(H, W)`` uint16 millimetres, rotated like the colour
frame. ``pyrealsense2`` is imported on ``connect()``/``find_cameras()`` only, so the rest of
``lerobot.cameras`` works where it is not installed.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import KW_ONLY, dataclass
from types import ModuleType
from typing import Any

import numpy as np

from lerobot.cameras.camera import (
    CAMERAS,
    CameraConfig,
    ColorMode,
    ThreadedCamera,
    orient_frame,
    register_camera_config,
    source_size,
)

DEPTH = "depth"
_WAIT_FOR_FRAMES_MS = 1000  # the SDK's own timeout per frameset; a stalled device raises after it


@register_camera_config("intelrealsense")
@dataclass
class RealSenseCameraConfig(CameraConfig):
    """``serial_number_or_name``: the serial number (unique) or the product name (e.g. ``"Intel
    RealSense D435"``, accepted only while one such camera is connected).

    ``fps``, ``width`` and ``height`` are all set (one stream profile) or all ``None`` (the
    device's default profile): the SDK resolves a profile from all three together.
    """

    serial_number_or_name: str
    """Serial number (unique) or product name of the camera (``lerobot-find-cameras realsense`` lists them)."""
    _: KW_ONLY
    use_depth: bool = False
    """Also stream depth (millimetres, aligned to the colour frame)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.serial_number_or_name = str(self.serial_number_or_name)
        given = [v is not None for v in (self.fps, self.width, self.height)]
        if any(given) and not all(given):
            raise ValueError(
                "RealSenseCameraConfig needs fps, width and height all set or all None, got "
                f"fps={self.fps}, width={self.width}, height={self.height}."
            )


def import_pyrealsense2() -> ModuleType:
    """Import ``pyrealsense2`` or raise an ``ImportError`` that says how to get it here."""
    try:
        import pyrealsense2
    except ImportError as exc:
        system, machine = platform.system(), platform.machine()
        python = f"{sys.version_info.major}.{sys.version_info.minor}"
        if system == "Darwin":
            where = (
                "Intel publishes no pyrealsense2 wheel for macOS: try `pip install pyrealsense2-macosx`, "
                "or build librealsense with -DBUILD_PYTHON_BINDINGS=ON."
            )
        else:
            where = (
                f"If pip finds no version, Intel publishes no wheel for Python {python} on {system} {machine}: "
                "build librealsense with -DBUILD_PYTHON_BINDINGS=ON, or use a supported Python."
            )
        raise ImportError(
            f"RealSense cameras need Intel's SDK bindings: pip install pyrealsense2. {where}"
        ) from exc
    return pyrealsense2


@CAMERAS.register("intelrealsense")
class RealSenseCamera(ThreadedCamera):
    """A RealSense colour stream, plus optional depth aligned to it."""

    config_class = RealSenseCameraConfig
    source_color_mode = ColorMode.RGB  # the colour stream is requested as rgb8

    def __init__(self, config: RealSenseCameraConfig):
        super().__init__(config, label=config.serial_number_or_name)
        self.config: RealSenseCameraConfig = config
        self.use_depth = config.use_depth
        self._pipeline: Any = None
        self._align: Any = None
        self._frameset: Any = None
        self._depth_to_mm = 1.0

    @staticmethod
    def find_cameras() -> list[dict[str, Any]]:
        """Connected RealSense devices with their serial number, name and default colour profile."""
        rs = import_pyrealsense2()
        found = []
        for device in rs.context().query_devices():
            info = {
                "type": "RealSense",
                "id": device.get_info(rs.camera_info.serial_number),
                "name": device.get_info(rs.camera_info.name),
                "firmware_version": device.get_info(rs.camera_info.firmware_version),
                "usb_type_descriptor": device.get_info(rs.camera_info.usb_type_descriptor),
            }
            for sensor in device.query_sensors():
                for profile in sensor.get_stream_profiles():
                    if profile.is_default() and profile.stream_type() == rs.stream.color:
                        video = profile.as_video_stream_profile()
                        info["default_stream_profile"] = {
                            "format": str(profile.format()),
                            "width": video.width(),
                            "height": video.height(),
                            "fps": profile.fps(),
                        }
            found.append(info)
        return found

    def _serial_number(self) -> str:
        """The configured serial number, or the serial of the one connected camera with that name."""
        key = self.config.serial_number_or_name
        if key.isdigit():
            return key
        cameras = self.find_cameras()
        matches = [cam["id"] for cam in cameras if cam["name"] == key]
        if not matches:
            names = ", ".join(f"{cam['name']} ({cam['id']})" for cam in cameras) or "none"
            raise ConnectionError(
                f"No RealSense camera named {key!r} is connected (found: {names}). "
                "Run `lerobot-find-cameras realsense`."
            )
        if len(matches) > 1:
            raise ValueError(
                f"{len(matches)} RealSense cameras are named {key!r}; use a serial number: {matches}."
            )
        return matches[0]

    def _open(self) -> None:
        rs = import_pyrealsense2()
        serial = self._serial_number()
        config = rs.config()
        config.enable_device(serial)
        width, height = source_size(self.width, self.height, self.rotation) if self.width else (0, 0)
        config.enable_stream(rs.stream.color, width, height, rs.format.rgb8, self.fps or 0)
        if self.use_depth:
            config.enable_stream(rs.stream.depth, rs.format.z16, self.fps or 0)
        pipeline = rs.pipeline()
        try:
            profile = pipeline.start(config)
        except RuntimeError as exc:
            wanted = f"{width}x{height} @ {self.fps} fps" if self.width else "its default profile"
            raise ConnectionError(
                f"Could not start {self} (serial {serial}) with {wanted}: {exc}. "
                "Run `lerobot-find-cameras realsense` to see connected cameras and their default profile."
            ) from exc
        self._pipeline = pipeline
        if self.fps is None:
            self.fps = profile.get_stream(rs.stream.color).as_video_stream_profile().fps()
        if self.use_depth:
            self._align = rs.align(rs.stream.color)
            self._depth_to_mm = profile.get_device().first_depth_sensor().get_depth_scale() * 1000

    def _grab(self) -> np.ndarray:
        frameset = self._pipeline.wait_for_frames(_WAIT_FOR_FRAMES_MS)
        if self._align is not None:
            frameset = self._align.process(frameset)
        color = frameset.get_color_frame()
        if not color:
            raise RuntimeError(f"{self} delivered a frameset without a colour frame.")
        self._frameset = frameset  # _grab_extra reads depth from this same capture
        return np.array(color.get_data())  # a copy: the SDK recycles the frame's buffer

    def _grab_extra(self) -> dict[str, np.ndarray]:
        if not self.use_depth:
            return {}
        depth = self._frameset.get_depth_frame()
        if not depth:
            raise RuntimeError(f"{self} delivered a frameset without a depth frame.")
        raw = np.asanyarray(depth.get_data())
        # D400 depth units are 1 mm already; others (e.g. L515, 0.25 mm) are converted.
        mm = (
            raw.copy()
            if abs(self._depth_to_mm - 1.0) < 1e-6
            else np.round(raw * self._depth_to_mm).astype(np.uint16)
        )
        return {DEPTH: orient_frame(mm, self.rotation)}

    def read_depth(self, timeout_ms: float = 1000) -> np.ndarray:
        """Block until a capture published after this call arrives; return its depth map (uint16 mm)."""
        self._require_depth()
        return self._next_capture(self._latest_seq(), timeout_ms, consume=False).frames[DEPTH]

    def read_latest_depth(self, max_age_ms: float = 500) -> np.ndarray:
        """The newest depth map without waiting; ``TimeoutError`` if older than ``max_age_ms``."""
        self._require_depth()
        return self._latest_capture(max_age_ms).frames[DEPTH]

    def _require_depth(self) -> None:
        if not self.use_depth:
            raise RuntimeError(f"{self} was configured without depth; set use_depth=True in its config.")

    def _close(self) -> None:
        self._pipeline.stop()
        self._pipeline = self._align = self._frameset = None
