"""The camera source (stylecam.sources.CameraSource) on fake drivers: newest frame, opening and its
hints, sizes, rates and formats asked of the driver, slow, stalled and failing drivers, odd frame
layouts; and camera runs through runner.run."""
from __future__ import annotations

import sys
import threading
import time

import cv2
import numpy as np
import pytest

from stylecam import runner, sources
from stylecam.config import RunConfig
from stylecam.errors import UserError
from stylecam.sources import CameraSource
from tests.fakes.cameras import (
    BlockedCapture,
    ExplodingCapture,
    FakeCapture,
    ShapedCapture,
    SizedCapture,
    WarmingUpCapture,
)
from tests.fakes.engine import engine
from tests.fakes.media import count_frames, needs_ffmpeg

# ----- CameraSource ---------------------------------------------------------------------------

def test_camera_yields_frames_then_stops_after_retrying():
    camera = CameraSource(0, opener=lambda i: FakeCapture(frames=3), retry_seconds=0.2)
    frames = []
    while (frame := camera.read(timeout=2.0)) is not None:
        frames.append(frame)
    camera.close()
    assert 1 <= len(frames) <= 3  # newest-frame policy: some may be replaced before being read
    assert frames[-1][0, 0, 0] == 30  # the last frame delivered is never lost
    assert "no frame for 0.2 s" in camera.failure


def test_camera_that_cannot_open_names_indices():
    def opener(i):
        return FakeCapture(opened=i in (2, 3))

    with pytest.raises(UserError) as err:
        CameraSource(0, opener=opener)
    assert "cannot open camera 0 (tried index 0)" in str(err.value)
    assert "cameras that open here: 2, 3" in str(err.value)
    with pytest.raises(UserError, match="no camera opened at indices 0..4"):
        CameraSource(1, opener=lambda i: FakeCapture(opened=False))


@pytest.mark.parametrize("platform, expected", [("darwin", "Privacy & Security > Camera"),
                                                ("win32", "allow desktop apps"), ("linux", "the video group"),
                                                ("freebsd13", None)])
def test_a_camera_that_cannot_open_gets_a_hint_for_its_system(platform, expected, monkeypatch):
    assert (sources.camera_access_hint(platform) == "") == (expected is None)
    if expected:
        assert expected in sources.camera_access_hint(platform)
    monkeypatch.setattr(sys, "platform", platform)
    with pytest.raises(UserError) as err:
        CameraSource(0, opener=lambda i: FakeCapture(opened=False))
    assert (expected or "pass another index, or a video file instead") in err.value.hint


@pytest.mark.parametrize("obeys", [True, False])
def test_camera_size_is_asked_of_the_driver_and_a_refusal_is_said(obeys, caplog):
    capture = SizedCapture(obeys, frames=3)
    with caplog.at_level("WARNING", logger="stylecam"):
        camera = CameraSource(0, opener=lambda i: capture, retry_seconds=0.1, size=(64, 40))
        frame = camera.read(timeout=2.0)
        camera.close()
    assert capture.props == {cv2.CAP_PROP_FRAME_WIDTH: 64, cv2.CAP_PROP_FRAME_HEIGHT: 40}
    assert frame.shape == ((40, 64, 3) if obeys else (24, 32, 3))
    warned = [r.getMessage() for r in caplog.records if "asked for" in r.getMessage()]
    assert warned == ([] if obeys else ["WARNING: camera 0 gives 32x24 frames, not the 64x40 asked for; using 32x24"])


def test_camera_fps_and_pixel_format_are_asked_of_the_driver_format_first():
    capture = SizedCapture(True, frames=3)
    camera = CameraSource(0, opener=lambda i: capture, retry_seconds=0.1, size=(64, 40), fps=15.0, fourcc="MJPG")
    camera.close()
    assert capture.props[cv2.CAP_PROP_FOURCC] == cv2.VideoWriter_fourcc(*"MJPG")
    assert capture.props[cv2.CAP_PROP_FPS] == 15.0
    assert capture.order == [cv2.CAP_PROP_FOURCC, cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT,
                             cv2.CAP_PROP_FPS]


