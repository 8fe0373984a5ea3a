"""Camera stand-ins: cv2.VideoCapture look-alikes (isOpened, read, get, release, and set where a
driver takes settings) that CameraSource opens through its ``opener``, and one CameraSource
look-alike. Every frame they give is uint8 BGR (H, W, 3) unless the class says otherwise.
"""
from __future__ import annotations

import threading
import time

import cv2
import numpy as np


class FakeCapture:
    """cv2.VideoCapture look-alike: ``frames`` frames of rising grey, then read() fails forever."""

    def __init__(self, frames: int = 5, opened: bool = True, size=(24, 32), delay: float = 0.004):
        self.left, self.opened, self.size, self.n, self.delay = frames, opened, size, 0, delay

    def isOpened(self):
        return self.opened

    def read(self):
        time.sleep(self.delay)  # a camera delivers at its own pace
        if self.left <= 0:
            return False, None
        self.left -= 1
        self.n += 1
        return True, np.full((*self.size, 3), (10 * self.n) % 256, np.uint8)

    def get(self, prop):
        return 10.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self):
        self.opened = False


class FastCapture(FakeCapture):
    """FakeCapture that says it delivers 100 frames a second (and does, about)."""

    def get(self, prop):
        return 100.0 if prop == cv2.CAP_PROP_FPS else 0.0


class SizedCapture(FakeCapture):
    """A driver that honours a size asked through set() only when ``obeys``; records what was set."""

    def __init__(self, obeys: bool, **kw):
        super().__init__(**kw)
        self.obeys, self.props, self.order = obeys, {}, []

    def set(self, prop, value):
        self.props[prop] = value
        self.order.append(prop)
        return True

    def read(self):
        if self.obeys and self.props:
            self.size = (int(self.props[cv2.CAP_PROP_FRAME_HEIGHT]), int(self.props[cv2.CAP_PROP_FRAME_WIDTH]))
        return super().read()


class CountingCapture(FakeCapture):
    """Frame n (from 1) carries n: blue 10 (n mod 20), green 10 (n div 20)."""

    def read(self):
        ok, frame = super().read()
        if ok:
            frame[..., 0], frame[..., 1] = 10 * (self.n % 20), 10 * (self.n // 20)
        return ok, frame


class GradientCapture(FakeCapture):
    """Frames that grow brighter from left to right, so a left-right flip shows."""

    def read(self):
        ok, frame = super().read()
        if ok:
            frame = np.broadcast_to(np.linspace(0, 200, frame.shape[1], dtype=np.uint8)[None, :, None],
                                    frame.shape).copy()
        return ok, frame


class NoisyStillCapture(FakeCapture):
    """A still scene whose pixels jitter by up to 2 grey levels from frame to frame (sensor noise)."""

    def read(self):
        ok, frame = super().read()
        if ok:
            rng = np.random.default_rng(self.n)
            frame = (100 + rng.integers(-2, 3, frame.shape)).astype(np.uint8)
        return ok, frame


class ShapedCapture(FakeCapture):
    """Frames made by ``make(n)`` (grey, BGRA, ...) instead of BGR."""

    def __init__(self, make, **kw):
        super().__init__(**kw)
        self.make = make

    def read(self):
        ok, frame = super().read()
        return (ok, self.make(frame)) if ok else (ok, frame)


class WarmingUpCapture(FakeCapture):
    """A webcam that reports failure for its first ``warmup`` seconds, then delivers."""

    def __init__(self, warmup: float, **kw):
        super().__init__(**kw)
        self.ready_at = time.monotonic() + warmup

    def read(self):
        if time.monotonic() < self.ready_at:
            time.sleep(self.delay)
            return False, None
        return super().read()


class BlockedCapture(FakeCapture):
    """A driver whose read() never answers (until ``release`` is set)."""

    def __init__(self):
        super().__init__()
        self.release_event = threading.Event()

    def read(self):
        self.release_event.wait()
        return False, None


class ExplodingCapture(FakeCapture):
    def read(self):
        if self.left <= 0:
            raise RuntimeError("driver exploded")
        return super().read()


class PacedCapture:
    """cv2.VideoCapture stand-in: ``frames`` (uint8 BGR (H, W, 3)) in a loop, one every 1/fps s.

    A read that comes late restarts the schedule from now (no burst of frames to catch up).
    """

    def __init__(self, frames: list[np.ndarray], fps: float):
        self.frames, self.fps, self.n, self._next = frames, float(fps), 0, None

    def isOpened(self) -> bool:
        return True

    def read(self) -> tuple[bool, np.ndarray]:
        now = time.monotonic()
        if self._next is None or self._next < now:
            self._next = now
        time.sleep(max(0.0, self._next - now))
        self._next += 1.0 / self.fps
        frame = self.frames[self.n % len(self.frames)]
        self.n += 1
        return True, frame

    def get(self, prop: int) -> float:
        return self.fps if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self) -> None:
        pass


class VirtualSlowCamera:
    """A CameraSource stand-in whose frames take ``seconds`` each to arrive, in virtual time: read(timeout)
    gives the frame only when it may wait that long (None = as long as it takes)."""

    def __init__(self, seconds: float, frames: int, retry_seconds: float = 3.0):
        self.seconds, self.left, self.retry_seconds = seconds, frames, retry_seconds
        self.index, self.fps, self.dropped, self.failure, self.timeouts = 0, 10.0, 0, None, []

    def read(self, timeout=None):
        self.timeouts.append(timeout)
        if self.left == 0 or (timeout is not None and timeout < self.seconds):
            self.failure = self.failure or "gave up"
            return None
        self.left -= 1
        return np.full((24, 32, 3), 50, np.uint8)

    def close(self):
        pass
