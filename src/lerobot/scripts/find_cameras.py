"""``lerobot-find-cameras``: list the cameras this machine can open and save a test image from each.

Run it before writing a robot config: it tells you which ``index_or_path`` / serial number is which
physical camera (look at the saved PNGs), and at which resolution and frame rate each actually
delivers. Without an argument it looks for OpenCV and RealSense cameras; ``sim`` shows the simulated
test-pattern camera. Finding no camera, or a camera that fails to capture, is reported, not raised.

    lerobot-find-cameras [opencv|realsense|sim] [--output-dir=outputs/captured_images] [--record-time-s=2.0]
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from lerobot.cameras import (
    Camera,
    CameraConfig,
    OpenCVCamera,
    OpenCVCameraConfig,
    RealSenseCamera,
    RealSenseCameraConfig,
    SimCamera,
    SimCameraConfig,
    make_camera,
)
from lerobot.configs.parser import HelpFormatter
from lerobot.utils.cli import console_main

# Kind on the command line -> (camera class that lists them, config for one listed camera).
KINDS: dict[str, tuple[type[Camera], Callable[[dict[str, Any]], CameraConfig]]] = {
    "opencv": (OpenCVCamera, lambda found: OpenCVCameraConfig(found["id"], warmup_s=0)),
    "realsense": (RealSenseCamera, lambda found: RealSenseCameraConfig(found["id"], warmup_s=0)),
    "sim": (SimCamera, lambda found: SimCameraConfig()),
}
DEFAULT_KINDS = ("opencv", "realsense")  # real hardware; the sim camera would always be "found"


def find_all(kinds: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """``(kind, info)`` for every camera found; a kind whose library is missing is skipped with a note."""
    found = []
    for kind in kinds:
        camera_cls, _ = KINDS[kind]
        try:
            found += [(kind, info) for info in camera_cls.find_cameras()]
        except ImportError as exc:
            print(f"Skipping {kind} cameras: {exc}")
    return found


def capture(kind: str, info: dict[str, Any], output_dir: Path, record_time_s: float) -> dict[str, Any]:
    """Stream from one camera for ``record_time_s``, save its last frame as PNG, measure its real fps."""
    row = {"type": kind, "id": str(info["id"]), "name": info.get("name", "")}
    camera = make_camera(KINDS[kind][1](info))
    try:
        camera.connect(warmup=False)
        try:
            frame = camera.read()
            frames, start = 0, time.perf_counter()
            while time.perf_counter() - start < record_time_s:
                frame = camera.async_read(timeout_ms=1000)
                frames += 1
            elapsed = time.perf_counter() - start
        finally:
            camera.disconnect()
    except Exception as exc:  # a broken camera is a row in the report, not the end of the scan
        return {**row, "result": f"failed: {type(exc).__name__}: {exc}"}
    path = output_dir / f"{kind}_{re.sub(r'[^A-Za-z0-9]+', '_', row['id']).strip('_')}.png"
    Image.fromarray(frame).save(path)
    fps = f"{frames / elapsed:.1f} fps" if frames and elapsed > 0 else f"{camera.fps} fps (configured)"
    return {**row, "result": f"{frame.shape[1]}x{frame.shape[0]} @ {fps} -> {path}"}


def print_table(rows: list[dict[str, Any]]) -> None:
    columns = ["type", "id", "name", "result"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns))


@console_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lerobot-find-cameras", description=__doc__.splitlines()[0], formatter_class=HelpFormatter
    )
    parser.add_argument(
        "kind", nargs="?", choices=list(KINDS), help="camera kind (default: opencv and realsense)"
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path("outputs/captured_images"),
        help="where one captured frame per camera is saved",
    )
    parser.add_argument(
        "--record-time-s", type=float, default=2.0, help="how long to stream from each camera"
    )
    args = parser.parse_args(argv)

    kinds = [args.kind] if args.kind else list(DEFAULT_KINDS)
    found = find_all(kinds)
    if not found:
        print(
            f"No cameras found ({', '.join(kinds)}). Check cables and permissions (e.g. the 'video' group)."
        )
        return 0
    print(f"Found {len(found)} camera(s); streaming {args.record_time_s:g} s from each...")
    args.output_dir.mkdir(parents=True, exist_ok=True)
    print_table([capture(kind, info, args.output_dir, args.record_time_s) for kind, info in found])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
