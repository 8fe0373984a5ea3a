"""Where frames come from: cameras (newest frame only), video files (every frame), images, folders.

Every frame leaving this module is uint8 BGR (H, W, 3), as OpenCV decodes it.
"""
from __future__ import annotations

import bisect
import glob
import logging
import os
import queue
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np

from stylecam import imageheader, limits
from stylecam.errors import UserError
from stylecam.exif import exif_orientation, orient
from stylecam.ffmpeg import probe_streams

log = logging.getLogger("stylecam")

CAMERA_PROBE = 5   # camera indices looked at when listing cameras: 0..CAMERA_PROBE-1
MAX_CAMERA_INDEX = 9999   # OpenCV takes small indices, also an index plus a backend's CAP_* offset (e.g. 200 + 0)

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


_IMAGE_MAGIC = ((b"\xff\xd8\xff", ".jpg"), (b"\x89PNG\r\n\x1a\n", ".png"), (b"BM", ".bmp"),
                (b"II*\x00", ".tif"), (b"MM\x00*", ".tif"))


def _head(path: str | Path, size: int = 16) -> bytes:
    """The first ``size`` bytes of a file (b"" when it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(size)
    except OSError:
        return b""


def image_format(path: str | Path) -> str | None:
    """Extension that fits the content of an image file by its signature (".jpg", ".png", ...), or None."""
    return _format_of(_head(path))


def _format_of(head: bytes) -> str | None:
    """Image extension from the first 16 bytes of a file, or None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    return next((ext for magic, ext in _IMAGE_MAGIC if head.startswith(magic)), None)


def sniff_kind(path: str | Path) -> str | None:
    """ "image" when OpenCV has a decoder for the file's signature (a GIF stays a video), else None."""
    if _head(path, 4).startswith(b"GIF8"):
        return None
    try:
        return "image" if cv2.haveImageReader(str(path)) else None
    except cv2.error:
        return None


def file_kind(path: str | Path) -> str | None:
    """ "video" or "image" by extension; an unknown extension is sniffed for image content."""
    return kind_of(path) or sniff_kind(path)


def expand_sources(specs: Iterable[str], output: str | None = None) -> tuple[list[SourceItem], list[str]]:
    """Camera indices, files, folders and globs -> (items, notes about skipped files).

    An existing path is taken as it is, even with glob characters in its name. Folders are
    searched recursively for images and videos, leaving out stylecam's own earlier outputs and
    anything under ``output`` (the -o path); other files are skipped with a note. A missing
    path, or a folder or glob without images or videos, raises UserError.
    """
    items: list[SourceItem] = []
    notes: list[str] = []
    for spec in specs:
        if spec.isascii() and spec.isdigit():
            items.append(SourceItem("camera", str(camera_index(spec))))
        elif os.path.isdir(spec):
            items += _expand_folder(spec, output, notes)
        elif os.path.isfile(spec):
            items.append(SourceItem(file_kind(spec) or "video", spec))  # neither: let the video decoder try
        elif special_file(spec):
            raise UserError(f"{spec} is {special_file(spec)}, not a regular file",
                            "give a video or image file, a folder or a camera index (0, 1, ...)")
        elif any(ch in spec for ch in "*?["):
            items += _expand_glob(spec, notes)
        else:
            raise UserError(f"no such file, folder or camera: {spec}",
                            "give a camera index (0, 1, ...), a video, an image, a folder or a glob")
    return items, notes


def camera_index(text: str) -> int:
    """A camera index given as digits, 0..MAX_CAMERA_INDEX; UserError otherwise."""
    index = int(text)
    if index > MAX_CAMERA_INDEX:
        shown = text if len(text) <= 12 else f"{text[:6]}...{text[-3:]} ({len(text)} digits)"
        raise UserError(f"no camera {shown}: camera indices are 0..{MAX_CAMERA_INDEX}",
                        "give a small index such as 0 or 1; `stylecam info` lists the cameras")
    return index


