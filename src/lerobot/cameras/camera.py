"""The camera API every camera implements, and the background capture thread they share.

A control loop runs at a fixed rate and cannot afford to wait on a camera's exposure, USB transfer or
renderer. So every camera here captures on its own thread (``ThreadedCamera``): the thread grabs
frames continuously and keeps only the newest one, stamped with its capture time and a sequence
number. Readers then choose how fresh a frame they need:

- ``read()``: block until a frame published *after* the call arrives (simple scripts, tests);
- ``async_read(timeout_ms)``: the newest frame this camera has not handed out yet, waiting at most
  ``timeout_ms`` for one (a recording loop that must never use the same image twice);
- ``read_latest(max_age_ms)``: the newest frame right now, without waiting, as long as it is not
  older than ``max_age_ms`` (a control loop that must never block).

A camera that stops delivering -- unplugged, a stalled driver, a renderer that raises -- surfaces as
a ``TimeoutError`` naming the camera (and the last capture error, if any), never as a silent stale
image or a hung loop.

Frame geometry: ``width``/``height`` in a config describe the frames *as returned*, after rotation,
so a robot's ``observation_features`` can be read straight off its camera configs. A device that
delivers another size is an error naming the camera, the expected and the found size; frames are
never silently resized, because a resized image would quietly disagree with the recorded dataset's
declared shape and with what the camera actually sees.
"""

from __future__ import annotations

import abc
import enum
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from lerobot.utils.errors import DeviceAlreadyConnectedError, DeviceNotConnectedError
from lerobot.utils.registry import Registry

logger = logging.getLogger(__name__)

COLOR = "color"
"""Key of the colour image in a capture; multi-stream cameras add others (RealSense: ``"depth"``)."""

_ERROR_BACKOFF_S = 0.05  # pause after a failed grab so a dead device does not spin a core
_JOIN_TIMEOUT_S = 2.0  # a healthy grab returns within a frame period; longer means a stuck driver


class ColorMode(str, enum.Enum):
    """Channel order of returned colour frames."""

    RGB = "rgb"
    BGR = "bgr"


class Cv2Rotation(int, enum.Enum):
    """Clockwise rotation applied to every frame (``-90`` is 270 degrees, i.e. 90 counter-clockwise)."""

    NO_ROTATION = 0
    ROTATE_90 = 90
    ROTATE_180 = 180
    ROTATE_270 = -90


# Quarter turns for np.rot90, which turns counter-clockwise for positive k.
_ROT90_K = {
    Cv2Rotation.NO_ROTATION: 0,
    Cv2Rotation.ROTATE_90: -1,
    Cv2Rotation.ROTATE_180: 2,
    Cv2Rotation.ROTATE_270: 1,
}


def _enum_field(enum_cls: type[enum.Enum], value: Any, owner: str, name: str) -> Any:
    """Accept the enum, its value or (from a CLI) its value's string; one clear error otherwise."""
    try:
        return enum_cls(int(value) if issubclass(enum_cls, int) and isinstance(value, str) else value)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in enum_cls)
        raise ValueError(f"{owner}.{name} must be one of {allowed}, got {value!r}.") from None


