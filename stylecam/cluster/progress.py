"""Frames counted where they are stylized, gathered for the one progress bar of a cluster run.

Workers report the frames of each task to a ``ProgressBoard`` (a small Ray actor in a cluster run),
the driver reads the board and moves its bar. A task retried after its worker died reports under
a new attempt number: its count starts again from 0 and replaces the lost attempt's.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np


class ProgressBoard:
    """Frames done per task: ``report(task, attempt, frames)`` (frames so far in that attempt);
    ``snapshot()`` -> {task: frames} of each task's latest attempt; ``forget(task)`` when it is done."""

    def __init__(self):
        self._frames: dict[str, tuple[int, int]] = {}

    def report(self, task: str, attempt: int, frames: int) -> None:
        seen = self._frames.get(task)
        if seen is None or attempt >= seen[0]:
            self._frames[task] = (attempt, frames)

    def forget(self, task: str) -> None:
        self._frames.pop(task, None)

    def snapshot(self) -> dict[str, int]:
        return {task: frames for task, (_, frames) in self._frames.items()}


class CountingStylizer:
    """A Stylizer that counts the frames it stylizes and passes the running count to ``report``
    (at most every ``every_s`` seconds, and on ``flush``). Frames: uint8 BGR, as the Stylizer's.
    Everything else is the wrapped Stylizer's."""

    def __init__(self, stylizer, report: Callable[[int], None], every_s: float = 0.25):
        self._stylizer = stylizer
        self._report = report
        self._every_s = every_s
        self._lock = threading.Lock()
        self._last = 0.0
        self.frames = 0

    def __getattr__(self, name):
        return getattr(self._stylizer, name)

    def _count(self, n: int) -> None:
        with self._lock:
            self.frames += n
            now = time.monotonic()
            if now - self._last < self._every_s:
                return
            self._last = now
            frames = self.frames
        self._report(frames)

    def flush(self) -> None:
        self._report(self.frames)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """uint8 BGR (H, W, 3) -> stylized uint8 BGR (H, W, 3)."""
        result = self._stylizer(frame)
        self._count(1)
        return result

    def stylize_batch(self, frames) -> np.ndarray:
        """uint8 BGR (N, H, W, 3) -> stylized uint8 BGR (N, H, W, 3)."""
        result = self._stylizer.stylize_batch(frames)
        self._count(len(result))
        return result
