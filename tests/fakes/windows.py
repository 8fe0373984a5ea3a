"""Window stand-ins for stylecam.live.run_live: show(frame) returns a key code (-1 for none), as
sinks.Window does, without a display. Frames are uint8 BGR (H, W, 3).
"""
from __future__ import annotations

import numpy as np


class NullWindow:
    """A window that shows nothing: run_live still draws its HUD on every frame. No key is pressed."""

    def __init__(self):
        self.frames = 0

    def show(self, frame: np.ndarray, wait_ms: int = 1) -> int:
        self.frames += 1
        return -1

    def set_fullscreen(self, on: bool) -> None:
        pass

    def close(self) -> None:
        pass


class FakeWindow:
    """Plays back a list of keys, one per frame, and keeps what was shown."""

    def __init__(self, keys):
        self.keys, self.shown, self.closed, self.fullscreen = list(keys), [], False, []

    def show(self, frame, wait_ms=1):
        self.shown.append(frame)
        return self.keys.pop(0) if self.keys else -1

    def set_fullscreen(self, on):
        self.fullscreen.append((len(self.shown), on))

    def close(self):
        self.closed = True


class ClockWindow(FakeWindow):
    """A FakeWindow on which every shown frame takes ``step`` seconds of a virtual clock."""

    def __init__(self, keys, step: float):
        super().__init__(keys)
        self.now, self.step = 0.0, step

    def show(self, frame, wait_ms=1):
        self.now += self.step
        return super().show(frame, wait_ms)