@dataclass(kw_only=True)
class CameraConfig:
    """Settings every camera has; subclasses are registered under a ``type`` name (``"opencv"``).

    ``fps``, ``width`` and ``height`` may be left ``None`` to take whatever the device delivers
    (filled in on ``connect()``); robots that record require them set so a dataset's shapes are
    known before the first frame. ``width``/``height`` are the size after ``rotation``.
    ``warmup_s`` is how long ``connect()`` lets the camera run before returning, so auto-exposure
    and white balance have settled by the first frame a policy sees.
    """

    fps: int | None = None
    """Frames per second asked of the device (None: whatever it delivers)."""
    width: int | None = None
    """Frame width in pixels after ``rotation`` (None: the device's)."""
    height: int | None = None
    """Frame height in pixels after ``rotation`` (None: the device's)."""
    color_mode: ColorMode = ColorMode.RGB
    """Channel order of the frames returned: ``rgb`` (what policies and datasets use) or ``bgr``."""
    rotation: Cv2Rotation = Cv2Rotation.NO_ROTATION
    """Rotate frames by 0, 90, 180 or -90 degrees (a camera mounted sideways)."""
    warmup_s: float = 1.0
    """Seconds ``connect()`` lets the camera run, so exposure has settled by the first frame."""

    type: ClassVar[str] = ""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for name in ("fps", "width", "height"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ValueError(f"{owner}.{name} must be a positive int or None, got {value!r}.")
        if (self.width is None) != (self.height is None):
            raise ValueError(
                f"{owner} needs width and height both set or both None, got width={self.width}, "
                f"height={self.height}."
            )
        if self.warmup_s < 0:
            raise ValueError(f"{owner}.warmup_s must be >= 0, got {self.warmup_s}.")
        self.color_mode = _enum_field(ColorMode, self.color_mode, owner, "color_mode")
        self.rotation = _enum_field(Cv2Rotation, self.rotation, owner, "rotation")


CAMERA_CONFIGS: Registry[type[CameraConfig]] = Registry("camera")
CameraConfig.choices = CAMERA_CONFIGS  # lets the CLI parser resolve --robot.cameras.<name>.type
CAMERAS: Registry[type[Camera]] = Registry("camera")


def register_camera_config(name: str):
    """Class decorator: ``@register_camera_config("opencv")`` makes ``config.type == "opencv"``.

    Registering a second class under a taken name raises, so two plugins cannot silently shadow
    each other.
    """
    return CAMERA_CONFIGS.register(name)


def orient_frame(
    frame: np.ndarray,
    rotation: Cv2Rotation,
    source_mode: ColorMode | None = None,
    target_mode: ColorMode | None = None,
) -> np.ndarray:
    """Reorder colour channels (when ``source_mode != target_mode``) and rotate, as one C-contiguous array.

    Every camera's frames (and RealSense depth maps, with no colour modes) pass through here, so a
    rotation means the same thing on every device. Done with numpy views and a single final copy,
    which keeps the simulated camera free of an OpenCV dependency.
    """
    if source_mode is not None and target_mode is not None and source_mode != target_mode:
        frame = frame[..., ::-1]
    k = _ROT90_K[Cv2Rotation(rotation)]
    if k:
        frame = np.rot90(frame, k=k)
    return np.ascontiguousarray(frame)


def source_size(width: int, height: int, rotation: Cv2Rotation) -> tuple[int, int]:
    """The ``(width, height)`` a device must deliver so that, after ``rotation``, frames are ``width x height``."""
    return (height, width) if rotation in (Cv2Rotation.ROTATE_90, Cv2Rotation.ROTATE_270) else (width, height)


class Camera(abc.ABC):
    """A colour camera, real or simulated.

    Returned frames are ``(height, width, 3)`` uint8 arrays in ``config.color_mode`` (RGB by
    default). ``fps``, ``width`` and ``height`` hold the configured values, or after ``connect()``
    the values the device actually runs at when the config left them ``None``.
    """

    config_class: ClassVar[type[CameraConfig]]

    def __init__(self, config: CameraConfig, label: str):
        self.config = config
        self.label = label
        self.fps: int | None = config.fps
        self.width: int | None = config.width
        self.height: int | None = config.height
        self.color_mode = config.color_mode
        self.rotation = config.rotation
        self.warmup_s = config.warmup_s

    def __str__(self) -> str:
        return f"{type(self).__name__}({self.label})"

    @property
    @abc.abstractmethod
    def is_connected(self) -> bool: ...

    @staticmethod
    @abc.abstractmethod
    def find_cameras() -> list[dict[str, Any]]:
        """Cameras of this kind this machine can open, as dicts with at least ``type``, ``id``, ``name``."""

    @abc.abstractmethod
    def connect(self, warmup: bool = True) -> None: ...

    @abc.abstractmethod
    def read(self) -> np.ndarray:
        """Block until a new frame arrives and return it."""

    @abc.abstractmethod
    def async_read(self, timeout_ms: float = 200) -> np.ndarray:
        """The newest frame not yet returned; ``TimeoutError`` if none arrives within ``timeout_ms``."""

    @abc.abstractmethod
    def read_latest(self, max_age_ms: float = 500) -> np.ndarray:
        """The newest frame without waiting; ``TimeoutError`` if it is older than ``max_age_ms``."""

    @abc.abstractmethod
    def disconnect(self) -> None: ...

    def __enter__(self) -> Camera:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.is_connected:
            self.disconnect()


@dataclass(frozen=True)
class _Capture:
    """One published capture: frames by stream name, when it was taken, and its sequence number."""

    frames: dict[str, np.ndarray]
    timestamp: float  # time.perf_counter()
    seq: int


class ThreadedCamera(Camera):
    """A camera whose frames come from a background capture thread (see the module docstring).

    Subclasses provide four hooks and inherit connect/read/async_read/read_latest/disconnect:

    - ``_open()``: open the device, apply and verify settings; may fill ``fps``/``width``/``height``
      and set ``_pace_fps`` for sources that do not block by themselves (video files, renderers);
    - ``_grab()``: block until the next raw frame, ``(H, W, 3)`` uint8 in ``source_color_mode``,
      before rotation, in a buffer nobody else will write to;
    - ``_grab_extra()``: extra streams from the same capture as the last ``_grab()`` (depth);
    - ``_close()``: release the device.

    Each published frame is a fresh array the camera never touches again, so callers may keep it;
    ``read_latest`` can hand the same frame to several readers, so copy before modifying in place.
    """

    source_color_mode: ClassVar[ColorMode] = ColorMode.RGB

    def __init__(self, config: CameraConfig, label: str):
        super().__init__(config, label)
        self._pace_fps: float | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._latest: _Capture | None = None
        self._consumed_seq = 0
        self._last_error: Exception | None = None

    # ------------------------------------------------------------------ hooks

    @abc.abstractmethod
    def _open(self) -> None: ...

    @abc.abstractmethod
    def _grab(self) -> np.ndarray: ...

    def _grab_extra(self) -> dict[str, np.ndarray]:
        return {}

    @abc.abstractmethod
    def _close(self) -> None: ...

    # ------------------------------------------------------------------ lifecycle

    @property
    def is_connected(self) -> bool:
        return self._thread is not None

    def connect(self, warmup: bool = True) -> None:
        """Open the device, capture one frame synchronously, then start the capture thread.

        The first capture happens here rather than on the thread so a wrong resolution or a device
        that opens but delivers nothing fails ``connect()`` itself, with the real error.
        """
        if self.is_connected:
            raise DeviceAlreadyConnectedError(f"{self} is already connected.")
        self._open()
        try:
            self._publish(self._capture())
        except BaseException:
            self._close()
            raise
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"{self} capture", daemon=True)
        self._thread.start()
        if warmup and self.warmup_s > 0:
            time.sleep(self.warmup_s)
        logger.info("%s connected: %sx%s @ %s fps", self, self.width, self.height, self.fps)

    def disconnect(self) -> None:
        """Stop the capture thread, then release the device (in that order: never close under a grab)."""
        thread = self._require_connected()
        self._stop.set()
        thread.join(timeout=_JOIN_TIMEOUT_S)
        if thread.is_alive():
            logger.warning("%s: capture thread still blocked in a grab; releasing the device anyway.", self)
        self._thread = None
        self._close()
        with self._cond:
            self._latest, self._consumed_seq, self._last_error = None, 0, None
        logger.info("%s disconnected.", self)

    # ------------------------------------------------------------------ reading

    def read(self, timeout_ms: float | None = None) -> np.ndarray:
        """Block until a frame published after this call arrives.

        ``timeout_ms`` defaults to one second plus two frame periods, generous enough for a camera
        that is merely slow and short enough that a dead one does not hang a script.
        """
        if timeout_ms is None:
            timeout_ms = 1000 + (2000 / self.fps if self.fps else 0)
        return self._next_capture(self._latest_seq(), timeout_ms, consume=True).frames[COLOR]

    def async_read(self, timeout_ms: float = 200) -> np.ndarray:
        capture = self._next_capture(self._consumed_seq, timeout_ms, consume=True)
        return capture.frames[COLOR]

    def read_latest(self, max_age_ms: float = 500) -> np.ndarray:
        return self._latest_capture(max_age_ms).frames[COLOR]

    def _latest_seq(self) -> int:
        with self._cond:
            return self._latest.seq if self._latest else 0

    def _next_capture(self, after_seq: int, timeout_ms: float, consume: bool) -> _Capture:
        """Wait for a capture newer than ``after_seq``; the lock is released while waiting."""
        self._require_connected()
        with self._cond:
            fresh = self._cond.wait_for(
                lambda: self._latest is not None and self._latest.seq > after_seq, timeout=timeout_ms / 1000
            )
            if not fresh:
                raise self._stalled(f"no new frame within {timeout_ms:g} ms") from self._last_error
            capture = self._latest
            if consume:
                self._consumed_seq = max(self._consumed_seq, capture.seq)
            return capture

    def _latest_capture(self, max_age_ms: float) -> _Capture:
        self._require_connected()
        with self._cond:
            capture = self._latest
        age_ms = (time.perf_counter() - capture.timestamp) * 1000
        if age_ms > max_age_ms:
            raise self._stalled(f"latest frame is older than max_age_ms={max_age_ms:g}") from self._last_error
        return capture

    def _stalled(self, what: str) -> TimeoutError:
        """A ``TimeoutError`` naming the camera, how stale it is, and why, if a grab failed."""
        details = []
        if self._latest is not None:
            details.append(f"last frame {(time.perf_counter() - self._latest.timestamp) * 1000:.0f} ms ago")
        if self._last_error is not None:
            details.append(f"last capture error: {type(self._last_error).__name__}: {self._last_error}")
        suffix = f" ({'; '.join(details)})" if details else ""
        return TimeoutError(f"{self}: {what}{suffix}.")

    def _require_connected(self) -> threading.Thread:
        if self._thread is None:
            raise DeviceNotConnectedError(f"{self} is not connected; call connect() first.")
        return self._thread

    # ------------------------------------------------------------------ capture thread

    def _capture(self) -> dict[str, np.ndarray]:
        """Grab, convert and check one frame (plus extra streams from the same capture)."""
        color = orient_frame(self._grab(), self.rotation, self.source_color_mode, self.color_mode)
        height, width = color.shape[:2]
        if self.width is None:
            self.width, self.height = width, height
        elif (width, height) != (self.width, self.height):
            rotated = (
                "" if self.rotation == Cv2Rotation.NO_ROTATION else f" after rotation={self.rotation.value}"
            )
            raise RuntimeError(
                f"{self} delivers {width}x{height} frames{rotated} but its config expects "
                f"{self.width}x{self.height} (width x height). Set width={width}, height={height} "
                "in the camera config, or choose a mode the device supports."
            )
        return {COLOR: color, **self._grab_extra()}

    def _publish(self, frames: dict[str, np.ndarray]) -> None:
        with self._cond:
            seq = self._latest.seq + 1 if self._latest else 1
            self._latest = _Capture(frames, time.perf_counter(), seq)
            self._last_error = None
            self._cond.notify_all()

    def _run(self) -> None:
        """Capture until told to stop; failures are recorded (for the readers' errors) and retried."""
        period = 1 / self._pace_fps if self._pace_fps else 0.0
        next_due = time.perf_counter()
        while not self._stop.is_set():
            if period:
                # Sources that never block (files, renderers) are held to their frame rate; after a
                # hiccup the schedule restarts from now instead of bursting to catch up.
                next_due = max(next_due + period, time.perf_counter())
                if self._stop.wait(max(0.0, next_due - time.perf_counter())):
                    break
            try:
                frames = self._capture()
            except Exception as exc:  # any driver error: report it to the readers and retry
                if str(exc) != str(self._last_error):
                    logger.warning("%s: capture failed: %s", self, exc)
                self._last_error = exc
                self._stop.wait(_ERROR_BACKOFF_S)
                continue
            self._publish(frames)
