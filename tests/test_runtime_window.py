"""Where live frames are shown: the window (no display, camera released when it cannot open) and the
virtual camera (pyvirtualcam stand-in: sizes, letterbox, missing package or device)."""
from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

from stylecam import live, runner, sinks
from stylecam.config import RunConfig
from stylecam.errors import UserError
from stylecam.pipeline import Stylizer
from stylecam.sources import CameraSource
from tests.fakes.cameras import FakeCapture
from tests.fakes.engine import engine, interrupt_at_call
from tests.fakes.modules import fake_pyvirtualcam


def test_window_without_display_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    with pytest.raises(UserError, match="no display.*--no-window"):
        sinks.Window()


def test_the_camera_is_released_when_the_window_cannot_open(monkeypatch, weights):
    capture = FakeCapture(frames=100)

    def no_window():
        raise UserError("cannot open a window: no display (DISPLAY is not set)")

    monkeypatch.setattr(runner, "Window", no_window)
    with pytest.raises(UserError, match="cannot open a window"):
        runner.run(RunConfig(engine=engine(weights), sources=("0",), progress=False), camera_opener=lambda i: capture)
    assert not capture.opened                        # released


def test_virtual_camera_opens_at_the_first_frame_size_and_letterboxes_later_ones(monkeypatch):
    sent, opened = fake_pyvirtualcam(monkeypatch)
    virtual = sinks.VirtualCamera(fps=25.0)
    virtual.send(np.full((48, 64, 3), 200, np.uint8))
    virtual.send(np.full((48, 128, 3), 100, np.uint8))          # e.g. original | stylized side by side
    virtual.close()
    (camera,) = opened
    assert (camera.width, camera.height, camera.fps, camera.fmt, camera.closed) == (64, 48, 25.0, "bgr", True)
    assert [f.shape for f in sent] == [(48, 64, 3), (48, 64, 3)] and virtual.frames == 2
    assert sent[1][0, 0, 0] == 0 and sent[1][24, 32, 0] == 100     # bars above and below, the frame between


def test_virtual_camera_rounds_odd_sizes_up_to_even(monkeypatch):
    sent, opened = fake_pyvirtualcam(monkeypatch)
    virtual = sinks.VirtualCamera()
    odd = np.arange(47 * 63 * 3, dtype=np.uint32).reshape(47, 63, 3).astype(np.uint8)
    virtual.send(odd)
    virtual.send(np.zeros((48, 64, 3), np.uint8))
    assert (opened[0].width, opened[0].height) == (64, 48)
    assert np.array_equal(sent[0][:47, :63], odd) and np.array_equal(sent[0][47, :63], odd[46])  # last row repeated
    assert not sent[1].any()                                                                     # no letterbox


def test_virtual_camera_without_the_package_or_a_device_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)
    with pytest.raises(UserError, match="needs the pyvirtualcam package") as err:
        sinks.VirtualCamera()
    assert "pip install pyvirtualcam" in err.value.hint
    fake_pyvirtualcam(monkeypatch, fail="No v4l2 loopback device found at /dev/video[0-99]")
    virtual = sinks.VirtualCamera()
    with pytest.raises(UserError, match="cannot start the virtual camera: No v4l2 loopback device") as err:
        virtual.send(np.zeros((48, 64, 3), np.uint8))
    assert "modprobe v4l2loopback" in err.value.hint


def test_a_missing_pyvirtualcam_is_said_before_the_camera_opens(monkeypatch, weights):
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)

    def opener(index):
        raise AssertionError("the camera was opened")

    config = RunConfig(engine=engine(weights), sources=("0",), window=False, virtual_camera=True, progress=False)
    with pytest.raises(UserError, match="needs the pyvirtualcam package"):
        runner.run(config, camera_opener=opener)


def test_camera_to_a_virtual_camera_without_a_window_or_a_file(monkeypatch, weights):
    sent, opened = fake_pyvirtualcam(monkeypatch)
    config = RunConfig(engine=engine(weights), sources=("0",), window=False, progress=False, max_frames=4,
                       virtual_camera=True, virtual_camera_device="/dev/video3")
    code, summary = runner.run(config, camera_opener=lambda i: FakeCapture(frames=20, delay=0.01))
    assert code == 0 and summary["frames"] == 4 and summary["virtual_camera"] == "/dev/video3"
    assert opened[0].closed and opened[0].fps == 10.0                 # the camera's rate
    assert len(sent) == 4 and all(f.shape == (24, 32, 3) for f in sent)
    grey = [int(f[0, 0, 0]) for f in sent]                             # FakeCapture grey 10 n, wave +10: no HUD
    assert all(g % 10 == 0 for g in grey) and grey == sorted(grey)


def test_run_live_closes_the_virtual_camera_when_stylizing_fails(monkeypatch, weights):
    sent, opened = fake_pyvirtualcam(monkeypatch)
    interrupt_at_call(monkeypatch, 3, ValueError("broken model"))
    camera = CameraSource(0, opener=lambda i: FakeCapture(frames=100), retry_seconds=0.5)
    with pytest.raises(ValueError, match="broken model"):
        live.run_live(camera, Stylizer(["wave"], weights_dir=weights, device="cpu"),
                      live.initial_state(["wave"], ["wave"]), None, None, virtual_camera=sinks.VirtualCamera())
    assert len(sent) == 2 and opened[0].closed


def test_virtual_camera_is_for_the_camera_only(weights, tmp_path):
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(UserError, match="--virtual-camera sends the live camera"):
        runner.run(RunConfig(engine=engine(weights), sources=(str(photo),), virtual_camera=True, progress=False))
