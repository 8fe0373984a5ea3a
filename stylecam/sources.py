"""Where frames come from: cameras (newest frame only), video files (every frame), images, folders.

Every frame leaving this module is uint8 BGR (H, W, 3), as OpenCV decodes it.
"""
from __future__ import annotations

import glob
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np

from stylecam.errors import UserError

VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".gif"}
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


class SourceError(Exception):
    """A file that cannot be read (reported and skipped when it is part of a folder)."""


@dataclass(frozen=True)
class SourceItem:
    """One thing to process.

    kind: "camera", "video" or "image". location: camera index as text, or the file path.
    root: the folder or glob base it was found under (for mirroring into an output folder).
    """
    kind: str
    location: str
    root: str | None = None

    @property
    def relative(self) -> Path:
        """Path relative to ``root`` (just the file name without a root)."""
        path = Path(self.location)
        return path.relative_to(self.root) if self.root else Path(path.name)


def kind_of(path: str | Path) -> str | None:
    """ "video", "image" or None, from the file extension."""
    ext = Path(path).suffix.lower()
    return "video" if ext in VIDEO_EXTS else "image" if ext in IMAGE_EXTS else None


def expand_sources(specs: Iterable[str]) -> tuple[list[SourceItem], list[str]]:
    """Camera indices, files, folders and globs -> (items, notes about skipped files).

    Folders are searched recursively for images and videos; other files are skipped with a
    note. A missing path or a glob that matches nothing raises UserError.
    """
    items: list[SourceItem] = []
    notes: list[str] = []
    for spec in specs:
        if spec.isdigit():
            items.append(SourceItem("camera", spec))
        elif os.path.isdir(spec):
            found = 0
            for path in sorted(Path(spec).rglob("*")):
                if path.is_dir() or any(part.startswith(".") for part in path.relative_to(spec).parts):
                    continue
                kind = kind_of(path)
                if kind is None:
                    notes.append(f"skipped {path}: not an image or video")
                    continue
                items.append(SourceItem(kind, str(path), root=spec))
                found += 1
            if not found:
                raise UserError(f"no images or videos in folder {spec}",
                                f"supported: {', '.join(sorted(IMAGE_EXTS | VIDEO_EXTS))}")
        elif any(ch in spec for ch in "*?["):
            matches = sorted(glob.glob(spec, recursive=True))
            files = [m for m in matches if os.path.isfile(m)]
            if not files:
                raise UserError(f"no files match {spec!r}", "check the pattern (quote it so the shell leaves it alone)")
            base = _glob_base(spec)
            for path in files:
                kind = kind_of(path)
                if kind is None:
                    notes.append(f"skipped {path}: not an image or video")
                    continue
                items.append(SourceItem(kind, path, root=base))
        elif os.path.isfile(spec):
            items.append(SourceItem(kind_of(spec) or "video", spec))  # unknown extension: let the decoder try
        else:
            raise UserError(f"no such file, folder or camera: {spec}",
                            "give a camera index (0, 1, ...), a video, an image, a folder or a glob")
    return items, notes


def _glob_base(pattern: str) -> str | None:
    """The folder part of a glob before its first wildcard, or None."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if any(ch in part for ch in "*?["):
            break
        fixed.append(part)
    return str(Path(*fixed)) if fixed else None


# ----- images and videos ------------------------------------------------------------------

def read_image(path: str | Path) -> np.ndarray:
    """uint8 BGR (H, W, 3) from an image file (alpha dropped, grey expanded). Raises SourceError."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as err:
        raise SourceError(f"cannot read {path}: {err.strerror}") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise SourceError(f"cannot decode {path}: not a readable image")
    return image


ALPHA_EXTS = {".png", ".webp", ".tif", ".tiff"}   # image formats that can carry transparency


