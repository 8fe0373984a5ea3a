"""What the live view writes to files: recordings that play in real time, and the names of
recordings and snapshots (timestamped, never over an existing file or one being written).

Frames are uint8 BGR (H, W, 3); times are seconds on a monotonic clock.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from stylecam.rates import RealTimePacer
from stylecam.sinks import VideoWriter


def timestamped(prefix: str, ext: str, folder: Path = Path("."), taken: set[str] | None = None) -> Path:
    """folder/PREFIX_YYYYmmdd_HHMMSS.EXT, made unique against ``taken`` and existing files (see unique_path)."""
    return unique_path(folder / f"{prefix}_{time.strftime('%Y%m%d_%H%M%S')}{ext}", taken if taken is not None else set())


def unique_path(path: Path, taken: set[str]) -> Path:
    """``path``, else NAME_2.EXT, NAME_3.EXT, ...: the first that neither exists nor is in ``taken``
    (names already given out in this run, e.g. a recording still being written); it is added to ``taken``."""
    candidate, n = Path(path), 1
    while str(candidate) in taken or candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}_{n}{path.suffix}")
    taken.add(str(candidate))
    return candidate


class Recordings:
    """The live recordings: the first to ``record_to``, later ones (key r) timestamped next to it
    with its extension (.mp4 without one). Each frame is held for the wall-clock time it covers on
    ``clock`` (RealTimePacer), so a recording plays in real time at ``fps``; paused time is left out.
    """

    def __init__(self, record_to: Path | None, fps: float, clock: Callable[[], float], taken: set[str]):
        self.record_to, self.fps, self.taken = record_to, fps, taken
        self.pacer = RealTimePacer(fps, clock)
        self.ext = record_to.suffix.lower() if record_to is not None and record_to.suffix else ".mp4"
        self.folder = record_to.parent if record_to is not None else Path(".")
        self.writer: VideoWriter | None = None
        self.paths: list[str] = []

    def write(self, shown: np.ndarray) -> None:
        """Add the uint8 BGR (H, W, 3) frame shown now (opens a recording when none is open)."""
        if self.writer is None:
            if self.record_to is not None and not self.paths:
                target = self.record_to
                self.taken.add(str(target))
            else:
                target = timestamped("stylecam", self.ext, self.folder, self.taken)
            self.writer = VideoWriter(target, self.fps, (shown.shape[1], shown.shape[0]))
            self.pacer.restart()
        self.writer.write(shown, repeat=self.pacer.copies())

    def hold(self, recording: bool) -> None:
        """Nothing recorded now (paused, or not recording): that time is left out; when recording
        is off, the open recording is finalised."""
        self.pacer.restart()
        if not recording:
            self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.paths.append(str(self.writer.close()))
            self.writer = None
