"""A camera whose frames come from a function: the eyes of the simulated robot twins.

A simulated robot hands its camera a ``render_fn`` (typically a MuJoCo renderer of its scene), and
from then on the camera behaves exactly like a real one -- same background thread, same
``read``/``async_read``/``read_latest`` semantics, paced at ``fps`` -- so code written against the
twin runs unchanged on hardware. Without a ``render_fn`` it shows a moving gradient, so
``lerobot-find-cameras sim`` and pipeline tests have a camera that needs nothing installed.

``render_fn`` is called on the camera's capture thread. An OpenGL context belongs to the thread that
created it, so a MuJoCo ``Renderer`` must be created inside ``render_fn`` on its first call, not
beforehand; and a render reads the simulation state while the control loop may be stepping it, so
twins guard that state with a lock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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

PATTERN_WIDTH, PATTERN_HEIGHT, DEFAULT_FPS = 640, 480, 30
_PATTERN_SPEED_PX_S = 120  # fast enough that consecutive captures visibly differ


@register_camera_config("sim")
@dataclass(kw_only=True)
class SimCameraConfig(CameraConfig):
    """``render_fn() -> (H, W, 3) uint8 RGB``; ``None`` shows the test pattern.

    ``render_fn`` is set in code by the simulated robot, not from the command line. ``fps`` defaults
    to 30; ``width``/``height`` default to the first rendered frame's size (640x480 for the
    pattern). There is no exposure to settle, hence no warmup by default.
    """

    render_fn: Callable[[], np.ndarray] | None = field(default=None, repr=False, compare=False)
    """Returns one ``(H, W, 3)`` uint8 RGB frame; set in code by the simulated robot."""
    warmup_s: float = 0.0


@CAMERAS.register("sim")
class SimCamera(ThreadedCamera):
    """Frames from ``config.render_fn`` (or a moving gradient), captured at ``fps`` on a background thread."""

    config_class = SimCameraConfig
    source_color_mode = ColorMode.RGB

    def __init__(self, config: SimCameraConfig):
        render_fn = config.render_fn
        if render_fn is None:
            label = "test_pattern"
        else:  # "Twin._render_front" names a camera well; enclosing functions' names do not
            label = getattr(render_fn, "__qualname__", type(render_fn).__name__).rsplit(".<locals>.", 1)[-1]
        super().__init__(config, label=label)
        self.config: SimCameraConfig = config
        self._render: Callable[[], np.ndarray] = render_fn or self._test_pattern
        self._started = 0.0

    @staticmethod
    def find_cameras() -> list[dict[str, Any]]:
        """The test-pattern camera, always available."""
        return [
            {
                "type": "Sim",
                "id": "test_pattern",
                "name": "Simulated camera (moving gradient test pattern)",
                "default_stream_profile": {
                    "format": "RGB",
                    "width": PATTERN_WIDTH,
                    "height": PATTERN_HEIGHT,
                    "fps": DEFAULT_FPS,
                },
            }
        ]

    def _open(self) -> None:
        self.fps = self.fps or DEFAULT_FPS
        self._pace_fps = self.fps
        self._started = time.perf_counter()

    def _grab(self) -> np.ndarray:
        frame = np.asarray(self._render())
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise TypeError(
                f"{self}: render_fn must return an (H, W, 3) uint8 RGB array, got {frame.dtype} "
                f"array of shape {frame.shape}."
            )
        return frame.copy()  # renderers may reuse their output buffer for the next frame

    def _close(self) -> None:
        """Nothing to release: the renderer, if any, belongs to whoever supplied ``render_fn``."""

    def _test_pattern(self) -> np.ndarray:
        """Horizontal red ramp scrolling right, vertical green ramp, blue pulsing with time."""
        width, height = source_size(self.width or PATTERN_WIDTH, self.height or PATTERN_HEIGHT, self.rotation)
        elapsed = time.perf_counter() - self._started
        frame = np.empty((height, width, 3), dtype=np.uint8)
        shift = int(elapsed * _PATTERN_SPEED_PX_S)
        frame[..., 0] = ((np.arange(width) - shift) % width * 255 // max(width - 1, 1))[None, :]
        frame[..., 1] = (np.arange(height) * 255 // max(height - 1, 1))[:, None]
        frame[..., 2] = int(127.5 + 127.5 * math.sin(2 * math.pi * 0.5 * elapsed))
        return frame
