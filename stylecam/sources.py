"""Where frames come from: video files (every frame), images, folders, globs; cameras (newest frame
only) in stylecam.camera.

Every frame leaving this module is uint8 BGR (H, W, 3), as OpenCV decodes it.
"""
from __future__ import annotations

import bisect
import glob
import os
import queue
import stat
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import cv2
import numpy as np

from stylecam import imageheader, limits
# the cameras live in stylecam.camera; importable from here, where the other sources are
from stylecam.camera import CAMERA_PROBE, CameraSource, camera_access_hint, camera_bgr, describe_cameras  # noqa: F401
from stylecam.errors import UserError
from stylecam.exif import exif_orientation, orient
from stylecam.ffmpeg import probe_streams

MAX_CAMERA_INDEX = 9999   # OpenCV takes small indices, also an index plus a backend's CAP_* offset (e.g. 200 + 0)

VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".gif"}
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
#: Suffix of stylecam's default output name (NAME_stylised.EXT), skipped in folders as its own output:
#: a file name users already have on disk, so it keeps this spelling.
OUTPUT_SUFFIX = "_stylised"


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
    if OUTPUT_SUFFIX not in pattern and "_steps" not in pattern:  # earlier outputs, unless asked for by name
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
    if path.stem.endswith((OUTPUT_SUFFIX, f"{OUTPUT_SUFFIX}_steps")) or _is_steps(path.with_name(path.stem)):
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
    return _decode_color(_read_bytes(path, max_pixels), path, max_pixels)


def _decode_color(data: np.ndarray, path: str | Path, max_pixels: int | None = None) -> np.ndarray:
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

    The color is read like read_image (EXIF orientation applied); the alpha of a PNG, WebP or
    TIFF (by content, not name) is turned the same way. Raises SourceError, and InputRefused above
    ``max_pixels``.
    """
    data = _read_bytes(path, max_pixels)
    image = _decode_color(data, path, max_pixels)
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

    ``hint`` (the file's EXIF orientation) is tried first and wins ties (a plain-colored picture);
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