def test_no_camera_size_leaves_the_driver_alone():
    capture = SizedCapture(True, frames=2)
    camera = CameraSource(0, opener=lambda i: capture, retry_seconds=0.1)
    assert camera.read(timeout=2.0).shape == (24, 32, 3)
    camera.close()
    assert capture.props == {}


def test_camera_frames_carry_their_capture_time():
    t0 = time.monotonic()
    camera = CameraSource(0, opener=lambda i: FakeCapture(frames=4, delay=0.01), retry_seconds=0.1)
    times = []
    while camera.read(timeout=2.0) is not None:
        times.append(camera.captured_at)
        assert camera.captured_at <= time.monotonic()
    camera.close()
    assert times and t0 < times[0] and times == sorted(times) and len(set(times)) == len(times)


def test_a_camera_that_takes_time_to_start_is_waited_for():
    camera = CameraSource(0, opener=lambda i: WarmingUpCapture(0.3, frames=3), retry_seconds=0.05)
    frames = []
    while (frame := camera.read(timeout=2.0)) is not None:
        frames.append(frame)
    camera.close()
    assert frames and frames[-1][0, 0, 0] == 30          # failing at first is not the end
    assert "no frame for 0.05 s" in camera.failure        # failing after frames is, after retry_seconds


def test_a_camera_that_never_delivers_gives_up_after_the_first_frame_wait():
    t0 = time.monotonic()
    camera = CameraSource(0, opener=lambda i: FakeCapture(frames=0), retry_seconds=0.05, first_frame_seconds=0.3)
    assert camera.read() is None and camera.ended
    camera.close()
    assert 0.3 <= time.monotonic() - t0 < 2.0
    assert camera.failure == "camera 0 delivered no frame in 0.3 s after opening"


def test_a_driver_that_does_not_answer_gives_up_after_stall_seconds():
    cap = BlockedCapture()
    camera = CameraSource(0, opener=lambda i: cap, retry_seconds=0.05, first_frame_seconds=0.1, stall_seconds=0.3)
    unblock = threading.Timer(3.0, cap.release_event.set)   # a test never hangs, even when this one fails
    unblock.start()
    t0 = time.monotonic()
    try:
        assert camera.read() is None
        assert 0.25 <= time.monotonic() - t0 < 1.5
        assert camera.failure == "camera 0 delivered no frame for 0.3 s (its driver does not answer)"
    finally:
        cap.release_event.set()
        unblock.cancel()
        camera.close()


@pytest.mark.parametrize("make, expect", [
    (lambda f: f[..., 0].copy(), (10, 10, 10)),                                          # grey (H, W)
    (lambda f: f[..., :1].copy(), (10, 10, 10)),                                         # grey (H, W, 1)
    (lambda f: np.dstack([f[..., :1], f[..., :1] + 1, f[..., :1] + 2, f[..., :1] * 0]), (10, 11, 12)),  # BGRA
    (lambda f: f.astype(np.uint16) * 257, (10, 10, 10)),                                 # 16-bit BGR
])
def test_camera_frames_are_always_uint8_bgr(make, expect):
    camera = CameraSource(0, opener=lambda i: ShapedCapture(make, frames=1), retry_seconds=0.05)
    frame = camera.read(timeout=2.0)
    camera.close()
    assert frame.shape == (24, 32, 3) and frame.dtype == np.uint8 and tuple(frame[0, 0]) == expect


def test_camera_bgr_refuses_what_is_not_an_image():
    with pytest.raises(ValueError, match="not an image"):
        sources.camera_bgr(np.zeros((1000,), np.uint8))          # an undecoded buffer
    with pytest.raises(ValueError, match="not an image"):
        sources.camera_bgr(np.zeros((4, 4, 2), np.uint8))


# ----- camera runs (runner.run) ---------------------------------------------------------------

