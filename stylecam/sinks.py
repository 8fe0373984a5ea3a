"""Where frames go: video files (with the input's audio), image files, a window with a HUD.

Frames coming in are uint8 BGR (H, W, 3). Files are written under a temporary name in the
target folder and renamed when complete; ``VideoWriter.close()`` after an interruption
still finalises a playable file of the frames written so far.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from stylecam import imageops
from stylecam.errors import UserError

log = logging.getLogger("stylecam")


def ffmpeg_exe() -> str | None:
    """Path of an ffmpeg binary: imageio-ffmpeg's, else one on PATH, else None."""
    if os.environ.get("STYLECAM_NO_FFMPEG"):
        return None
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:
        return shutil.which("ffmpeg")


def probe_streams(path: str | Path) -> list[str]:
    """Stream kinds of a media file, e.g. ["video", "audio"], parsed from ``ffmpeg -i`` (no ffprobe)."""
    exe = ffmpeg_exe()
    if exe is None:
        return []
    proc = subprocess.run([exe, "-hide_banner", "-i", str(path)], capture_output=True, text=True,
                          errors="replace", timeout=30)
    return [m.group(1).lower() for m in re.finditer(r"Stream #\d+:\d+.*?: (Video|Audio|Subtitle|Data):",
                                                    proc.stderr)]


def has_audio(path: str | Path) -> bool:
    return "audio" in probe_streams(path)


def temp_path(final: str | Path) -> Path:
    """Hidden temporary name next to ``final`` with the same extension (containers go by it)."""
    final = Path(final)
    return final.with_name(f".{final.stem}.partial{final.suffix}")


def unwritable(path: str | Path, err: OSError) -> UserError:
    """The error for an output that cannot be created (missing/read-only folder, a file in the way)."""
    if isinstance(err, (FileExistsError, NotADirectoryError)):
        reason = "a file is in the way of its folder"
    else:
        reason = err.strerror or err.__class__.__name__
    return UserError(f"cannot write {path}: {reason}", "choose an -o in a folder you can write to")


def ensure_parent(path: str | Path) -> Path:
    """Create the folder of ``path`` (and its parents); UserError when that is impossible."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise unwritable(path, err) from None
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file in the same folder, then rename it to ``path``.

    Raises UserError when the folder or the file cannot be written.
    """
    path = ensure_parent(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".partial", dir=path.parent)
    except OSError as err:
        raise unwritable(path, err) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise unwritable(path, err) from None
        raise
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_image(path: str | Path, frame: np.ndarray) -> Path:
    """Encode a uint8 BGR (H, W, 3) or BGRA (H, W, 4) frame by the extension of ``path``; write it atomically."""
    ext = Path(path).suffix.lower() or ".png"
    ok, buf = cv2.imencode(ext, frame)
    if not ok:
        raise UserError(f"cannot encode an image as {ext} for {path}", "use .png or .jpg")
    return atomic_write_bytes(path, buf.tobytes())


_VIDEO_CODECS = {
    ".webm": ["-c:v", "libvpx-vp9", "-b:v", "0", "-crf", "32"],
    # one palette for the whole clip (ffmpeg holds the frames until the end: meant for short clips)
    ".gif": ["-filter_complex", "split[a][b];[a]palettegen=stats_mode=diff[p];[b][p]paletteuse=dither=bayer:bayer_scale=3",
             "-loop", "0"],
}
_DEFAULT_CODEC = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"]
#: containers without an audio track
_SILENT_EXTS = {".gif"}
#: codecs that take any frame size (the others get odd sizes padded to even ones)
_ANY_SIZE_EXTS = {".gif"}


def pad_to_even(frame: np.ndarray) -> np.ndarray:
    """Repeat the last row and/or column of an (H, W, C) frame so that H and W are even (4:2:0 video)."""
    dh, dw = frame.shape[0] % 2, frame.shape[1] % 2
    if not (dh or dw):
        return frame
    return np.pad(frame, ((0, dh), (0, dw), (0, 0)), mode="edge")


class VideoWriter:
    """Encode uint8 BGR frames of one size to ``path``; copy the audio of ``audio_from`` if it has some.

    With ffmpeg (imageio-ffmpeg or PATH): H.264 (VP9 for .webm, an animated GIF for .gif), audio
    re-encoded to AAC and cut to the video's length. Without ffmpeg: OpenCV's mp4v writer, video
    only, with a warning (no GIF). Odd sizes get their last row/column repeated once (H.264 and
    VP9 need even sizes); a GIF keeps the exact size.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], audio_from: str | Path | None = None):
        self.path = Path(path)
        self.tmp = temp_path(self.path)
        self.width, self.height = size
        self.fps = float(fps)
        self.frames = 0
        self.audio = False
        self._proc: subprocess.Popen | None = None
        self._cv: cv2.VideoWriter | None = None
        ext = self.path.suffix.lower()
        self.even = ext not in _ANY_SIZE_EXTS
        ensure_parent(self.path)
        exe = ffmpeg_exe()
        if exe is None and ext == ".gif":
            raise UserError(f"writing an animated GIF ({self.path}) needs ffmpeg",
                            "pip install imageio-ffmpeg, or give -o an .mp4 name")
        if exe is None:
            log.warning("WARNING: no ffmpeg found (pip install imageio-ffmpeg); writing video only, without audio")
            fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"))
            encoded = (self.width + self.width % 2, self.height + self.height % 2)
            self._cv = cv2.VideoWriter(str(self.tmp), fourcc, self.fps, encoded)
            if not self._cv.isOpened():
                raise UserError(f"cannot write video {self.path}", "use an .mp4 or .avi output name")
            return
        self.audio = bool(audio_from) and ext not in _SILENT_EXTS and has_audio(audio_from)
        width, height = (self.width + self.width % 2, self.height + self.height % 2) if self.even else size
        cmd = [exe, "-hide_banner", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}",
               "-r", f"{self.fps:.6g}", "-i", "-"]
        if self.audio:
            cmd += ["-i", str(audio_from), "-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac", "-b:a", "160k",
                    "-shortest"]
        cmd += _VIDEO_CODECS.get(ext, _DEFAULT_CODEC)
        if ext in (".mp4", ".mov", ".m4v"):
            cmd += ["-movflags", "+faststart"]
        cmd.append(str(self.tmp))
        self._log = tempfile.TemporaryFile()
        # own session: a Ctrl-C in the terminal reaches stylecam only, which then finalises the file
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=self._log, start_new_session=True)

    def write(self, frame: np.ndarray) -> None:
        """Append one uint8 BGR frame; frames of another size are resized to the writer's size."""
        if frame.shape[:2] != (self.height, self.width):
            frame = imageops.resize_to(frame, self.height, self.width)
        if self.even:
            frame = pad_to_even(frame)
        if self._cv is not None:
            self._cv.write(frame)
        else:
            try:
                self._proc.stdin.write(np.ascontiguousarray(frame).tobytes())
            except (BrokenPipeError, OSError):
                raise UserError(f"the video encoder stopped while writing {self.path}: {self._error()}",
                                "check free disk space and the output name") from None
        self.frames += 1

    def _error(self) -> str:
        self._log.seek(0)
        text = self._log.read().decode(errors="replace").strip()
        return text.splitlines()[-1] if text else "no message"

    def close(self) -> Path:
        """Finalise the file and rename it to ``path``; returns ``path``.

        A writer with no frames removes its temporary file and raises UserError.
        """
        if self._cv is not None:
            self._cv.release()
            self._cv = None
        elif self._proc is not None:
            proc, self._proc = self._proc, None
            try:
                proc.stdin.close()
            except OSError:
                pass
            rc = proc.wait()
            if rc != 0:
                message = self._error()
                self.tmp.unlink(missing_ok=True)
                raise UserError(f"the video encoder failed for {self.path}: {message}",
                                "check the output name and free disk space")
        if self.frames == 0:
            self.tmp.unlink(missing_ok=True)
            raise UserError(f"no frames were written to {self.path}", "the input delivered no frame")
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Stop without keeping anything."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None
        if self._cv is not None:
            self._cv.release()
            self._cv = None
        self.tmp.unlink(missing_ok=True)


# ----- window ------------------------------------------------------------------------------

def hud_lines(chain: Sequence[str], repeat: int, fps: float, providers: Sequence[str], inference_ms: float,
              strength: float = 1.0, extra: Sequence[str] = ()) -> list[str]:
    """Text of the live HUD: chain x repeat, FPS, provider, inference time, strength."""
    provider = (providers[0] if providers else "?").replace("ExecutionProvider", "")
    lines = [f"{' > '.join(chain)}  x{repeat}", f"{fps:5.1f} FPS  {inference_ms:6.1f} ms  {provider}"]
    if strength < 1.0:
        lines.append(f"strength {strength:.1f}")
    return lines + list(extra)


class Window:
    """An OpenCV window. ``show`` returns the key pressed (or -1)."""

    def __init__(self, title: str = "stylecam"):
        self.title = title
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise UserError("cannot open a window: no display (DISPLAY is not set)",
                            "run with --no-window -o out.mp4 to record without a window")
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise UserError("cannot open a window (no display?)",
                            "run with --no-window -o out.mp4 to record without a window") from None

    def show(self, frame: np.ndarray, wait_ms: int = 1) -> int:
        cv2.imshow(self.title, frame)
        return cv2.waitKey(wait_ms)

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass
