"""Cameras OpenCV can open: USB/UVC webcams by index or ``/dev/video*`` path, and video files.

A video file stands in for a camera in tests and demos. Unlike a device, a file never makes a reader
wait, so its frames are paced at the file's own frame rate, and at the end it starts over: a
recording loop sees an endless camera instead of an error after a few seconds.

OpenCV is imported on first use, so ``lerobot.cameras`` imports without it.
"""

from __future__ import annotations

import glob
import math
import platform
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from lerobot.cameras.camera import (
    CAMERAS,
    CameraConfig,
    ColorMode,
    ThreadedCamera,
    register_camera_config,
    source_size,
)

_MAX_PROBED_INDEX = 10  # indices probed where there is no /dev/video* to list


@register_camera_config("opencv")
@dataclass
class OpenCVCameraConfig(CameraConfig):
    """``index_or_path``: a device index (``0``), a device path (``/dev/video2``) or a video file.

    ``fourcc`` asks the device for a pixel format (``"MJPG"`` lets many USB webcams reach 30 fps at
    720p, which raw YUYV cannot over USB 2).
    """

    index_or_path: int | str | Path
    """Device index (``0``), device path (``/dev/video2``) or a video file (``lerobot-find-cameras`` lists them)."""
    _: KW_ONLY
    fourcc: str | None = None
    """Pixel format asked of the device, e.g. ``MJPG`` (None: the device's default)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.index_or_path, str):
            text = self.index_or_path
            self.index_or_path = int(text) if text.isdigit() else Path(text)
        if self.fourcc is not None and len(self.fourcc) != 4:
            raise ValueError(
                f"OpenCVCameraConfig.fourcc must be 4 characters (e.g. 'MJPG'), got {self.fourcc!r}."
            )


def _import_cv2() -> ModuleType:
    try:
        import cv2
    except ImportError as exc:
        raise ImportError(
            "OpenCV cameras need OpenCV: pip install opencv-python (or opencv-python-headless on a server)."
        ) from exc
    return cv2


@contextmanager
def _quiet_opencv(cv2: ModuleType) -> Iterator[None]:
    """Silence OpenCV's own logging while probing: every absent index prints several warnings."""
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)


def _fourcc_name(code: float) -> str:
    return int(code).to_bytes(4, "little").decode("ascii", errors="replace").strip("\x00")


def _stream_profile(cv2: ModuleType, cap: Any) -> dict[str, Any]:
    return {
        "format": _fourcc_name(cap.get(cv2.CAP_PROP_FOURCC)),
        "width": int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
        "height": int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        "fps": cap.get(cv2.CAP_PROP_FPS),
    }


@CAMERAS.register("opencv")
class OpenCVCamera(ThreadedCamera):
    """A ``cv2.VideoCapture`` source; settings are requested, then read back and verified.

    Devices silently fall back to a mode they support when asked for one they do not, so every
    requested setting is compared with what the device reports and a refusal fails ``connect()``
    with the requested and the actual value.
    """

    config_class = OpenCVCameraConfig
    source_color_mode = ColorMode.BGR

    def __init__(self, config: OpenCVCameraConfig):
        super().__init__(config, label=str(config.index_or_path))
        self.config: OpenCVCameraConfig = config
        self.index_or_path = config.index_or_path
        self._cap: Any = None
        self._is_file = False

    @staticmethod
    def find_cameras() -> list[dict[str, Any]]:
        """Open every candidate and report those that answer, with their default stream profile.

        On Linux the candidates are the ``/dev/video*`` nodes (index ``i`` is ``/dev/video<i>``, and
        nodes beyond the first few indices are common with several cameras); elsewhere indices
        ``0..9`` are probed.
        """
        cv2 = _import_cv2()
        if platform.system() == "Linux":
            nodes = glob.glob("/dev/video*")
            targets: list[int | str] = sorted(nodes, key=lambda p: int(re.sub(r"\D", "", p) or 0))
        else:
            targets = list(range(_MAX_PROBED_INDEX))
        found = []
        with _quiet_opencv(cv2):
            for target in targets:
                cap = cv2.VideoCapture(target)
                try:
                    if cap.isOpened():
                        found.append(
                            {
                                "type": "OpenCV",
                                "id": target,
                                "name": f"OpenCV camera @ {target}",
                                "backend_api": cap.getBackendName(),
                                "default_stream_profile": _stream_profile(cv2, cap),
                            }
                        )
                finally:
                    cap.release()
        return found

    def _open(self) -> None:
        cv2 = _import_cv2()
        target = self.index_or_path
        hint = "Run `lerobot-find-cameras opencv` to list the cameras this machine can open."
        if isinstance(target, Path) and not target.exists():
            raise ConnectionError(f"Could not open {self}: {target} does not exist. {hint}")
        with _quiet_opencv(cv2):
            cap = cv2.VideoCapture(target if isinstance(target, int) else str(target))
        if not cap.isOpened():
            cap.release()
            raise ConnectionError(
                f"Could not open {self}: OpenCV found no camera or video at {target!r}. {hint}"
            )
        try:
            self._configure(cv2, cap)
        except BaseException:
            cap.release()
            raise
        self._cap = cap
        self._is_file = isinstance(target, Path) and target.is_file()
        if self._is_file:
            self._pace_fps = cap.get(cv2.CAP_PROP_FPS) or None

    def _configure(self, cv2: ModuleType, cap: Any) -> None:
        """Request fourcc, size and fps; fail on any the device did not take; fill unset fps."""
        if self.config.fourcc:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*self.config.fourcc))
        if self.width is not None:
            capture_w, capture_h = source_size(self.width, self.height, self.rotation)
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, capture_w)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, capture_h)
        if self.fps is not None:
            cap.set(cv2.CAP_PROP_FPS, self.fps)

        actual = _stream_profile(cv2, cap)
        refused = []
        if self.config.fourcc and actual["format"] != self.config.fourcc:
            refused.append(f"fourcc={self.config.fourcc!r} (it uses {actual['format']!r})")
        if self.width is not None and (actual["width"], actual["height"]) != (capture_w, capture_h):
            refused.append(
                f"{capture_w}x{capture_h} capture size (it gives {actual['width']}x{actual['height']})"
            )
        if self.fps is not None and not math.isclose(actual["fps"], self.fps, rel_tol=1e-3):
            refused.append(f"fps={self.fps} (it runs at {actual['fps']:g})")
        if refused:
            raise RuntimeError(
                f"{self} did not accept " + "; ".join(refused) + ". Run `lerobot-find-cameras opencv` "
                "to see its default mode, or change the camera config."
            )
        if self.fps is None and actual["fps"] > 0:
            self.fps = round(actual["fps"])

    def _grab(self) -> np.ndarray:
        ok, frame = self._cap.read()
        if not ok and self._is_file:
            cv2 = _import_cv2()
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)  # end of the file: replay it from the start
            ok, frame = self._cap.read()
        if not ok:
            raise RuntimeError(f"{self} returned no frame (unplugged, or in use by another program?).")
        return frame

    def _close(self) -> None:
        self._cap.release()
        self._cap = None