def read_alpha(path: str | Path) -> np.ndarray | None:
    """The transparency of an image file as uint8 (H, W) 0..255, or None when it has none.

    Only formats in ALPHA_EXTS are decoded (a second time, unchanged); 16-bit alpha is scaled to 8 bits.
    """
    if Path(path).suffix.lower() not in ALPHA_EXTS:
        return None
    try:
        image = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except (OSError, cv2.error):
        return None
    if image is None or image.ndim != 3 or image.shape[2] != 4:
        return None
    alpha = image[..., 3]
    if alpha.dtype == np.uint16:
        return (alpha // 257).astype(np.uint8)
    return alpha.astype(np.uint8) if alpha.dtype != np.uint8 else alpha


class VideoFileSource:
    """Every frame of a video file, in order: uint8 BGR (H, W, 3).

    Raises SourceError when the file cannot be opened or holds no decodable frame.
    """

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._cap = cv2.VideoCapture(self.path)
        if not self._cap.isOpened():
            raise SourceError(f"cannot open video {self.path}")
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise SourceError(f"cannot decode video {self.path}: no readable frame")
        self._first: np.ndarray | None = first
        self.height, self.width = first.shape[:2]
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 0 < fps < 1000 else 25.0
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = count if count > 0 else None

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._first is not None:
            frame, self._first = self._first, None
            yield frame
        while True:
            ok, frame = self._cap.read()
            if not ok or frame is None:
                break
            yield frame
        self.close()

    def close(self) -> None:
        self._cap.release()


def prefetch(iterable: Iterable, maxsize: int = 8) -> Iterator:
    """Run ``iterable`` in a background thread, at most ``maxsize`` items ahead; order kept.

    Exceptions from the producer are raised in the consumer. Closing the generator stops
    the producer at its next item.
    """
    q: queue.Queue = queue.Queue(maxsize=maxsize)
    stop = threading.Event()
    done = object()

    def produce():
        try:
            for item in iterable:
                while not stop.is_set():
                    try:
                        q.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("done", done))
        except BaseException as err:  # hand it to the consumer
            q.put(("error", err))

    thread = threading.Thread(target=produce, name="stylecam-decode", daemon=True)
    thread.start()
    try:
        while True:
            tag, value = q.get()
            if tag == "done":
                return
            if tag == "error":
                raise value
            yield value
    finally:
        stop.set()
        try:  # unblock a producer waiting on a full queue
            while True:
                q.get_nowait()
        except queue.Empty:
            pass
        thread.join(timeout=2.0)


# ----- cameras -----------------------------------------------------------------------------

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


def list_cameras(max_index: int = 5, opener: Callable = cv2.VideoCapture) -> list[int]:
    """Camera indices 0..max_index-1 that open on this machine."""
    found = []
    for i in range(max_index):
        cap = _quiet_capture(opener, i)
        if cap is not None and cap.isOpened():
            found.append(i)
        if cap is not None:
            cap.release()
    return found


class CameraSource:
    """A camera read by a background thread that keeps only the newest frame (lowest latency).

    ``read()`` returns the next frame not seen yet: uint8 BGR (H, W, 3), or None once the camera
    has stopped delivering for ``retry_seconds``. ``opener(index)`` must return an object
    like cv2.VideoCapture (isOpened, read, get, release); tests pass fakes.
    """

    def __init__(self, index: int, opener: Callable = cv2.VideoCapture, retry_seconds: float = 3.0,
                 probe: int = 5):
        self.index = index
        self.retry_seconds = retry_seconds
        self._cap = _quiet_capture(opener, index)
        if self._cap is None or not self._cap.isOpened():
            others = [i for i in list_cameras(probe, opener) if i != index]
            tried = f"tried index {index}"
            have = f"cameras that open here: {', '.join(map(str, others))}" if others else \
                f"no camera opened at indices 0..{probe - 1}"
            raise UserError(f"cannot open camera {index} ({tried})",
                            f"{have}; pass another index, or a video file instead")
        fps = self._cap.get(cv2.CAP_PROP_FPS) if hasattr(self._cap, "get") else 0
        self.fps = fps if fps and 0 < fps < 240 else 30.0
        self._lock = threading.Lock()
        self._new = threading.Condition(self._lock)
        self._frame: np.ndarray | None = None
        self._seq = 0
        self._seen = 0
        self._ended = False
        self._stop = threading.Event()
        self.dropped = 0           # frames replaced before anyone read them
        self.failure: str | None = None
        self._thread = threading.Thread(target=self._reader, name=f"stylecam-camera{index}", daemon=True)
        self._thread.start()

    def _reader(self) -> None:
        failing_since = None
        while not self._stop.is_set():
            try:
                ok, frame = self._cap.read()
            except Exception as err:  # a driver error counts as a failed read
                ok, frame = False, None
                self.failure = f"camera {self.index}: {err}"
            if ok and frame is not None:
                failing_since = None
                with self._new:
                    if self._seq > self._seen:
                        self.dropped += 1
                    self._frame, self._seq = frame, self._seq + 1
                    self._new.notify_all()
                continue
            now = time.monotonic()
            failing_since = failing_since or now
            if now - failing_since >= self.retry_seconds:
                self.failure = f"camera {self.index} delivered no frame for {self.retry_seconds:g} s"
                break
            time.sleep(0.02)
        with self._new:
            self._ended = True
            self._new.notify_all()

    def read(self, timeout: float | None = None) -> np.ndarray | None:
        """The newest unseen frame; None when the camera has ended (or on timeout)."""
        with self._new:
            ok = self._new.wait_for(lambda: self._seq > self._seen or self._ended, timeout=timeout)
            if not ok or self._seq <= self._seen:
                return None
            self._seen = self._seq
            return self._frame

    @property
    def ended(self) -> bool:
        with self._lock:
            return self._ended and self._seq <= self._seen

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