@needs_ffmpeg
def test_headless_camera_records_until_the_camera_stops(tmp_path, weights):
    out = tmp_path / "live.mp4"
    config = RunConfig(engine=engine(weights), sources=("0",), output=str(out), window=False, progress=False)
    frames_sent = 6

    code, summary = runner.run(config, camera_opener=lambda i: FakeCapture(frames=frames_sent, delay=0.01),
                               camera_retry_s=0.2)
    assert code == 0 and summary["recordings"] == [str(out)]
    assert "no frame" in summary["stopped"]
    n = count_frames(out)
    assert 1 <= summary["frames"] <= frames_sent and n >= summary["frames"]  # frames held in real time


def test_camera_with_no_window_needs_output(weights):
    with pytest.raises(UserError, match="needs -o"):
        runner.run(RunConfig(engine=engine(weights), sources=("0",), window=False))


@needs_ffmpeg
def test_run_asks_the_camera_for_camera_size(tmp_path, weights):
    capture = SizedCapture(True, frames=100)
    config = RunConfig(engine=engine(weights), sources=("0",), output=str(tmp_path / "live.mp4"), window=False,
                       progress=False, max_frames=2, camera_size=(64, 40), camera_fps=24.0, camera_format="YUYV")
    code, summary = runner.run(config, camera_opener=lambda i: capture)
    assert code == 0 and summary["frames"] == 2
    assert capture.props[cv2.CAP_PROP_FPS] == 24.0 and capture.props[cv2.CAP_PROP_FOURCC] == cv2.VideoWriter_fourcc(*"YUYV")
    cap = cv2.VideoCapture(str(tmp_path / "live.mp4"))
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.shape == (40, 64, 3)


@needs_ffmpeg
@pytest.mark.parametrize("asked, expected", [(None, (2, 1)), (1, (1, None))])
def test_the_camera_plans_two_single_threaded_workers_on_two_cores(tmp_path, weights, monkeypatch, asked, expected):
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 2)
    config = RunConfig(engine=engine(weights), sources=("0",), output=str(tmp_path / "live.mp4"), window=False,
                       progress=False, workers=asked, max_frames=4)
    code, summary = runner.run(config, camera_opener=lambda i: FakeCapture(frames=100, delay=0.01))
    assert code == 0 and summary["frames"] == 4 and summary["stopped"] == "max frames"
    assert (summary["workers"], summary["stylecam"]["threads"]) == expected == \
        (summary["stylecam"]["workers"], summary["stylecam"]["threads"])


@needs_ffmpeg
def test_live_run_with_a_grey_camera_records_and_a_driver_error_is_the_stop_reason(tmp_path, weights):
    out = tmp_path / "grey.mp4"
    config = RunConfig(engine=engine(weights), sources=("0",), output=str(out), window=False, progress=False)

    class GreyExploding(ExplodingCapture):
        def read(self):
            ok, frame = super().read()
            return ok, (frame[..., 0].copy() if ok else frame)

    code, summary = runner.run(config, camera_opener=lambda i: GreyExploding(frames=3), camera_retry_s=0.05)
    assert code == 0 and summary["frames"] >= 1 and summary["recordings"] == [str(out)]
    assert summary["stopped"] == "camera 0: driver exploded"


def test_a_camera_that_delivers_nothing_with_o_exits_1_and_records_nothing(tmp_path, weights, caplog):
    out = tmp_path / "none.mp4"
    config = RunConfig(engine=engine(weights), sources=("0",), output=str(out), window=False, progress=False)
    code, summary = runner.run(config, camera_opener=lambda i: FakeCapture(frames=0), camera_retry_s=0.05,
                               camera_first_frame_s=0.2)
    assert code == 1 and summary["frames"] == 0 and summary["recordings"] == []
    assert not out.exists() and not list(tmp_path.glob(".*partial*"))
    assert "camera 0 delivered no frame; nothing recorded" in caplog.text


def test_size_auto_is_for_the_camera(weights, tmp_path):
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(UserError, match="--size auto is for the camera"):
        runner.run(RunConfig(engine=engine(weights), sources=(str(photo),), auto_size=True, progress=False))
