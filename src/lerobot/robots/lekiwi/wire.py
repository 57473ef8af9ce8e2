"""What travels between ``lerobot-lekiwi-host`` and ``LeKiwiClient``: one JSON message per socket send.

Both ends treat what they receive as untrusted: a message that is not exactly what is described
here raises :class:`WireError` (a ``ValueError``), which the receiver logs before going on.

Observation: ``{"state": {"arm_shoulder_pan.pos": float, ..., "x.vel": float, ...},
"images": {"front": "<base64 JPEG>", ...}}``. Action: ``{"arm_shoulder_pan.pos": float, ...}``.
JPEG because a 640x480 RGB frame is 900 kB raw but ~40 kB compressed, which is what keeps two cameras
at 30 Hz within a Wi-Fi link; single-part JSON because ZeroMQ's ``CONFLATE`` (keep only the newest
message, so a slow reader never works through a backlog of stale frames) does not support multipart.
"""

from __future__ import annotations

import base64
import json
import math
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


class WireError(ValueError):
    """A message that is not a valid LeKiwi action or observation; the receiver logs it and goes on."""


def _load_json(message: bytes, what: str) -> Any:
    try:
        return json.loads(message)
    except (ValueError, RecursionError) as e:  # bad JSON or UTF-8, 5000-digit numbers, [[[[...
        raise WireError(f"{what} is not valid JSON ({str(e)[:120]}).") from None


def _finite_number(key: str, value: Any) -> float:
    try:
        number = float(value) if type(value) in (int, float) else math.nan  # bool is an int: refused too
    except OverflowError:  # a 400-digit integer
        number = math.inf
    if not math.isfinite(number):
        raise WireError(f"'{key[:60]}' must be a finite number, got {str(value)[:60]!r}.")
    return number


def decode_observation(message: bytes, cameras: dict[str, tuple[int, ...]] | None = None) -> dict[str, Any]:
    """One message -> flat observation with ``(H, W, 3)`` uint8 RGB frames.

    With ``cameras`` (name -> expected shape) each frame's size is read from its JPEG header and
    checked before decoding, so a tiny message cannot expand into a huge image.
    """
    payload = _load_json(message, "A LeKiwi observation")
    if not isinstance(payload, dict) or not isinstance(payload.get("state"), dict):
        raise WireError("A LeKiwi observation must be a JSON object with a 'state' object.")
    images = payload.get("images", {})
    if not isinstance(images, dict) or not all(isinstance(v, str) for v in images.values()):
        raise WireError("A LeKiwi observation's 'images' must map camera names to base64 JPEG strings.")
    obs: dict[str, Any] = {str(k): _finite_number(str(k), v) for k, v in payload["state"].items()}
    cv2 = _cv2() if images else None
    for name, text in images.items():
        try:
            jpeg = base64.b64decode(text, validate=True)
        except ValueError:
            raise WireError(f"Camera '{name[:60]}' frame is not valid base64.") from None
        if cameras is not None:
            expected = cameras.get(name)
            size = jpeg_size(jpeg)
            if expected is None:
                raise WireError(f"The LeKiwi host sends an unexpected camera {name[:60]!r}.")
            if size is None or size != tuple(expected[:2]):
                raise WireError(
                    f"Camera '{name}' of the LeKiwi host sends {size} frames (height, width), but the client "
                    f"config says {tuple(expected[:2])}; set the client's width/height to the host's."
                )
        bgr = cv2.imdecode(np.frombuffer(jpeg, dtype=np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise WireError(f"Corrupted JPEG frame for camera '{name}' in a LeKiwi observation.")
        obs[name] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return obs


def jpeg_size(jpeg: bytes) -> tuple[int, int] | None:
    """``(height, width)`` from a JPEG's frame header without decoding it; ``None`` if there is none."""
    if jpeg[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 <= len(jpeg):
        if jpeg[i] != 0xFF:
            return None
        marker = jpeg[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if 0xD0 <= marker <= 0xD9 or marker == 0x01:  # markers without a length
            i += 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            return int.from_bytes(jpeg[i + 5 : i + 7], "big"), int.from_bytes(jpeg[i + 7 : i + 9], "big")
        i += 2 + int.from_bytes(jpeg[i + 2 : i + 4], "big")
    return None


def encode_action(action: dict[str, float]) -> bytes:
    return json.dumps({k: float(v) for k, v in action.items()}).encode()


def decode_action(message: bytes, keys: list[str]) -> dict[str, float]:
    """One message -> ``{key: float}`` with exactly ``keys``, every value a finite number."""
    action = _load_json(message, "A LeKiwi action")
    if not isinstance(action, dict):
        raise WireError(f"A LeKiwi action must be a JSON object of numbers, got {type(action).__name__}.")
    missing, extra = [k for k in keys if k not in action], [k[:60] for k in action if k not in keys]
    if missing or extra:
        raise WireError(f"A LeKiwi action needs exactly {keys}; missing {missing}, unexpected {extra[:5]}.")
    return {k: _finite_number(k, action[k]) for k in keys}
