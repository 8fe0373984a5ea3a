"""The video encoders behind sinks.VideoWriter: processes and files, not frame timing.

Both take uint8 BGR (H, W, 3) frames already of the encoded size, each with the number of times
to write it. ``FfmpegEncoder``: an ffmpeg process reading raw BGR frames from a pipe (the command
line from ``encode_command``: H.264, VP9 for .webm, an animated GIF for .gif; the source clip's
sound from ``sound_args``). ``OpenCVEncoder``: OpenCV's writer, the fallback without ffmpeg,
picture only. A stopped encoder raises ``EncoderStopped`` with the reason.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from stylecam.errors import UserError
from stylecam.ffmpeg import ffmpeg_encoders, parse_duration, probe_text
from stylecam.fileout import discard, unwritable

log = logging.getLogger("stylecam")

#: the hint of an encoder that stops or fails (ffmpeg's own message says why)
WRITE_HINT = "check that the folder of the output is writable and has free space, or choose another -o"

_VIDEO_CODECS = {
    # 4:2:0 (VP9 profile 0): browsers do not all play the 4:4:4 RGB that bgr24 input would give;
    # the realtime deadline encodes several times faster than libvpx's default, for slightly larger
    # files (docs/speed.md, "WebM")
    ".webm": ["-c:v", "libvpx-vp9", "-b:v", "0", "-crf", "32", "-pix_fmt", "yuv420p",
              "-deadline", "realtime", "-cpu-used", "6", "-row-mt", "1"],
    # one palette for the whole clip (ffmpeg holds the frames until the end: meant for short clips)
    ".gif": ["-filter_complex", "split[a][b];[a]palettegen=stats_mode=diff[p];[b][p]paletteuse=dither=bayer:bayer_scale=3",
             "-loop", "0"],
}
_DEFAULT_CODEC = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"]
#: containers without an audio track
SILENT_EXTS = {".gif"}
#: audio encoders per container, best first (WebM holds only Opus or Vorbis); others get AAC
_AUDIO_CODECS = {".webm": (["-c:a", "libopus", "-b:a", "128k"], ["-c:a", "libvorbis", "-q:a", "5"])}
_DEFAULT_AUDIO = (["-c:a", "aac", "-b:a", "160k"],)
#: containers whose index is moved to the front, so that playback can start before the download ends
_FASTSTART_EXTS = (".mp4", ".mov", ".m4v")


class EncoderStopped(Exception):
    """The encoder ended while frames were written to it (e.g. a full disk); the message says why."""


def audio_codec_args(ext: str, encoders: set[str]) -> list[str] | None:
    """ffmpeg audio codec arguments for a container ``ext`` given the ``encoders`` ffmpeg has;
    None when none of the container's codecs is available."""
    for args in _AUDIO_CODECS.get(ext, _DEFAULT_AUDIO):
        if args[1] in encoders:
            return list(args)
    return None


def sound_args(exe: str, ext: str, source: str | Path, video_start: float = 0.0) -> list[str] | None:
    """ffmpeg arguments that add the sound of ``source`` to an ``ext`` output, starting ``video_start``
    seconds into it (where its picture starts); None when the ffmpeg ``exe`` has no audio encoder
    that the container holds."""
    codec = audio_codec_args(ext, ffmpeg_encoders(exe))
    if codec is None:
        return None
    skip = ["-ss", f"{video_start:.6f}"] if video_start >= 0.0005 else []  # a sound that starts earlier
    # the sound padded with silence and cut where the picture ends: a shorter sound must not cut the
    # picture (-shortest alone stops reading frames there); a short output is cut exactly on close
    return [*skip, "-i", str(source), "-map", "0:v:0", "-map", "1:a:0", *codec, "-af", "apad", "-shortest"]


def encode_command(exe: str, out: str | Path, size: tuple[int, int], fps: float, ext: str,
                   sound: Sequence[str] = (), sample_aspect_ratio: tuple[int, int] | None = None) -> list[str]:
    """The ffmpeg command that encodes raw uint8 BGR frames of ``size`` (width, height), read from
    its stdin at ``fps``, into ``out`` in the codec of ``ext``; ``sound``: sound_args (() for none);
    a non-square ``sample_aspect_ratio`` (num, den) is written into the stream (not into a GIF)."""
    width, height = size
    cmd = [exe, "-hide_banner", "-loglevel", "error", "-y",
           "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}",
           "-r", f"{fps:.6g}", "-i", "-", *sound, *_VIDEO_CODECS.get(ext, _DEFAULT_CODEC)]
    sar = sample_aspect_ratio
    if sar and sar[0] != sar[1] and ext != ".gif":  # a GIF has no pixel aspect
        cmd += ["-vf", f"setsar={sar[0]}/{sar[1]}"]
    if ext in _FASTSTART_EXTS:
        cmd += ["-movflags", "+faststart"]
    return [*cmd, str(out)]


