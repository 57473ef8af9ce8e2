from __future__ import annotations

import importlib
import importlib.metadata
import json
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest

import lerobot
from lerobot.scripts import info

EXPECTED_LABELS = [
    "lerobot version",
    "Platform",
    "Python version",
    "Torch version",
    "CUDA available",
    "MPS available",
    "Torchvision version",
    "PyAV version",
    "Torchcodec version",
    "System FFmpeg",
    "NumPy version",
    "PyArrow version",
    "huggingface_hub version",
    "Pandas version",
    "Video decoding backend that will be used",
]


def _patch_import(monkeypatch: pytest.MonkeyPatch, overrides: dict[str, Callable[[], object]]) -> None:
    """Make ``importlib.import_module`` misbehave for chosen names only."""
    real_import = importlib.import_module

    def fake_import(name: str, package: str | None = None) -> object:
        if name in overrides:
            return overrides[name]()
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", fake_import)


def _missing(name: str) -> Callable[[], object]:
    def raise_missing() -> object:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    return raise_missing


def test_main_prints_every_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert info.main([]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == [f"- {label}" for label in EXPECTED_LABELS]
    assert f"- lerobot version: {lerobot.__version__}" in lines
    assert f"- Python version: {sys.version.split()[0]}" in lines


def test_main_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert info.main(["--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == EXPECTED_LABELS
    assert all(isinstance(value, str) and "\n" not in value for value in data.values())


def test_installed_versions_are_reported() -> None:
    import numpy
    import torch

    report = info.get_info()
    assert report["NumPy version"] == numpy.__version__
    assert report["Torch version"] == torch.__version__
    assert report["CUDA available"].startswith(str(torch.cuda.is_available()))
    assert report["PyAV version"].startswith(importlib.import_module("av").__version__)


def test_format_info() -> None:
    assert info.format_info({"A": "1", "B c": "two"}) == "- A: 1\n- B c: two"


def test_missing_packages_say_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    _patch_import(monkeypatch, {name: _missing(name) for name in ("pandas", "torchcodec", "av", "torch")})
    report = info.get_info()
    for label in ("Pandas version", "Torchcodec version", "PyAV version", "Torch version"):
        assert report[label] == "not installed"
    assert report["CUDA available"].startswith("unknown")
    assert report["NumPy version"] != "not installed"


def test_missing_dependency_of_installed_package_is_not_not_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # pyarrow present but one of its own imports absent: that is a broken install, not a missing one.
    _patch_import(monkeypatch, {"pyarrow": _missing("some_dependency")})
    assert info.get_info()["PyArrow version"].startswith(
        f"{importlib.metadata.version('pyarrow')} (import failed: ModuleNotFoundError"
    )


def test_broken_package_reports_one_line_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> object:
        raise RuntimeError("boom: symbol not found\nlong traceback-like detail\nmore")

    _patch_import(monkeypatch, {"pandas": broken})
    line = info.get_info()["Pandas version"]
    assert (
        line
        == f"{importlib.metadata.version('pandas')} (import failed: RuntimeError: boom: symbol not found)"
    )


def test_long_reasons_are_truncated(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> object:
        raise ImportError("x" * 1000)

    _patch_import(monkeypatch, {"pandas": broken})
    assert len(info.get_info()["Pandas version"]) < 300


def test_torchcodec_that_imports_but_cannot_load(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail() -> object:
        raise RuntimeError("Could not load libtorchcodec. Likely causes:\n1. FFmpeg is not installed")

    fake_core = types.SimpleNamespace(get_ffmpeg_library_versions=fail)
    fake_torchcodec = types.SimpleNamespace(__version__="9.9.9")
    _patch_import(
        monkeypatch,
        {
            "torchcodec": lambda: fake_torchcodec,
            "torchcodec.decoders": lambda: types.SimpleNamespace(),
            "torchcodec._core": lambda: fake_core,
        },
    )
    assert info.get_info()["Torchcodec version"] == (
        "9.9.9 (loads: no: RuntimeError: Could not load libtorchcodec. Likely causes:)"
    )


def test_system_ffmpeg_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(info.shutil, "which", lambda _name: None)
    assert info.get_info()["System FFmpeg"] == "not found"


def test_failing_probe_does_not_hide_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(_name: str) -> str:
        raise RuntimeError("unexpected")

    monkeypatch.setattr(info.shutil, "which", explode)
    report = info.get_info()
    assert report["System FFmpeg"] == "error while checking: RuntimeError: unexpected"
    assert list(report) == EXPECTED_LABELS


def _backend_raises() -> str:
    raise RuntimeError("no decoder")


@pytest.mark.parametrize(
    ("backend", "expected"),
    [(lambda: "pyav", "pyav"), (_backend_raises, "unknown (RuntimeError: no decoder)")],
)
def test_video_backend_line(
    monkeypatch: pytest.MonkeyPatch, backend: Callable[[], str], expected: str
) -> None:
    fake_video = types.ModuleType("lerobot.datasets.video")
    fake_video.get_safe_default_video_backend = backend  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "lerobot.datasets.video", fake_video)
    assert info.get_info()["Video decoding backend that will be used"] == expected


def test_video_backend_module_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    _patch_import(monkeypatch, {"lerobot.datasets.video": _missing("lerobot.datasets.video")})
    assert info.get_info()["Video decoding backend that will be used"].startswith("unknown")


def test_console_script() -> None:
    script = Path(sys.executable).with_name("lerobot-info")
    if not script.exists():
        pytest.skip("lerobot-info console script is not installed in this environment")
    result = subprocess.run([str(script), "--json"], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(result.stdout)["lerobot version"] == lerobot.__version__