def special_file(path: str | Path) -> str | None:
    """What an existing path that is neither a regular file nor a folder is ("a named pipe (FIFO)",
    "a device", "a socket"); None for regular files, folders and missing paths."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return None


def _media_items(paths: Iterable[Path | str], root: str | None, notes: list[str]) -> list[SourceItem]:
    """SourceItems of the images and videos among ``paths``; a note for every other file."""
    items = []
    for path in paths:
        kind = file_kind(path)
        if kind is None:
            notes.append(f"skipped {path}: not an image or video")
        else:
            items.append(SourceItem(kind, str(path), root=root))
    return items


def _expand_folder(folder: str, output: str | None, notes: list[str]) -> list[SourceItem]:
    """The images and videos under ``folder`` (recursive; hidden files and earlier outputs left out)."""
    out = Path(output).resolve() if output else None
    out = out if out is not None and Path(folder).resolve() in out.parents else None  # -o inside the folder
    files, skipped = [], 0
    for path in sorted(Path(folder).rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(folder).parts) or path.is_dir():
            continue
        if special_file(path):           # opening a FIFO to sniff it would wait for a writer forever
            notes.append(f"skipped {path}: {special_file(path)}, not a regular file")
            continue
        if _is_output(path, Path(folder), out):
            skipped += 1
        else:
            files.append(path)
    if skipped:
        notes.append(f"skipped {skipped} file(s) in {folder} that are stylecam outputs (*_stylised.*, *_steps)"
                     f"{' or lie under -o ' + str(output) if out else ''}; name them to process them anyway")
    items = _media_items(files, folder, notes)
    if not items:
        raise UserError(f"no images or videos in folder {folder}",
                        f"supported: {', '.join(sorted(IMAGE_EXTS | VIDEO_EXTS))}")
    return items


def _expand_glob(pattern: str, notes: list[str]) -> list[SourceItem]:
    """The images and videos a glob matches; UserError when it matches none."""
    files = [m for m in sorted(glob.glob(pattern, recursive=True)) if os.path.isfile(m)]
    if not files:
        raise UserError(f"no files match {pattern!r}", "check the pattern (quote it so the shell leaves it alone)")
    if "_stylised" not in pattern and "_steps" not in pattern:  # earlier outputs, unless asked for by name
        own = [f for f in files if _is_output(Path(f), Path(f).parent, None) or _is_steps(Path(f).parent)]
        if own:
            files = [f for f in files if f not in own]
            notes.append(f"skipped {len(own)} file(s) matching {pattern!r} that are stylecam outputs "
                         "(*_stylised.*, *_steps); name them to process them anyway")
    items = _media_items(files, _glob_base(pattern), notes)
    if not items:
        raise UserError(f"no images or videos among the {len(files)} file(s) matching {pattern!r}",
                        f"supported: {', '.join(sorted(IMAGE_EXTS | VIDEO_EXTS))}")
    return items


def _is_output(path: Path, folder: Path, out: Path | None) -> bool:
    """Whether ``path`` (a file under ``folder``) is under -o ``out`` or was written by stylecam:
    NAME_stylised.EXT, a --save-steps sheet NAME_steps.png or anything in a NAME_steps/ folder."""
    resolved = path.resolve()
    if out is not None and (resolved == out or out in resolved.parents):
        return True
    if path.stem.endswith(("_stylised", "_stylised_steps")) or _is_steps(path.with_name(path.stem)):
        return True
    return any(_is_steps(folder / parent) for parent in path.relative_to(folder).parents if parent != Path("."))


def _is_steps(path: Path) -> bool:
    """Whether ``path`` is a folder that save_steps wrote (NAME_steps/00_original.png, ...)."""
    return path.name.endswith("_steps") and (path / "00_original.png").is_file()


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

def read_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """uint8 BGR (H, W, 3) from an image file (alpha dropped, grey expanded). Raises SourceError, and
    InputRefused when the picture has more than ``max_pixels`` pixels (None: no limit)."""
    return _decode_colour(_read_bytes(path, max_pixels), path, max_pixels)


def _decode_colour(data: np.ndarray, path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """Encoded bytes uint8 (N,) -> uint8 BGR (H, W, 3), EXIF orientation applied. Raises SourceError,
    InputRefused above ``max_pixels`` (checked again on the decoded picture: some formats have no
    header parser here)."""
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    except cv2.error as err:             # e.g. above OpenCV's own pixel limit
        raise SourceError(f"cannot decode {path}: {_cv2_reason(err)}") from None
    if image is None:
        raise SourceError(f"cannot decode {path}: not a readable image")
    limits.check_pixels(path, image.shape[1], image.shape[0], max_pixels)
    return image


def _cv2_reason(err: Exception) -> str:
    """The readable part of a cv2.error: "pixels <= CV_IO_MAX_IMAGE_PIXELS in function ..." -> that text."""
    text = " ".join(str(err).split())
    return text.split(") ", 1)[-1][:160] if "Assertion failed" in text else text[:160]


ALPHA_EXTS = {".png", ".webp", ".tif", ".tiff"}   # image formats that can carry transparency


def read_image_alpha(path: str | Path, max_pixels: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """(uint8 BGR (H, W, 3), uint8 alpha (H, W) 0..255 or None) from one image file.

    The colour is read like read_image (EXIF orientation applied); the alpha of a PNG, WebP or
    TIFF (by content, not name) is turned the same way. Raises SourceError, and InputRefused above
    ``max_pixels``.
    """
    data = _read_bytes(path, max_pixels)
    image = _decode_colour(data, path, max_pixels)
    if _format_of(data[:16].tobytes()) not in ALPHA_EXTS:
        return image, None
    try:
        raw = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return image, None
    if raw is None or raw.ndim != 3 or raw.shape[2] != 4:
        return image, None
    if raw.dtype == np.uint16:
        raw = (raw // 257).astype(np.uint8)
    code = _orientation_of(raw[..., :3], image, exif_orientation(data.tobytes()))
    return image, (None if code is None else orient(raw[..., 3], code).astype(np.uint8))


def read_alpha(path: str | Path) -> np.ndarray | None:
    """The transparency of an image file as uint8 (H, W) 0..255, oriented like read_image; None when
    it has none or the file cannot be read. 16-bit alpha is scaled to 8 bits."""
    try:
        return read_image_alpha(path)[1]
    except (SourceError, cv2.error):
        return None


def _read_bytes(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """The bytes of a file as uint8 (N,); SourceError when it cannot be read, InputRefused when its
    header announces more than ``max_pixels`` pixels (checked before reading the rest)."""
    if special_file(path):
        raise SourceError(f"cannot read {path}: {special_file(path)}, not a regular file")
    size = imageheader.image_size_of(path) if max_pixels is not None else None
    if size is not None:
        limits.check_pixels(path, *size, max_pixels)
    try:
        return np.fromfile(str(path), dtype=np.uint8)
    except OSError as err:
        raise SourceError(f"cannot read {path}: {err.strerror}") from None


def _orientation_of(stored: np.ndarray, shown: np.ndarray, hint: int) -> int | None:
    """The orientation code (1..8) that turns uint8 BGR ``stored`` into ``shown`` as OpenCV decoded it.

    ``hint`` (the file's EXIF orientation) is tried first and wins ties (a plain-coloured picture);
    None when no orientation gives the shape of ``shown``.
    """
    best: tuple[float, int] | None = None
    for code in dict.fromkeys([hint, 1, 2, 3, 4, 5, 6, 7, 8]):
        candidate = orient(stored, code)
        if candidate.shape != shown.shape:
            continue
        err = cv2.norm(candidate, shown, cv2.NORM_L1)
        if best is None or err < best[0]:
            best = (err, code)
        if err == 0:
            break
    return None if best is None else best[1]


#: undecodable frames in a row that are skipped before a video counts as ended: at least
#: SKIP_AT_LEAST (a count the file does not announce, or only estimates), at most SKIP_AT_MOST
SKIP_AT_LEAST, SKIP_AT_MOST = 8, 1000


class VideoFileSource:
    """Every decodable frame of a video file, in order: uint8 BGR (H, W, 3).

    A frame that cannot be decoded (damage in the middle of the file) is skipped and the next one
    read: ``lost`` counts them, and ``lost_before[i]`` is how many came just before the i-th frame
    delivered (0-based; absent: none). Reading goes on past failures as long as the file announces
    frames still to come (at least SKIP_AT_LEAST, at most SKIP_AT_MOST failures in a row); failures
    with no frame after them are the end (a truncated file: fewer frames than ``frame_count``).

    picture_times: the presentation times (s from the file's start, sorted) of the frames the file
    holds (ffmpeg.probe_packets). With them, the frames lost are found by the times of the frames
    decoded, which is exact also where the decoder reorders frames; without them (or for a frame
    whose time matches none), by the decoder's failures.

    Raises SourceError when the file cannot be opened or holds no decodable frame, InputRefused when
    its frames have more than ``max_pixels`` pixels (None: no limit).
    """

    def __init__(self, path: str | Path, picture_times: Sequence[float] | None = None,
                 max_pixels: int | None = None):
        self.path = str(path)
        if special_file(self.path):
            raise SourceError(f"cannot read {self.path}: {special_file(self.path)}, not a regular file")
        self.lost = 0                                # undecodable frames skipped
        self.lost_before: dict[int, int] = {}        # index of a frame delivered -> frames lost just before it
        self.delivered = 0                           # frames read so far
        self._expected = list(picture_times or ())
        self._matched = 0                            # picture_times[:_matched] are delivered or lost
        self._cap = cv2.VideoCapture(self.path)
        if not self._cap.isOpened():
            raise SourceError(_no_video_stream(self.path) or f"cannot open video {self.path}")
        try:                             # the size the container announces, before any frame is decoded
            limits.check_pixels(self.path, int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                                int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), max_pixels)
        except BaseException:
            self._cap.release()
            raise
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = count if count > 0 else None
        first = self._next()
        if first is None:
            self._cap.release()
            raise SourceError(_no_video_stream(self.path) or f"cannot decode video {self.path}: no readable frame")
        self._first: np.ndarray | None = first
        self.height, self.width = first.shape[:2]
        try:
            limits.check_pixels(self.path, self.width, self.height, max_pixels)
        except BaseException:
            self._cap.release()
            raise
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 0 < fps < 1000 else 25.0

    def _next(self) -> np.ndarray | None:
        """The next decodable frame (undecodable ones skipped and counted), or None at the end."""
        failed = 0
        while True:
            ok, frame = self._cap.read()
            if ok and frame is not None:
                lost = self._lost_by_time()
                lost = failed if lost is None else lost
                if lost:
                    self.lost += lost
                    self.lost_before[self.delivered] = lost
                self.delivered += 1
                return frame
            failed += 1
            remaining = (self.frame_count or 0) - self.delivered - self.lost
            if failed >= min(SKIP_AT_MOST, max(SKIP_AT_LEAST, remaining)):
                return None

    def _lost_by_time(self) -> int | None:
        """How many of ``picture_times`` the frame just decoded comes after without their frames
        having come; None without picture_times or when its time is none of them (within 1 ms).
        The decoder counts time from the first picture; picture_times from the file's start."""
        if not self._expected:
            return None
        at = self._expected[0] + self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        index = bisect.bisect_left(self._expected, at - 1e-3, lo=self._matched)
        if index == len(self._expected) or abs(self._expected[index] - at) > 1e-3:
            return None
        lost, self._matched = index - self._matched, index + 1
        return lost

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._first is not None:
            frame, self._first = self._first, None
            yield frame
        while True:
            frame = self._next()
            if frame is None:
                break
            yield frame
        self.close()

    def close(self) -> None:
        self._cap.release()


def _no_video_stream(path: str) -> str | None:
    """ "PATH has no video stream (only audio)" when ffmpeg finds streams but no video, else None."""
    try:
        streams = probe_streams(path)
    except (OSError, subprocess.SubprocessError):
        return None
    if not streams or "video" in streams:
        return None
    return f"{path} has no video stream (only {', '.join(dict.fromkeys(streams))})"


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
        self._cap = _quiet_capture(opener, index)
        if self._cap is None or not self._cap.isOpened():
            others = [i for i in list_cameras(probe, opener) if i != index]
            tried = f"tried index {index}"
            have = f"cameras that open here: {', '.join(map(str, others))}" if others else \
                f"no camera opened at indices 0..{probe - 1}"
            raise UserError(f"cannot open camera {index} ({tried})",
                            f"{have}; pass another index, or a video file instead" + camera_access_hint())
        try:
            asked = fps
            if hasattr(self._cap, "set"):
                if fourcc is not None:    # before the size: some drivers offer large sizes only as MJPEG
                    self._cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*fourcc))
                if size is not None:
                    self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
                    self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
                if asked is not None:
                    self._cap.set(cv2.CAP_PROP_FPS, float(asked))
            fps = self._cap.get(cv2.CAP_PROP_FPS) if hasattr(self._cap, "get") else 0
        except BaseException:
            self._cap.release()
            raise
        self.fps = fps if fps and 0 < fps < 240 else 30.0
        self._lock = threading.Lock()
        self._new = threading.Condition(self._lock)
        self._frame: np.ndarray | None = None
        self._frame_time = 0.0
        self.captured_at = 0.0     # seconds, time.monotonic() at which the driver delivered the frame read() returned last (0.0 before)
        self._seq = 0
        self._seen = 0
        self._ended = False
        self._stop = threading.Event()
        self.dropped = 0           # frames replaced before anyone read them
        self.failure: str | None = None
        self.on_frame: Callable[[], None] | None = None   # called (reader thread) on each new frame and at the end
        self._thread = threading.Thread(target=self._reader, name=f"stylecam-camera{index}", daemon=True)
        self._thread.start()

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
        opened = time.monotonic()
        failing_since = None       # start of the first failed read since the last frame
        error = None               # the last driver error message of the current failure streak
        while not self._stop.is_set():
            started = time.monotonic()
            frame, message = self._read_one()
            if frame is not None:
                delivered = time.monotonic()
                if self._seq == 0:
                    self._check_size(frame)
                failing_since, error = None, None
                with self._new:
                    if self._seq > self._seen:
                        self.dropped += 1
                    self._frame, self._frame_time, self._seq = frame, delivered, self._seq + 1
                    self._new.notify_all()
                if self.on_frame is not None:
                    self.on_frame()
                continue
            error = message or error
            now = time.monotonic()
            failing_since = started if failing_since is None else failing_since
            if self._seq == 0:
                if now - opened >= self.first_frame_seconds:
                    self.failure = error or \
                        f"camera {self.index} delivered no frame in {self.first_frame_seconds:g} s after opening"
                    break
            elif now - failing_since >= self.retry_seconds:
                self.failure = error or f"camera {self.index} delivered no frame for {self.retry_seconds:g} s"
                break
            time.sleep(0.02)
        with self._new:
            self._ended = True
            self._new.notify_all()
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
        with self._new:
            wait = self.stall_seconds if timeout is None else timeout
            ok = self._new.wait_for(lambda: self._seq > self._seen or self._ended, timeout=wait)
            if not ok and timeout is None:
                self.failure = self.failure or \
                    f"camera {self.index} delivered no frame for {wait:g} s (its driver does not answer)"
            if not ok or self._seq <= self._seen:
                return None
            self._seen = self._seq
            self.captured_at = self._frame_time
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
