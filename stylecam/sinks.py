"""Where frames go: video files (with the input's audio), image files (fileout.write_image), a window
with a HUD, a virtual camera.

Frames coming in are uint8 BGR (H, W, 3). Files are written under a temporary name in the
target folder and renamed when complete; ``VideoWriter.close()`` after an interruption
still finalises a playable file of the frames written so far.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from stylecam import fileout, imageops
from stylecam.encoders import (SILENT_EXTS, WRITE_HINT, EncoderStopped, FfmpegEncoder, OpenCVEncoder,
                               cut_sound_to_picture, encode_command, sound_args)
from stylecam.errors import UserError
from stylecam.ffmpeg import ffmpeg_exe, parse_sample_aspect, probe_text, stream_kinds
from stylecam.fileout import discard, ensure_parent, unwritable, write_image  # noqa: F401  write_image: the image sink
# moved to stylecam.encoders and stylecam.ffmpeg; importable from here for older callers
from stylecam.encoders import apart_from_ctrl_c  # noqa: F401
from stylecam.ffmpeg import has_audio, probe_streams  # noqa: F401

log = logging.getLogger("stylecam")


#: codecs that take any frame size (the others get odd sizes padded to even ones)
_ANY_SIZE_EXTS = {".gif"}


def pad_to_even(frame: np.ndarray) -> np.ndarray:
    """Repeat the last row and/or column of an (H, W, C) frame so that H and W are even (4:2:0 video)."""
    dh, dw = frame.shape[0] % 2, frame.shape[1] % 2
    if not (dh or dw):
        return frame
    return np.pad(frame, ((0, dh), (0, dw), (0, 0)), mode="edge")


def letterbox(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 (H, W, C) -> (height, width, C): scaled to fit inside with its aspect ratio kept,
    centred, the rest black (a portrait frame in a landscape video gets black bars, not squashed)."""
    h, w = frame.shape[:2]
    if (h, w) == (height, width):
        return frame
    scale = min(height / h, width / w)
    fit_h, fit_w = min(height, max(1, round(h * scale))), min(width, max(1, round(w * scale)))
    out = np.zeros((height, width, *frame.shape[2:]), frame.dtype)
    top, left = (height - fit_h) // 2, (width - fit_w) // 2
    out[top:top + fit_h, left:left + fit_w] = imageops.resize_to(frame, fit_h, fit_w)
    return out


