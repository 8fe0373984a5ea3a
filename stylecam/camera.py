"""Cameras: listing them, opening one in the format asked for, and reading it in a thread of its
own that keeps only the newest frame (the lowest latency).

``CameraSource`` joins three parts: ``open_camera`` and ``ask_format`` (the driver), ``NewestFrame``
(the frame handed from the reader thread to the loop) and ``FailureRule`` (when a camera whose
reads fail counts as ended). Frames leaving this module are uint8 BGR (H, W, 3).
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Callable, Iterator

import cv2
import numpy as np

from stylecam.errors import UserError

log = logging.getLogger("stylecam")

CAMERA_PROBE = 5   # camera indices looked at when listing cameras: 0..CAMERA_PROBE-1


# ----- finding and opening ------------------------------------------------------------------------

def _quiet_capture(opener: Callable, index: int):
    """Open a capture with OpenCV's own warnings silenced (absent cameras are noisy)."""
    try:
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except AttributeError:
        level = None
    try:
        return opener(index)
    finally:
        if level is not None:
            cv2.utils.logging.setLogLevel(level)


def list_cameras(max_index: int = CAMERA_PROBE, opener: Callable = cv2.VideoCapture) -> list[int]:
    """Camera indices 0..max_index-1 that open on this machine."""
    found = []
    for i in range(max_index):
        cap = _quiet_capture(opener, i)
        if cap is not None and cap.isOpened():
            found.append(i)
        if cap is not None:
            cap.release()
    return found


def camera_access_hint(platform: str | None = None) -> str:
    """Where a camera that exists but does not open is usually held back, for the error's hint."""
    platform = platform or sys.platform
    if platform == "darwin":
        return ("; on macOS, allow your terminal (or Python) in System Settings > Privacy & Security > Camera, "
                "then start it again")
    if platform == "win32":
        return "; on Windows, allow desktop apps in Settings > Privacy & security > Camera, and close other apps using it"
    if platform.startswith("linux"):
        return "; on Linux, check that /dev/video* exists and that your user may read it (the video group)"
    return ""


def describe_cameras(max_index: int = CAMERA_PROBE, opener: Callable | None = None) -> list[dict]:
    """The cameras at indices 0..max_index-1 that open here, as the driver reports them:
    [{"index": i, "size": "WxH" or None, "fps": float or None}] (None where it reports nothing).
    ``opener`` defaults to cv2.VideoCapture."""
    found = []
    for i in range(max_index):
        cap = _quiet_capture(opener or cv2.VideoCapture, i)
        if cap is None:
            continue
        try:
            if not cap.isOpened():
                continue
            width, height, fps = (cap.get(p) if hasattr(cap, "get") else 0.0 for p in
                                  (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT, cv2.CAP_PROP_FPS))
            found.append({"index": i, "size": f"{int(width)}x{int(height)}" if width > 0 and height > 0 else None,
                          "fps": round(float(fps), 2) if 0 < fps < 1000 else None})
        finally:
            cap.release()
    return found


def open_camera(index: int, opener: Callable = cv2.VideoCapture, probe: int = CAMERA_PROBE):
    """The opened capture of camera ``index`` (``opener(index)``: an object like cv2.VideoCapture).
    UserError when it does not open, naming the cameras among 0..probe-1 that do."""
    cap = _quiet_capture(opener, index)
    if cap is None or not cap.isOpened():
        others = [i for i in list_cameras(probe, opener) if i != index]
        have = f"cameras that open here: {', '.join(map(str, others))}" if others else \
            f"no camera opened at indices 0..{probe - 1}"
        raise UserError(f"cannot open camera {index} (tried index {index})",
                        f"{have}; pass another index, or a video file instead" + camera_access_hint())
    return cap


def ask_format(cap, size: tuple[int, int] | None = None, fps: float | None = None,
               fourcc: str | None = None) -> float:
    """Ask an open capture for a pixel format (``fourcc``, e.g. "MJPG"), a ``size`` (width, height)
    and a rate (``fps``), where given; returns the frames a second the driver then reports (30.0
    when it reports none, or nothing plausible). The capture is released when this raises."""
    try:
        if hasattr(cap, "set"):
            if fourcc is not None:    # before the size: some drivers offer large sizes only as MJPEG
                cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*fourcc))
            if size is not None:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
            if fps is not None:
                cap.set(cv2.CAP_PROP_FPS, float(fps))
        reported = cap.get(cv2.CAP_PROP_FPS) if hasattr(cap, "get") else 0
    except BaseException:
        cap.release()
        raise
    return reported if reported and 0 < reported < 240 else 30.0


def camera_bgr(frame: np.ndarray) -> np.ndarray:
    """A camera frame -> uint8 BGR (H, W, 3).

    Grey (H, W) or (H, W, 1) is expanded, BGRA (H, W, 4) loses its alpha, 16-bit is scaled to 8 bits;
    anything else that is not an image raises ValueError.
    """
    frame = np.asarray(frame)
    if frame.dtype == np.uint16:
        frame = (frame // 257).astype(np.uint8)
    if frame.dtype != np.uint8 or frame.ndim not in (2, 3) or 0 in frame.shape \
            or (frame.ndim == 3 and frame.shape[2] not in (1, 3, 4)):
        raise ValueError(f"a frame of {frame.dtype} {frame.shape} is not an image")
    if frame.ndim == 2 or frame.shape[2] == 1:
        return cv2.cvtColor(np.ascontiguousarray(frame.reshape(frame.shape[:2])), cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_BGRA2BGR)
    return frame


# ----- the reader thread's parts ------------------------------------------------------------------

class NewestFrame:
    """The newest frame of a camera, put by its reader thread and taken by one reader.

    A frame put before the one before it was taken replaces it (``dropped`` counts those);
    ``end()`` says no frame will come any more. ``delivered``: frames put so far.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._frame: np.ndarray | None = None
        self._at = 0.0
        self.delivered = 0
        self._taken = 0              # the value of ``delivered`` when a frame was taken last
        self._ended = False
        self.dropped = 0
        self.timed_out = False       # the last take() waited its whole timeout

    def put(self, frame: np.ndarray, at: float) -> None:
        """A new uint8 BGR frame, delivered at ``at`` (time.monotonic() seconds)."""
        with self._changed:
            if self.delivered > self._taken:
                self.dropped += 1
            self._frame, self._at, self.delivered = frame, at, self.delivered + 1
            self._changed.notify_all()

    def end(self) -> None:
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def take(self, timeout: float) -> tuple[np.ndarray, float] | None:
        """(the newest frame not taken yet, its delivery time), waiting up to ``timeout`` seconds for
        one; None when the camera has ended or none came in time (then ``timed_out`` is True)."""
        with self._changed:
            self.timed_out = not self._changed.wait_for(lambda: self.delivered > self._taken or self._ended,
                                                        timeout=timeout)
            if self.delivered <= self._taken:
                return None
            self._taken = self.delivered
            return self._frame, self._at

    @property
    def ended(self) -> bool:
        """Ended, and its last frame taken."""
        with self._lock:
            return self._ended and self.delivered <= self._taken


class FailureRule:
    """When a camera whose reads fail counts as ended (see CameraSource); times are time.monotonic() s.

    ``failed(started, now, message, first)`` after each failed read (started: when that read began;
    message: the driver's error or None; first: no frame has come yet) returns why the camera has
    ended, or None to read on; ``frame()`` after each frame ends a streak of failures.
    """

    def __init__(self, index: int, opened: float, first_frame_seconds: float, retry_seconds: float):
        self.index, self.opened = index, opened
        self.first_frame_seconds, self.retry_seconds = first_frame_seconds, retry_seconds
        self._since: float | None = None     # start of the first failed read since the last frame
        self._error: str | None = None       # the last driver error message of the current failure streak

    def frame(self) -> None:
        self._since, self._error = None, None

    def failed(self, started: float, now: float, message: str | None, first: bool) -> str | None:
        self._error = message or self._error
        self._since = started if self._since is None else self._since
        if first:
            if now - self.opened >= self.first_frame_seconds:
                return self._error or \
                    f"camera {self.index} delivered no frame in {self.first_frame_seconds:g} s after opening"
        elif now - self._since >= self.retry_seconds:
            return self._error or f"camera {self.index} delivered no frame for {self.retry_seconds:g} s"
        return None


# ----- the camera ---------------------------------------------------------------------------------

class CameraSource:
    """A camera read by a background thread that keeps only the newest frame (lowest latency).

    ``read()`` returns the next frame not seen yet: uint8 BGR (H, W, 3) (grey and BGRA frames
    are converted, see camera_bgr), or None once the camera has ended; ``captured_at`` is then
    the time.monotonic() at which the driver delivered it. ``opener(index)`` must
    return an object like cv2.VideoCapture (isOpened, read, get, release); tests pass fakes.

    When the camera counts as ended (``failure`` then says why, with a driver's own error message
    when its read() raised):
      - before its first frame: when it has reported failure (read() returning False or no frame,
        or raising) and ``first_frame_seconds`` (at least ``retry_seconds``) have passed since opening:
        webcams can take a few seconds to start;
      - after that: when its reads have failed, with no frame in between, for ``retry_seconds``
        (counted from the start of the first failed read).
    A read that is merely slow (it blocks, then delivers) is a live camera, however slow. Only a
    driver that answers nothing at all for ``stall_seconds`` makes ``read()`` give up (returns None,
    ``failure`` set).

    size: (width, height) asked of the driver (CAP_PROP_FRAME_WIDTH / _HEIGHT); a driver that gives
    another size is warned about once, at the first frame, and its frames are used as they come.
    fps: frames a second asked of it (CAP_PROP_FPS); fourcc: the pixel format asked of it, four
    characters such as "MJPG" (CAP_PROP_FOURCC; many USB webcams give 1280x720 and above at 30
    FPS only as MJPEG). ``self.fps`` is what the driver then reports.
    """

    def __init__(self, index: int, opener: Callable = cv2.VideoCapture, retry_seconds: float = 3.0,
                 probe: int = CAMERA_PROBE, first_frame_seconds: float = 10.0, stall_seconds: float = 30.0,
                 size: tuple[int, int] | None = None, fps: float | None = None, fourcc: str | None = None):
        self.index = index
        self.size = size           # (width, height) asked of the driver, None = its own
        self.retry_seconds = retry_seconds
        self.first_frame_seconds = max(first_frame_seconds, retry_seconds)
        self.stall_seconds = max(stall_seconds, self.first_frame_seconds)
        self._cap = open_camera(index, opener, probe)
        self.fps = ask_format(self._cap, size, fps, fourcc)
        self._newest = NewestFrame()
        self.captured_at = 0.0     # seconds, time.monotonic() at which the driver delivered the frame read() returned last (0.0 before)
        self._stop = threading.Event()
        self.failure: str | None = None
        self.on_frame: Callable[[], None] | None = None   # called (reader thread) on each new frame and at the end
        self._thread = threading.Thread(target=self._reader, name=f"stylecam-camera{index}", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        """Frames replaced before anyone read them."""
        return self._newest.dropped

    def _read_one(self) -> tuple[np.ndarray | None, str | None]:
        """(uint8 BGR frame, None) or (None, the driver's error message or None for a plain failure)."""
        try:
            ok, frame = self._cap.read()
        except Exception as err:  # a driver error counts as a failed read; its message is kept
            return None, f"camera {self.index}: {err or type(err).__name__}"
        if not ok or frame is None:
            return None, None
        try:
            return camera_bgr(frame), None
        except ValueError as err:
            return None, f"camera {self.index}: {err}"

    def _reader(self) -> None:
        rule = FailureRule(self.index, time.monotonic(), self.first_frame_seconds, self.retry_seconds)
        while not self._stop.is_set():
            started = time.monotonic()
            frame, message = self._read_one()
            if frame is not None:
                delivered = time.monotonic()
                if self._newest.delivered == 0:
                    self._check_size(frame)
                rule.frame()
                self._newest.put(frame, delivered)
                if self.on_frame is not None:
                    self.on_frame()
                continue
            ended = rule.failed(started, time.monotonic(), message, first=self._newest.delivered == 0)
            if ended:
                self.failure = ended
                break
            time.sleep(0.02)
        self._newest.end()
        if self.on_frame is not None:
            self.on_frame()

    def _check_size(self, frame: np.ndarray) -> None:
        """Say so (once, at the first frame) when the driver did not give the size asked for."""
        got = (frame.shape[1], frame.shape[0])
        if self.size is not None and got != tuple(self.size):
            log.warning("WARNING: camera %d gives %dx%d frames, not the %dx%d asked for; using %dx%d",
                        self.index, *got, *self.size, *got)

    def read(self, timeout: float | None = None) -> np.ndarray | None:
        """The newest unseen uint8 BGR (H, W, 3) frame; None when the camera has ended, or when none
        came within ``timeout`` seconds (default ``stall_seconds``: then ``failure`` says so too)."""
        wait = self.stall_seconds if timeout is None else timeout
        taken = self._newest.take(wait)
        if taken is None:
            if self._newest.timed_out and timeout is None:
                self.failure = self.failure or \
                    f"camera {self.index} delivered no frame for {wait:g} s (its driver does not answer)"
            return None
        frame, self.captured_at = taken
        return frame

    @property
    def ended(self) -> bool:
        return self._newest.ended

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._cap.release()

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            frame = self.read()
            if frame is None:
                return
            yield frame
