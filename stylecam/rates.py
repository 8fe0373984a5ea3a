"""Frame rates of the live view, measured and kept: the shown FPS (FPSMeter), the rate at which a
camera really delivers (DeliveryRate), and how long to hold each frame of a recording so that it
plays in real time (RealTimePacer). Pure: times are seconds passed in or read from a clock.
"""
from __future__ import annotations

import collections
import time
from typing import Callable


class FPSMeter:
    """Exponential moving average of frames per second."""

    def __init__(self, alpha: float = 0.1):
        self.alpha, self.fps, self._last = alpha, 0.0, None

    def tick(self, now: float | None = None) -> float:
        now = time.perf_counter() if now is None else now
        if self._last is not None and now > self._last:
            inst = 1.0 / (now - self._last)
            self.fps = inst if self.fps == 0 else (1 - self.alpha) * self.fps + self.alpha * inst
        self._last = now
        return self.fps


class DeliveryRate:
    """Frames a second a camera really delivers, over the last ``span`` seconds.

    ``add(now, delivered)``: at each read, time.monotonic() seconds and the frames delivered so far
    (read + replaced unread; only differences count). ``rate(nominal)``: at most the nominal fps,
    and the nominal fps itself until ``least`` seconds have been seen.
    """

    def __init__(self, span: float = 3.0, least: float = 1.0):
        self.span, self.least = span, least
        self._samples: collections.deque = collections.deque()

    def add(self, now: float, delivered: int) -> None:
        self._samples.append((now, delivered))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.span:
            self._samples.popleft()

    def rate(self, nominal: float) -> float:
        if len(self._samples) < 2:
            return nominal
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return nominal if t1 - t0 < self.least else min(nominal, (n1 - n0) / (t1 - t0))


class RealTimePacer:
    """How many times to write each processed frame so that a recording at ``fps`` plays in real time.

    The live loop stylizes fewer frames a second than the camera's nominal ``fps`` (the writer's
    rate): each frame is held for the output ticks (1/fps s on ``clock``, a monotonic clock in
    seconds) elapsed since the previous written frame, at least 1, the fraction carried over.
    ``restart()`` (a new recording, or a pause) starts afresh, so time not recorded is left out.
    """

    def __init__(self, fps: float, clock: Callable[[], float] = time.monotonic):
        self.fps, self.clock = float(fps), clock
        self._last: float | None = None
        self._carry = 0.0

    def restart(self) -> None:
        self._last, self._carry = None, 0.0

    def copies(self) -> int:
        """Copies of the frame written now (1 for the first frame after a restart)."""
        now = self.clock()
        if self._last is None:
            self._last = now
            return 1
        ticks = max(0.0, now - self._last) * self.fps + self._carry
        n = max(1, int(ticks + 1e-6))
        self._carry = max(0.0, ticks - n)   # frames coming faster than fps are never owed back
        self._last = now
        return n
