"""Media made on the fly (frames; clips with the ffmpeg of imageio-ffmpeg and its lavfi test patterns),
and read back."""
from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from stylecam import sinks

FFMPEG = sinks.ffmpeg_exe()
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="no ffmpeg binary")


def grey(value: int, h: int = 8, w: int = 8) -> np.ndarray:
    """A uniform uint8 BGR (h, w, 3) frame of grey level ``value`` (0..255)."""
    return np.full((h, w, 3), value, np.uint8)


def make_clip(path: Path, frames: int = 12, size: str = "64x48", audio: bool = True, sar: str | None = None) -> Path:
    """A short H.264 clip (testsrc pattern, 10 fps) with an optional 440 Hz AAC track and a sample
    aspect ratio such as "32/27"."""
    cmd = [FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
           "-i", f"testsrc=size={size}:rate=10:duration={frames / 10}"]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={frames / 10}", "-c:a", "aac"]
    if sar:
        cmd += ["-vf", f"setsar={sar}"]
    cmd += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-frames:v", str(frames), str(path)]
    subprocess.run(cmd, check=True)
    return path


def decode_frames(path: Path) -> list[np.ndarray]:
    """Every frame OpenCV decodes from the video file at ``path``, in order: uint8 BGR (H, W, 3)."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    cap.release()
    return frames


def count_frames(path: Path) -> int:
    """The number of frames OpenCV decodes from the video file at ``path``."""
    return len(decode_frames(path))
