"""What travels between ``lerobot-lekiwi-host`` and ``LeKiwiClient``: one JSON message per socket send.

Observation: ``{"state": {"arm_shoulder_pan.pos": float, ..., "x.vel": float, ...},
"images": {"front": "<base64 JPEG>", ...}}``. Action: ``{"arm_shoulder_pan.pos": float, ...}``.
JPEG because a 640x480 RGB frame is 900 kB raw but ~40 kB compressed, which is what keeps two cameras
at 30 Hz within a Wi-Fi link; single-part JSON because ZeroMQ's ``CONFLATE`` (keep only the newest
message, so a slow reader never works through a backlog of stale frames) does not support multipart.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np


def _cv2():
    try:
        import cv2
    except ImportError as e:
        raise ImportError("LeKiwi camera streaming needs OpenCV: pip install opencv-python-headless") from e
    return cv2


def encode_observation(obs: dict[str, Any], camera_names: list[str], jpeg_quality: int = 90) -> bytes:
    """Robot observation (floats + RGB frames) -> one message."""
    cv2 = _cv2()
    images = {}
    for name in camera_names:
        ok, jpeg = cv2.imencode(
            ".jpg", cv2.cvtColor(obs[name], cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
        )
        if not ok:
            raise ValueError(f"Could not JPEG-encode the frame of camera '{name}' (shape {obs[name].shape}).")
        images[name] = base64.b64encode(jpeg.tobytes()).decode("ascii")
    state = {k: float(v) for k, v in obs.items() if k not in images}
    return json.dumps({"state": state, "images": images}).encode()


def decode_observation(message: bytes) -> dict[str, Any]:
    """One message -> flat observation with ``(H, W, 3)`` uint8 RGB frames."""
    cv2 = _cv2()
    payload = json.loads(message)
    obs: dict[str, Any] = dict(payload["state"])
    for name, text in payload["images"].items():
        bgr = cv2.imdecode(np.frombuffer(base64.b64decode(text), dtype=np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"Corrupted JPEG frame for camera '{name}' in a LeKiwi observation.")
        obs[name] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return obs


def encode_action(action: dict[str, float]) -> bytes:
    return json.dumps({k: float(v) for k, v in action.items()}).encode()


def decode_action(message: bytes) -> dict[str, float]:
    action = json.loads(message)
    if not isinstance(action, dict):
        raise ValueError(f"A LeKiwi action must be a JSON object of floats, got {type(action).__name__}.")
    return {str(k): float(v) for k, v in action.items()}