def apart_from_ctrl_c(platform: str | None = None) -> dict:
    """subprocess.Popen arguments that keep a terminal's Ctrl-C from reaching the child (an encoder
    that stylecam finalises itself): its own session on POSIX, its own process group on Windows."""
    if (platform or sys.platform) == "win32":
        return {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x200)}
    return {"start_new_session": True}


class FfmpegEncoder:
    """An ffmpeg process (``cmd``: encode_command) fed uint8 BGR frames through its stdin.

    It runs apart from the terminal's Ctrl-C (apart_from_ctrl_c): a Ctrl-C reaches stylecam only,
    which then finishes the file. ``process`` is None once it has finished or stopped. Its error
    output is kept for the message of a failure.
    """

    def __init__(self, cmd: Sequence[str]):
        self.exe = cmd[0]
        self._log = tempfile.TemporaryFile()
        self.process: subprocess.Popen | None = subprocess.Popen(
            list(cmd), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log, **apart_from_ctrl_c())

    def write(self, frame: np.ndarray, times: int) -> None:
        """Send a frame ``times`` times; EncoderStopped (with ffmpeg's last error line) when it has ended."""
        data = np.ascontiguousarray(frame).tobytes()
        try:
            if self.process is None:  # stopped by an earlier failure
                raise BrokenPipeError
            for _ in range(times):
                self.process.stdin.write(data)
        except (BrokenPipeError, OSError):
            raise EncoderStopped(self.stop()) from None

    def stop(self) -> str:
        """End a failed process (killed when it does not end within 10 s); returns its last error line."""
        proc, self.process = self.process, None
        if proc is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return self.error_line()

    def finish(self) -> str | None:
        """Let ffmpeg finish the file: None when it did (or had already ended), else its last error line."""
        proc, self.process = self.process, None
        if proc is None:
            return None
        try:
            proc.stdin.close()
        except OSError:
            pass
        return None if proc.wait() == 0 else self.error_line()

    def kill(self) -> None:
        """End it at once, whatever it has written."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def error_line(self) -> str:
        """The last line ffmpeg wrote to its error output ("no message" when none)."""
        self._log.seek(0)
        text = self._log.read().decode(errors="replace").strip()
        return text.splitlines()[-1] if text else "no message"


class OpenCVEncoder:
    """OpenCV's video writer (mp4v; MJPG for .avi), the fallback without ffmpeg: picture only.

    Writes to ``out`` (a temporary name) frames of ``size`` (width, height) at ``fps``; ``path``, the
    output it stands for, is the one named in the UserError raised when the writer does not open.
    """
    process = None

    def __init__(self, out: Path, path: Path, fps: float, size: tuple[int, int]):
        log.warning("WARNING: no ffmpeg found (pip install imageio-ffmpeg); writing video only, without audio")
        fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))
        self._writer: cv2.VideoWriter | None = cv2.VideoWriter(str(out), fourcc, fps, size)
        if not self._writer.isOpened():
            if not os.access(path.parent, os.W_OK):   # also false on a read-only file system
                raise unwritable(path, PermissionError(13, "not writable"))
            raise UserError(f"cannot write video {path}", "use an .mp4 or .avi output name")

    def write(self, frame: np.ndarray, times: int) -> None:
        for _ in range(times):
            self._writer.write(frame)

    def finish(self) -> None:
        """Close the file (OpenCV reports no failure here)."""
        self.kill()

    def kill(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


def cut_sound_to_picture(exe: str, path: Path, seconds: float, frame_seconds: float) -> None:
    """-shortest can let the sound run up to about a second past the last frame of a short output
    (a few frames, or a run stopped early): cut the file at ``path`` to ``seconds`` (the picture's
    length) without re-encoding when it is more than ``frame_seconds`` longer. The file is kept as
    it is if the cut fails."""
    duration = parse_duration(probe_text(path))
    if duration is None or duration <= seconds + frame_seconds:
        return
    cut = path.with_name(f".cut{path.name}")
    faststart = ["-movflags", "+faststart"] if path.suffix.lower() in _FASTSTART_EXTS else []
    proc = subprocess.run([exe, "-hide_banner", "-loglevel", "error", "-y", "-i", str(path),
                           "-map", "0", "-c", "copy", "-t", f"{seconds:.6f}", *faststart, str(cut)],
                          capture_output=True, timeout=600)
    if proc.returncode == 0 and cut.is_file() and cut.stat().st_size > 0:
        os.replace(cut, path)
    else:
        discard(cut)
