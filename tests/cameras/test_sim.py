"""SimCamera: frames from a render function (or the test pattern) through the threaded API."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lerobot.cameras import Cv2Rotation, SimCamera, SimCameraConfig


def counting_renderer(height: int = 48, width: int = 64):
    counter = itertools.count(1)
    buffer = np.zeros((height, width, 3), dtype=np.uint8)

    def render() -> np.ndarray:
        buffer[:] = next(counter) % 256  # reuses one buffer, as real renderers may
        return buffer

    return render


def test_render_fn_frames_are_fresh_copies_at_the_render_size():
    with SimCamera(SimCameraConfig(render_fn=counting_renderer(), fps=100)) as cam:
        first = cam.async_read()
        second = cam.async_read()
        assert first.shape == (48, 64, 3) and (cam.width, cam.height, cam.fps) == (64, 48, 100)
        assert int(second[0, 0, 0]) > int(first[0, 0, 0])  # the first frame was not overwritten


def test_rotation_and_configured_size():
    config = SimCameraConfig(
        render_fn=counting_renderer(), width=48, height=64, rotation=Cv2Rotation.ROTATE_90
    )
    with SimCamera(config) as cam:
        assert cam.read().shape == (64, 48, 3)


def test_render_fn_with_wrong_output_fails_connect_clearly():
    cam = SimCamera(SimCameraConfig(render_fn=lambda: np.zeros((8, 8, 3), dtype=np.float32)))
    with pytest.raises(TypeError, match=r"SimCamera\(<lambda>\): render_fn must return an \(H, W, 3\) uint8"):
        cam.connect()
    assert not cam.is_connected


def test_test_pattern_moves():
    with SimCamera(SimCameraConfig(fps=50)) as cam:
        first = cam.read()
        for _ in range(5):
            cam.async_read()
        assert first.shape == (480, 640, 3)
        assert not np.array_equal(first, cam.async_read())


def test_mujoco_renderer_created_on_the_camera_thread():
    """The documented pattern for simulated twins: build the GL renderer inside render_fn."""
    mujoco = pytest.importorskip("mujoco")
    model = mujoco.MjModel.from_xml_string(
        '<mujoco><worldbody><light pos="0 0 3"/><geom type="sphere" size=".2" rgba="1 0 0 1"/>'
        "</worldbody></mujoco>"
    )
    data = mujoco.MjData(model)
    renderer = {}

    def render() -> np.ndarray:
        if "r" not in renderer:
            renderer["r"] = mujoco.Renderer(model, height=48, width=64)
        renderer["r"].update_scene(data)
        return renderer["r"].render()

    cam = SimCamera(SimCameraConfig(render_fn=render, fps=30, width=64, height=48))
    try:
        cam.connect()
    except Exception as exc:  # no OpenGL (EGL/OSMesa) on this machine
        pytest.skip(f"MuJoCo cannot render here: {exc}")
    try:
        frame = cam.async_read(timeout_ms=1000)
        assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
    finally:
        cam.disconnect()
