"""Live view of a control loop in the rerun viewer: cameras as images, joints and actions as plots.

``lerobot-record --display_data=true`` (and ``lerobot-teleoperate``) spawn the viewer; with
``--display_save_path=session.rrd`` the same stream goes to a file instead (``rerun session.rrd``
opens it later), which is also what works on a machine without a screen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class LiveView:
    """One rerun recording; :meth:`log` once per control cycle."""

    def __init__(self, name: str, save_path: str | Path | None = None):
        try:
            import rerun as rr
        except ImportError as e:
            raise ImportError(
                "--display_data needs the rerun SDK: pip install rerun-sdk (or lerobot[tools])."
            ) from e
        self._rr = rr
        self.rec = rr.RecordingStream(f"lerobot/{name}")
        if save_path is not None:
            Path(save_path).parent.mkdir(parents=True, exist_ok=True)
            self.rec.save(str(save_path))
        else:
            self.rec.spawn()
        self.step = 0

    def log(self, observation: dict[str, Any], action: dict[str, Any]) -> None:
        rr = self._rr
        self.rec.set_time("step", sequence=self.step)
        for key, value in observation.items():
            value = np.asarray(value)
            if value.ndim == 3:  # a camera frame, H x W x C
                self.rec.log(f"observation/{key}", rr.Image(value))
            elif value.ndim == 0:
                self.rec.log(f"observation/{key}", rr.Scalars([float(value)]))
        for key, value in action.items():
            self.rec.log(f"action/{key}", rr.Scalars([float(value)]))
        self.step += 1

    def close(self) -> None:
        self.rec.flush()
        self.rec.disconnect()
