"""Output files: written whole or not at all, and never over one of the inputs; images encoded here.

Every file stylecam and stylecam-train write goes to a temporary name of its own in the target's
folder, ``.STEM.XXXXXXXX.partial.EXT`` (unique per writer, created exclusively, the extension
kept last for tools that pick the format by it), and is renamed onto the target once complete.
A rename within one folder is atomic: a reader sees the old file or the new one, never a mix,
and of two runs writing the same output the last rename wins with a whole file. No temporary
file is left behind on failure. ``write_image`` is the one image writer of the runtime and the
trainer (OpenCV's encoders). Used by the runtime and by the trainer (no torch here).
"""
from __future__ import annotations

import os
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import cv2
import numpy as np

from stylecam.errors import UserError
from stylecam.folders import make_dirs

#: marks temporary outputs; ``.*partial*`` finds what an interrupted process may leave
TEMP_TAG = "partial"

_UMASK_LOCK = threading.Lock()


def temp_path(final: str | Path) -> Path:
    """Create an empty file with a unique hidden name beside ``final`` and return its path.

    ``clip.mp4`` -> ``.clip.k2j4_x9a.partial.mp4``: the name is reserved (O_EXCL) so no other
    writer, thread or process, gets it. Mode 0600 until ``make_readable``. Raises OSError when
    the folder cannot be written; the folder must exist.
    """
    final = Path(final)
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.stem}.", suffix=f".{TEMP_TAG}{final.suffix}")
    os.close(fd)
    return Path(tmp)


def current_umask() -> int:
    """The process's umask (os.umask can only be read by setting it; a lock keeps threads apart)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def make_readable(path: str | Path) -> None:
    """Give a file made by temp_path / mkstemp (mode 0600) the usual mode, 0666 minus the umask."""
    os.chmod(path, 0o666 & ~current_umask())


@contextmanager
def atomic_output(final: str | Path) -> Iterator[Path]:
    """Yield a unique temporary path beside ``final``; when the block ends without an exception,
    the file written there gets the usual mode and replaces ``final``. On any exception (Ctrl-C
    included) it is removed and ``final`` is left as it was. The folder must exist."""
    final = Path(final)
    tmp = temp_path(final)
    renamed = False
    try:
        yield tmp
        make_readable(tmp)
        os.replace(tmp, final)
        renamed = True
    finally:
        if not renamed:
            tmp.unlink(missing_ok=True)


def atomic_write_bytes(final: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``final`` through atomic_output; returns ``final`` (OSError when unwritable)."""
    with atomic_output(final) as tmp:
        tmp.write_bytes(data)
    return Path(final)


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether paths ``a`` and ``b`` name one file: the same path, or reached through ``..``, a
    symlink or a hard link (same device and inode). A path that does not exist yet is compared by
    its resolved name."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return Path(a).resolve() == Path(b).resolve()


def refuse_overwriting_inputs(output: str | Path, inputs: Mapping[str, str | Path | None] | Iterable[str | Path | None],
                              flag: str = "-o") -> None:
    """UserError when ``output`` is the same file (see same_file) as one of ``inputs``: writing it would
    destroy that input. inputs: paths, or {label: path} to name the option each came from; None and
    "" are skipped. ``flag`` is the option the hint asks to change."""
    labelled = inputs.items() if isinstance(inputs, Mapping) else (("", source) for source in inputs)
    for label, source in labelled:
        if source and same_file(output, source):
            what = f"the input {source}" + (f" (given as {label})" if label else "")
            if not label and str(source) == str(output):
                what = "its input"
            raise UserError(f"output {output} would overwrite {what}", f"choose another {flag}")


# ----- failures, folders ---------------------------------------------------------------------------

def discard(path: str | Path) -> None:
    """Delete a temporary file if it is there. Never raises: on a read-only file system even a file
    that was never created cannot be unlinked (EROFS), and that must not hide the error that matters."""
    try:
        Path(path).unlink(missing_ok=True)
    except OSError:
        pass


def unwritable(path: str | Path, err: OSError, flag: str = "-o") -> UserError:
    """The error for an output that cannot be created (missing/read-only folder, a file in the way);
    the hint asks for another ``flag``."""
    if isinstance(err, (FileExistsError, NotADirectoryError)):
        reason = "a file is in the way of its folder"
    else:
        reason = err.strerror or err.__class__.__name__
    return UserError(f"cannot write {path}: {reason}", f"choose an {flag} in a folder you can write to")


def ensure_parent(path: str | Path, flag: str = "-o") -> Path:
    """Create the folder of ``path`` (and its parents); UserError (naming ``flag``) when that is impossible."""
    path = Path(path)
    try:
        make_dirs(path.parent)
    except OSError as err:
        raise unwritable(path, err, flag) from None
    return path


# ----- images --------------------------------------------------------------------------------------

#: image formats by what their pixels can hold (the rest, e.g. .png .webp .tif, take BGR and BGRA)
_GREY_ONLY_EXTS = {".pgm"}
_NO_ALPHA_EXTS = {".jpg", ".jpeg", ".bmp", ".ppm"}
_COLOR_ONLY_EXTS = {".ppm"}


def encodable(frame: np.ndarray, ext: str) -> np.ndarray:
    """uint8 BGR (H, W, 3), BGRA (H, W, 4) or grey (H, W) -> the channels ``ext`` can hold:
    grey (H, W) for .pgm, BGR (H, W, 3) for .ppm and for BGRA to formats without alpha, else unchanged."""
    grey = frame.ndim == 2 or frame.shape[2] == 1
    if ext in _GREY_ONLY_EXTS:
        return frame.reshape(frame.shape[:2]) if grey else \
            cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY if frame.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    if grey and ext in _COLOR_ONLY_EXTS:
        return cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2BGR)
    if not grey and ext in _NO_ALPHA_EXTS and frame.shape[2] == 4:
        return np.ascontiguousarray(frame[..., :3])
    return frame


def encode_image(ext: str, frame: np.ndarray, params: Sequence[int] = ()) -> bytes | None:
    """uint8 BGR (H, W, 3), BGRA (H, W, 4) or grey (H, W) -> the bytes of an ``ext`` file (".png",
    ".jpg", ...; the channels adapted by encodable); None when OpenCV cannot encode it. params:
    OpenCV's (IMWRITE_*, value) pairs, e.g. (cv2.IMWRITE_JPEG_QUALITY, 85). OpenCV's own log stays silent."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        ok, buf = cv2.imencode(ext, encodable(frame, ext), list(params))
    except cv2.error:
        ok = False
    finally:
        cv2.utils.logging.setLogLevel(level)
    return buf.tobytes() if ok else None


def write_image(path: str | Path, frame: np.ndarray, params: Sequence[int] = (), flag: str = "-o") -> Path:
    """Encode a uint8 BGR (H, W, 3), BGRA (H, W, 4) or grey (H, W) frame by the extension of ``path``
    (.png without one; see encode_image) and write it atomically, its folder created; returns ``path``.

    Raises UserError when it cannot be encoded, or written (the hint asks for another ``flag``).
    """
    path = Path(path)
    ext = path.suffix.lower() or ".png"
    data = encode_image(ext, frame, params)
    if data is None:
        raise UserError(f"cannot encode an image as {ext} for {path}", "use .png or .jpg")
    ensure_parent(path, flag)
    try:
        return atomic_write_bytes(path, data)
    except OSError as err:
        raise unwritable(path, err, flag) from None
