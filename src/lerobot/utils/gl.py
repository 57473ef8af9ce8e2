"""What every MuJoCo renderer (sim envs, simulated twins) must do before it makes its OpenGL context."""

from __future__ import annotations

import contextlib
from functools import cache


@cache
def preload_video_decoder() -> None:
    """Load torchcodec before the first GL context: importing it after Mesa's EGL driver is loaded
    segfaults (measured with torchcodec + Mesa llvmpipe), and reading a recorded dataset imports it
    (``record_expert`` with cameras crashed in ``finalize`` before this ran first)."""
    with contextlib.suppress(ImportError):
        import torchcodec.decoders  # noqa: F401
