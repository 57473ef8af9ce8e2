"""``lerobot-info``: print the environment facts a bug report needs, ready to paste into an issue.

Most "video won't decode" or "CUDA not used" reports come down to a version mismatch between torch,
torchvision, torchcodec and the FFmpeg libraries, so those are reported in detail. The script must
still run when one of them is missing or broken -- that is exactly when people run it -- so every
optional import happens lazily inside its own try/except and turns into a one-line explanation.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import platform
import shutil
import subprocess
from collections.abc import Callable
from types import ModuleType

from lerobot.configs.parser import HelpFormatter
from lerobot.utils.cli import console_main

NOT_INSTALLED = "not installed"
_MAX_REASON_CHARS = 200


def _one_line(exc: BaseException) -> str:
    """Squash an exception into one line: multi-line loader errors would break the pasted block."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    reason = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return reason if len(reason) <= _MAX_REASON_CHARS else reason[: _MAX_REASON_CHARS - 3] + "..."


class _Missing(Exception):
    """The package is absent, as opposed to installed but failing to import."""


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        # Only the package itself being absent means "not installed"; a missing transitive
        # dependency of an installed package is a broken install and deserves its own message.
        if exc.name is None or exc.name == name or name.startswith(exc.name + "."):
            raise _Missing(name) from exc
        raise


def _dist_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _package_version(module_name: str, dist: str | None = None) -> tuple[ModuleType | None, str]:
    """Import a package and describe its version, or why it could not be imported.

    Returns the module (None on failure) so callers can probe further without importing twice.
    """
    try:
        module = _import(module_name)
    except _Missing:
        return None, NOT_INSTALLED
    except Exception as exc:
        installed = _dist_version(dist or module_name) or "unknown version"
        return None, f"{installed} (import failed: {_one_line(exc)})"
    version = getattr(module, "__version__", None) or _dist_version(dist or module_name) or "unknown"
    return module, str(version)


def _torch_info() -> tuple[str, str, str]:
    """Torch version, CUDA and MPS together: the device lines only make sense for the torch imported."""
    torch, version = _package_version("torch")
    if torch is None:
        return version, "unknown (no torch)", "unknown (no torch)"
    cuda_available = torch.cuda.is_available()
    cuda = f"{cuda_available} (devices: {torch.cuda.device_count() if cuda_available else 0}"
    cuda += f", built for CUDA {torch.version.cuda})" if torch.version.cuda else ", CPU-only build)"
    mps_backend = getattr(torch.backends, "mps", None)
    mps = str(mps_backend.is_available()) if mps_backend is not None else "False (not in this build)"
    return version, cuda, mps


def _pyav_version() -> str:
    av, version = _package_version("av")
    if av is None:
        return version
    libs = getattr(av, "library_versions", {})
    bundled = ", ".join(
        f"{lib} {'.'.join(map(str, libs[lib]))}" for lib in ("libavcodec", "libavformat") if lib in libs
    )
    ffmpeg = getattr(av, "ffmpeg_version_info", None)
    details = "; ".join(part for part in (f"FFmpeg {ffmpeg}" if ffmpeg else "", bundled) if part)
    return f"{version} (FFmpeg libs bundled: {details})" if details else version


def _torchcodec_version() -> str:
    """Report whether torchcodec can really decode, not just import.

    Recent torchcodec imports fine without FFmpeg and only fails on first decode, so the probe asks
    it for the FFmpeg libraries it linked against, which forces the native libraries to load.
    """
    torchcodec, version = _package_version("torchcodec")
    if torchcodec is None:
        return version
    try:
        importlib.import_module("torchcodec.decoders")
        ffmpeg = importlib.import_module("torchcodec._core").get_ffmpeg_library_versions()
    except Exception as exc:
        return f"{version} (loads: no: {_one_line(exc)})"
    linked = ffmpeg.get("ffmpeg_version") if isinstance(ffmpeg, dict) else None
    return f"{version} (loads: yes, FFmpeg {linked})" if linked else f"{version} (loads: yes)"


def _system_ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        return "not found"
    try:
        result = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unknown version ({path}; `ffmpeg -version` failed: {_one_line(exc)})"
    # First line looks like "ffmpeg version 5.1.6-0+deb12u1 Copyright (c) ...".
    words = result.stdout.split()
    version = words[2] if len(words) > 2 and words[:2] == ["ffmpeg", "version"] else "unknown version"
    return f"{version} ({path})"


def _video_backend() -> str:
    try:
        video = _import("lerobot.datasets.video")
        return str(video.get_safe_default_video_backend())
    except _Missing:
        return "unknown (lerobot.datasets.video is not available)"
    except Exception as exc:
        return f"unknown ({_one_line(exc)})"


def _one(probe: Callable[[], str]) -> Callable[[], tuple[str, ...]]:
    return lambda: (probe(),)


def _version_of(module_name: str, dist: str | None = None) -> Callable[[], tuple[str, ...]]:
    return lambda: (_package_version(module_name, dist)[1],)


# Each probe fills one or more consecutive lines, in the order they are printed.
_PROBES: list[tuple[tuple[str, ...], Callable[[], tuple[str, ...]]]] = [
    (("lerobot version",), _version_of("lerobot")),
    (("Platform",), _one(platform.platform)),
    (("Python version",), _one(platform.python_version)),
    (("Torch version", "CUDA available", "MPS available"), _torch_info),
    (("Torchvision version",), _version_of("torchvision")),
    (("PyAV version",), _one(_pyav_version)),
    (("Torchcodec version",), _one(_torchcodec_version)),
    (("System FFmpeg",), _one(_system_ffmpeg)),
    (("NumPy version",), _version_of("numpy")),
    (("PyArrow version",), _version_of("pyarrow")),
    (("huggingface_hub version",), _version_of("huggingface_hub", "huggingface-hub")),
    (("Pandas version",), _version_of("pandas")),
    (("Video decoding backend that will be used",), _one(_video_backend)),
]


def get_info() -> dict[str, str]:
    """Collect the report as ``{label: value}``; never raises, so a broken package cannot hide the rest."""
    info: dict[str, str] = {}
    for labels, probe in _PROBES:
        try:
            values = probe()
        except Exception as exc:
            values = (f"error while checking: {_one_line(exc)}",) * len(labels)
        info.update(zip(labels, values))
    return info


def format_info(info: dict[str, str]) -> str:
    """Markdown-style bullet list: renders cleanly in a GitHub issue and still reads as plain text."""
    return "\n".join(f"- {label}: {value}" for label, value in info.items())


@console_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lerobot-info",
        formatter_class=HelpFormatter,
        description="Print lerobot's environment (versions, devices, video backends) for bug reports.",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    args = parser.parse_args(argv)
    info = get_info()
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