class VideoWriter:
    """Encode uint8 BGR frames of one size to ``path``; copy the audio of ``audio_from`` if it has some.

    With ffmpeg (imageio-ffmpeg or PATH): H.264 (VP9 for .webm, an animated GIF for .gif), audio
    re-encoded (AAC; Opus or Vorbis in .webm), cut to the video's length or padded with silence to
    it. Without ffmpeg: OpenCV's mp4v writer, video only, with a warning (no GIF). Odd sizes get their last row/column
    repeated once (H.264 and VP9 need even sizes); a GIF keeps the exact size.
    sample_aspect_ratio: (num, den) of non-square pixels, e.g. (32, 27) for 16:9 DVD video; None
    takes the one of ``audio_from`` (the source clip), so anamorphic video keeps its display shape.
    copies: how many times to write each frame given to ``write`` (ffmpeg.vfr_timing), so that a
    variable-frame-rate clip keeps its timing at a constant ``fps``; frames past the list: once.
    video_start: seconds after the start of ``audio_from`` at which its picture starts (the first
    of ffmpeg.probe_frame_times); the first frame written starts the output, so that much of the sound is
    left out to keep it in sync.
    A failing encoder leaves no partial file behind.

    This class keeps the frame timing (copies, held and lost frames), the size and the temporary
    file; ``encoder`` (stylecam.encoders: an FfmpegEncoder or the OpenCVEncoder) does the encoding.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], audio_from: str | Path | None = None,
                 sample_aspect_ratio: tuple[int, int] | None = None, copies: Sequence[int] | None = None,
                 video_start: float = 0.0):
        self.path = Path(path)
        self.width, self.height = size
        self.fps = float(fps)
        self.frames = 0                      # frames encoded (with the copies)
        self.given = 0                       # frames given to write()
        self.copies = list(copies) if copies else []
        self.audio = False
        self.sample_aspect_ratio = sample_aspect_ratio
        self.video_start = video_start if np.isfinite(video_start) and video_start > 0.0 else 0.0
        self.encoder: FfmpegEncoder | OpenCVEncoder | None = None   # the process or file; see stylecam.encoders
        self._held: tuple[np.ndarray, int] | None = None   # (the frame written last, copies it may still be held for)
        ext = self.path.suffix.lower()
        self.even = ext not in _ANY_SIZE_EXTS
        ensure_parent(self.path)
        exe = ffmpeg_exe()
        if exe is None and ext == ".gif":
            raise UserError(f"writing an animated GIF ({self.path}) needs ffmpeg",
                            "pip install imageio-ffmpeg, or give -o an .mp4 name")
        try:
            self.tmp = fileout.temp_path(self.path)  # this writer's own: runs writing one output never share it
        except OSError as err:
            raise unwritable(self.path, err) from None
        try:
            self.encoder = OpenCVEncoder(self.tmp, self.path, self.fps, self._encoded_size()) if exe is None \
                else self._start_ffmpeg(exe, ext, audio_from)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise

    def _encoded_size(self) -> tuple[int, int]:
        """(width, height) of the frames encoded: odd sides one larger, except for a GIF."""
        return (self.width + self.width % 2, self.height + self.height % 2) if self.even else (self.width, self.height)

    def _start_ffmpeg(self, exe: str, ext: str, audio_from: str | Path | None) -> FfmpegEncoder:
        """ffmpeg encoding to the temporary file, with the sound and pixel aspect of ``audio_from``."""
        info = probe_text(audio_from) if audio_from else ""
        if self.sample_aspect_ratio is None:
            self.sample_aspect_ratio = parse_sample_aspect(info)
        sound: list[str] = []
        if ext not in SILENT_EXTS and "audio" in stream_kinds(info):
            sound = sound_args(exe, ext, audio_from, self.video_start) or []
            if not sound:
                log.warning("WARNING: this ffmpeg has no audio encoder for %s; writing %s without audio", ext, self.path)
            self.audio = bool(sound)
        return FfmpegEncoder(encode_command(exe, self.tmp, self._encoded_size(), self.fps, ext, sound,
                                            self.sample_aspect_ratio))

    def write(self, frame: np.ndarray, repeat: int = 1, lost_before: int = 0) -> None:
        """Append one uint8 BGR (H, W, 3) frame, ``repeat`` times (held on screen that many frame
        times; multiplies the frame's ``copies``). Frames of another size are letterboxed into the
        writer's size (see letterbox).

        lost_before: frames of the input just before this one that could not be decoded; the frame
        written before (this one, when it is the first) is held on screen for their time (their
        ``copies``), so that the picture keeps its length and stays in sync with the sound.

        A frame that ``copies`` holds until a later picture is held only when that picture comes
        (the next write): a clip that ends early (truncated) does not end on a frame held for
        pictures that are not there.

        Raises UserError (and removes the partial file) when the encoder has stopped.
        """
        if repeat < 1:
            raise ValueError(f"repeat must be at least 1, got {repeat}")
        if frame.shape[:2] != (self.height, self.width):
            frame = letterbox(frame, self.height, self.width)
        if self.even:
            frame = pad_to_even(frame)
        lost = sum(self._copies_of(self.given + i) for i in range(max(0, lost_before)))
        self.given += max(0, lost_before)
        if self._held is not None:             # the frame before: its hold, and the time of the lost ones
            before, hold = self._held
            self._held = None
            if hold + lost:
                self._emit(before, hold + lost)
            lost = 0
        times = self._copies_of(self.given) * int(repeat)
        self.given += 1
        now = times if self.given >= len(self.copies) else int(repeat)   # the rest waits for the next picture
        self._emit(frame, now + lost)
        self._held = (frame, times - now)

    def _copies_of(self, index: int) -> int:
        """How many times the input's frame ``index`` is written (its ``copies``, else 1)."""
        return self.copies[index] if index < len(self.copies) else 1

    def _emit(self, frame: np.ndarray, times: int) -> None:
        """Encode a frame already of the encoded size ``times`` times."""
        try:
            self.encoder.write(frame, times)
        except EncoderStopped as stopped:
            discard(self.tmp)
            raise UserError(f"the video encoder stopped while writing {self.path}: {stopped}", WRITE_HINT) from None
        self.frames += times

    def close(self) -> Path:
        """Finalise the file and rename it to ``path``; returns ``path``.

        A writer with no frames, or whose encoder fails, removes its temporary file and raises UserError.
        """
        failure = self.encoder.finish()
        if failure is not None:
            discard(self.tmp)
            raise UserError(f"the video encoder failed for {self.path}: {failure}", WRITE_HINT)
        if self.frames == 0:
            discard(self.tmp)
            raise UserError(f"no frames were written to {self.path}", "the input delivered no frame")
        if self.audio:
            cut_sound_to_picture(self.encoder.exe, self.tmp, self.frames / self.fps, 1.0 / self.fps)
        try:
            fileout.make_readable(self.tmp)
            os.replace(self.tmp, self.path)
        except OSError as err:
            discard(self.tmp)
            raise unwritable(self.path, err) from None
        return self.path

    def abort(self) -> None:
        """Stop without keeping anything."""
        self._held = None
        self.encoder.kill()
        discard(self.tmp)


# ----- window ------------------------------------------------------------------------------

def hud_lines(chain: Sequence[str], repeat: int, fps: float, providers: Sequence[str], inference_ms: float,
              strength: float = 1.0, extra: Sequence[str] = (), latency_ms: float | None = None) -> list[str]:
    """Text of the live HUD: chain x repeat, FPS, inference time per frame, provider, latency (camera
    to screen, when given), strength, then ``extra``."""
    provider = (providers[0] if providers else "?").replace("ExecutionProvider", "")
    latency = f"  latency {latency_ms:.0f} ms" if latency_ms is not None else ""
    lines = [f"{' > '.join(chain)}  x{repeat}", f"{fps:5.1f} FPS  {inference_ms:6.1f} ms  {provider}{latency}"]
    if strength < 1.0:
        lines.append(f"strength {strength:.1f}")
    return lines + list(extra)


VIRTUAL_CAMERA_DEVICE_HINT = ("a virtual camera must exist: on Linux load v4l2loopback (sudo modprobe v4l2loopback), "
                              "on Windows and macOS install OBS Studio (its virtual camera); "
                              "--virtual-camera-device picks one")


class VirtualCamera:
    """Frames sent to a virtual camera that other programs (video calls, OBS) can pick as a webcam,
    through pyvirtualcam: v4l2loopback on Linux, OBS Studio's virtual camera on Windows and macOS.

    ``send`` takes uint8 BGR (H, W, 3) frames; the device opens at the first frame's size (odd sides
    rounded up: the backends convert to 4:2:0, which needs even sizes; the last row / column is
    repeated) and at ``fps`` (frames a second, settable until then); later frames of another size
    are letterboxed into the first's. device: e.g. /dev/video10
    (None = the first the backend finds). A missing package or device is a UserError with a hint.
    """

    def __init__(self, device: str | None = None, fps: float = 30.0):
        try:
            import pyvirtualcam
        except ImportError:
            raise UserError("--virtual-camera needs the pyvirtualcam package",
                            "pip install pyvirtualcam (or stylecam[virtualcam]); " + VIRTUAL_CAMERA_DEVICE_HINT) from None
        self._module, self.fps, self.device = pyvirtualcam, float(fps), device
        self._camera = None
        self.frames = 0

    def send(self, frame: np.ndarray) -> None:
        if self._camera is None:
            height, width = frame.shape[0] + frame.shape[0] % 2, frame.shape[1] + frame.shape[1] % 2
            try:
                self._camera = self._module.Camera(width, height, self.fps, fmt=self._module.PixelFormat.BGR,
                                                   device=self.device)
            except Exception as err:  # pyvirtualcam wraps its backends' errors (no device, ...) in RuntimeError
                raise UserError(f"cannot start the virtual camera: {err}", VIRTUAL_CAMERA_DEVICE_HINT) from None
            self.device = self._camera.device
            log.info("stylecam: sending %dx%d frames to the virtual camera %s", width, height, self.device)
        frame = pad_to_even(frame)
        if frame.shape[:2] != (self._camera.height, self._camera.width):
            frame = letterbox(frame, self._camera.height, self._camera.width)
        self._camera.send(np.ascontiguousarray(frame))
        self.frames += 1

    def close(self) -> None:
        if self._camera is not None:
            self._camera.close()
            self._camera = None


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

    def set_fullscreen(self, on: bool) -> None:
        """Fill the screen (on) or go back to a normal, resizable window."""
        cv2.setWindowProperty(self.title, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN if on else cv2.WINDOW_NORMAL)

    def show(self, frame: np.ndarray, wait_ms: int = 1) -> int:
        cv2.imshow(self.title, frame)
        return cv2.waitKey(wait_ms)

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass
