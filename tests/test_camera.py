"""stylecam.camera, part by part: the newest-frame hand-over, the rule for when a failing camera has
ended, and opening a camera in the format asked for (fake drivers, no camera needed)."""
from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from stylecam.camera import FailureRule, NewestFrame, ask_format, open_camera
from stylecam.errors import UserError


def frame(value: int) -> np.ndarray:
    return np.full((2, 2, 3), value, np.uint8)


def test_newest_frame_hands_over_only_the_newest_and_counts_the_replaced():
    newest = NewestFrame()
    assert newest.take(timeout=0) is None and newest.timed_out
    newest.put(frame(1), at=10.0)
    newest.put(frame(2), at=11.0)                 # frame 1 was never taken
    got, at = newest.take(timeout=0)
    assert int(got[0, 0, 0]) == 2 and at == 11.0 and newest.dropped == 1 and newest.delivered == 2
    assert newest.take(timeout=0) is None         # nothing new
    newest.put(frame(3), at=12.0)
    newest.end()
    assert not newest.ended                       # its last frame is still to be taken
    assert int(newest.take(timeout=0)[0][0, 0, 0]) == 3 and newest.dropped == 1
    assert newest.take(timeout=5.0) is None and not newest.timed_out and newest.ended   # ended: no wait


def test_newest_frame_wakes_a_waiting_reader():
    newest = NewestFrame()
    threading.Timer(0.05, newest.put, args=(frame(7), 1.0)).start()
    got = newest.take(timeout=5.0)
    assert got is not None and int(got[0][0, 0, 0]) == 7 and not newest.timed_out


def test_failure_rule_waits_for_a_first_frame_then_retries_for_retry_seconds():
    rule = FailureRule(index=0, opened=100.0, first_frame_seconds=10.0, retry_seconds=3.0)
    assert rule.failed(started=100.0, now=109.9, message=None, first=True) is None   # webcams start slowly
    assert rule.failed(started=109.9, now=110.0, message=None, first=True) == \
        "camera 0 delivered no frame in 10 s after opening"
    rule = FailureRule(index=2, opened=0.0, first_frame_seconds=10.0, retry_seconds=3.0)
    assert rule.failed(started=50.0, now=50.5, message="camera 2: driver gone", first=False) is None
    assert rule.failed(started=51.0, now=52.9, message=None, first=False) is None
    assert rule.failed(started=53.0, now=53.0, message=None, first=False) == "camera 2: driver gone"  # kept
    rule.frame()                                  # a frame: the streak starts again, its message forgotten
    assert rule.failed(started=60.0, now=62.0, message=None, first=False) is None
    assert rule.failed(started=62.0, now=63.0, message=None, first=False) == "camera 2 delivered no frame for 3 s"


class Driver:
    """What ask_format and open_camera see of a cv2.VideoCapture."""

    def __init__(self, opened: bool = True, fps: float = 25.0, fail_on: int | None = None):
        self.opened, self.fps, self.fail_on, self.calls, self.released = opened, fps, fail_on, [], False

    def isOpened(self):
        return self.opened

    def set(self, prop, value):
        if prop == self.fail_on:
            raise RuntimeError("driver refuses")
        self.calls.append((prop, value))
        if prop == cv2.CAP_PROP_FPS:
            self.fps = value
        return True

    def get(self, prop):
        return self.fps if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self):
        self.released = True


def test_ask_format_asks_the_pixel_format_before_the_size_and_keeps_a_plausible_rate():
    driver = Driver()
    assert ask_format(driver, size=(1280, 720), fps=60.0, fourcc="MJPG") == 60.0
    assert [prop for prop, _ in driver.calls] == [cv2.CAP_PROP_FOURCC, cv2.CAP_PROP_FRAME_WIDTH,
                                                  cv2.CAP_PROP_FRAME_HEIGHT, cv2.CAP_PROP_FPS]
    assert driver.calls[0][1] == cv2.VideoWriter_fourcc(*"MJPG")
    assert ask_format(Driver(fps=0.0)) == 30.0 and ask_format(Driver(fps=1000.0)) == 30.0
    refusing = Driver(fail_on=cv2.CAP_PROP_FRAME_WIDTH)
    with pytest.raises(RuntimeError):
        ask_format(refusing, size=(640, 480))
    assert refusing.released


def test_open_camera_names_the_cameras_that_do_open():
    drivers = {0: Driver(opened=False), 1: Driver(), 3: Driver()}
    assert open_camera(1, lambda i: drivers.get(i, Driver(opened=False))) is drivers[1]
    with pytest.raises(UserError, match=r"cannot open camera 0 \(tried index 0\)") as err:
        open_camera(0, lambda i: drivers.get(i, Driver(opened=False)))
    assert err.value.hint.startswith("cameras that open here: 1, 3; pass another index")
