"""Key presses from the physical keyboard (pynput), shared by teleoperation, recording keys and the e-stop.

One place decides whether a keyboard can be reached at all: pynput needs an X display on Linux
(``DISPLAY``; Wayland sessions provide one through XWayland), while macOS and Windows always have
one. ``PYNPUT_BACKEND=dummy`` forces the headless path (tests, SSH sessions). Headless, callers
keep working on their other inputs (timers, method calls) and say so once.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


def keyboard_reachable() -> bool:
    if os.environ.get("PYNPUT_BACKEND") == "dummy":
        return False
    return bool(os.environ.get("DISPLAY")) if sys.platform.startswith("linux") else True


def key_name(key: Any) -> str | None:
    """pynput ``KeyCode('q')`` -> ``"q"``, ``Key.up`` -> ``"up"``; a plain string passes through."""
    if isinstance(key, str):
        return key.lower()
    name = getattr(key, "char", None) or getattr(key, "name", None)
    return name.lower() if name else None


def start_key_listener(
    on_press: Callable[[Any], None], on_release: Callable[[Any], None] | None = None, *, without: str
) -> Any | None:
    """A started pynput listener calling ``on_press`` / ``on_release``, or None without a keyboard.

    ``without`` completes the one log line that says what happens instead (e.g. "episodes end on
    their timers"); the listener thread is a daemon, ``stop()`` it on disconnect.
    """
    if not keyboard_reachable():
        logger.info("No keyboard (headless): %s.", without)
        return None
    try:
        from pynput import keyboard

        listener = keyboard.Listener(on_press=on_press, on_release=on_release)
        listener.start()
        return listener
    except Exception as e:  # ImportError, or a backend that cannot start (no X server after all)
        logger.warning("Keyboard unavailable (%s): %s.", e, without)
        return None
