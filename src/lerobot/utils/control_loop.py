"""A fixed-rate loop that says when it is late, and keyboard events for recording sessions."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from lerobot.utils.keyboard_input import start_key_listener

logger = logging.getLogger(__name__)


@dataclass
class RateLoop:
    """Paces a loop at ``fps`` against absolute deadlines, so one slow cycle does not shift the rest.

    Call ``wait()`` at the end of each cycle. A cycle that overruns its period is logged (at most
    once per second, with a count) and the schedule restarts from now instead of bursting to catch up.
    """

    fps: float
    cycle_times: list[float] = field(default_factory=list)
    overruns: int = 0

    def __post_init__(self) -> None:
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}.")
        self.period = 1.0 / self.fps
        self._start = self._deadline = time.perf_counter()
        self._deadline += self.period
        self._last_log = 0.0
        self._unlogged = 0

    def wait(self) -> None:
        now = time.perf_counter()
        self.cycle_times.append(now - self._start)
        if now > self._deadline:
            self.overruns += 1
            self._unlogged += 1
            if now - self._last_log > 1.0:
                logger.warning(
                    "Control loop overran its %.1f ms period (%d late cycle(s) since the last warning; this one took %.1f ms).",
                    1e3 * self.period,
                    self._unlogged,
                    1e3 * (now - self._start),
                )
                self._last_log, self._unlogged = now, 0
            self._deadline = now + self.period
        else:
            _precise_sleep(self._deadline - now)
            self._deadline += self.period
        self._start = time.perf_counter()

    def stats(self) -> dict[str, float]:
        """Share of cycles on time and cycle-time mean / p99 (ms): the control_loop benchmark's numbers."""
        t = np.asarray(self.cycle_times) * 1e3
        if not len(t):
            return {"cycles": 0}
        return {
            "cycles": len(t),
            "on_time_share": float(np.mean(t <= 1e3 * self.period)),
            "mean_ms": float(t.mean()),
            "p99_ms": float(np.percentile(t, 99)),
        }


def _precise_sleep(seconds: float) -> None:
    """time.sleep for the bulk, a short spin for the last millisecond (sleep overshoots by ~0.1-1 ms)."""
    end = time.perf_counter() + seconds
    if seconds > 0.002:
        time.sleep(seconds - 0.001)
    while time.perf_counter() < end:
        pass


@dataclass
class KeyboardEvents:
    """Right arrow: end the episode early; left arrow: re-record it; Esc: stop recording.

    Uses pynput when a keyboard is reachable; headless (no display, ``PYNPUT_BACKEND=dummy``) it says
    once that keys are unavailable and the session runs on its timers alone.
    """

    exit_early: bool = False
    rerecord_episode: bool = False
    stop_recording: bool = False

    def __post_init__(self) -> None:
        self._listener = start_key_listener(self.on_key, without="episodes end on their timers, Ctrl-C stops")
        if self._listener is not None:
            logger.info("Keys: right arrow = end episode, left arrow = re-record episode, Esc = stop.")

    def on_key(self, key: object) -> None:
        name = getattr(key, "name", None)
        if name == "right":
            self.exit_early = True
        elif name == "left":
            self.rerecord_episode = self.exit_early = True
        elif name == "esc":
            self.stop_recording = self.exit_early = True

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.stop()
