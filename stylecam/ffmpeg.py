"""What ffmpeg says about media files, read without decoding a picture: the streams, duration,
pixel aspect and packet times of a file, and how to keep a variable frame rate at a constant one.

Used by the sources (a file without a video stream), the runner (frame times) and the sinks (audio,
pixel aspect, the encoders a binary has). The binary is imageio-ffmpeg's, else one on PATH; without
one every probe answers "nothing known" (None, "" or []). Times are seconds from the file's start.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np


def ffmpeg_exe() -> str | None:
    """Path of an ffmpeg binary: imageio-ffmpeg's, else one on PATH, else None."""
    if os.environ.get("STYLECAM_NO_FFMPEG"):
        return None
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:
        return shutil.which("ffmpeg")


_ENCODERS: dict[str, set[str]] = {}


def ffmpeg_encoders(exe: str) -> set[str]:
    """Names of the encoders of the ffmpeg binary ``exe`` (``ffmpeg -encoders``), cached."""
    if exe not in _ENCODERS:
        proc = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True,
                              errors="replace", timeout=30)
        _ENCODERS[exe] = {m.group(1) for m in re.finditer(r"^ [VAS][\w.]{5} (\S+)", proc.stdout, re.M)}
    return _ENCODERS[exe]


def probe_text(path: str | Path) -> str:
    """What ``ffmpeg -i path`` prints about the file's streams ("" without ffmpeg)."""
    exe = ffmpeg_exe()
    if exe is None:
        return ""
    proc = subprocess.run([exe, "-hide_banner", "-i", str(path)], capture_output=True, text=True,
                          errors="replace", timeout=30)
    return proc.stderr


def stream_kinds(text: str) -> list[str]:
    """Stream kinds in ``ffmpeg -i`` output, e.g. ["video", "audio"]."""
    return [m.group(1).lower() for m in re.finditer(r"Stream #\d+:\d+.*?: (Video|Audio|Subtitle|Data):", text)]


def probe_streams(path: str | Path) -> list[str]:
    """Stream kinds of a media file, e.g. ["video", "audio"], parsed from ``ffmpeg -i`` (no ffprobe)."""
    return stream_kinds(probe_text(path))


def has_audio(path: str | Path) -> bool:
    """Whether a media file has an audio stream (False without ffmpeg)."""
    return "audio" in probe_streams(path)


def parse_duration(text: str) -> float | None:
    """Seconds of "Duration: HH:MM:SS.ss" in ``ffmpeg -i`` output; None when not given (N/A)."""
    m = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", text)
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) if m else None


def parse_sample_aspect(text: str) -> tuple[int, int] | None:
    """Sample (pixel) aspect ratio of the first video stream in ``ffmpeg -i`` output, e.g. (32, 27)
    for "[SAR 32:27 DAR 16:9]"; None when square (1:1), unknown (0:1) or not given."""
    for line in text.splitlines():
        if re.search(r"Stream #\d+:\d+.*?: Video:", line):
            m = re.search(r"\bSAR (\d+):(\d+)", line)
            if not m:
                return None
            num, den = int(m.group(1)), int(m.group(2))
            return None if num == 0 or den == 0 or num == den else (num, den)
    return None


@dataclass(frozen=True)
class VideoPackets:
    """The packets of a file's first video stream, read without decoding (seconds from the file's start).

    times: presentation times, sorted, of the packets that hold a picture. An empty packet is a frame
    the capture dropped (dropped-frame AVI): it holds no picture, the one before stays on screen.
    end: when the last packet shown, empty or not, stops showing (its time plus its duration).
    """
    times: tuple[float, ...]
    end: float

    def dropped(self, announced: int | None, fps: float) -> int:
        """How many of the ``announced`` frames (the container's count, at ``fps``) hold no picture:
        frames a capture dropped (AVI), which no decoder delivers. Counted only when the packets
        reach as far as that count says (within 2 frames and 2 %); in a file that ends early
        (truncated) the frames not there are missing, not dropped."""
        if not announced:
            return 0
        reach = (self.end - self.times[0]) * fps
        if abs(reach - announced) > max(2.0, 0.02 * announced):
            return 0
        return max(0, announced - len(self.times))


def framecrc_rows(text: str) -> tuple[float | None, list[list[str]]]:
    """(time base of stream 0 in seconds or None, the fields of each of its packet lines) from ffmpeg's
    framecrc output ("#tb 0: 1/12800", then "0, dts, pts, duration, size, crc[, F=0x..]"); lines whose
    pts, duration and size are not whole numbers are left out."""
    base, rows = None, []
    for line in text.splitlines():
        m = re.match(r"#tb 0: (\d+)/(\d+)", line)
        if m:
            base = int(m.group(1)) / int(m.group(2))
        elif line.startswith("0,"):
            fields = [f.strip() for f in line.split(",")]
            if len(fields) > 4 and all(f.lstrip("-").isdigit() for f in fields[2:5]):
                rows.append(fields)
    return base, rows


def parse_packets(text: str) -> VideoPackets | None:
    """VideoPackets of stream 0 from the output of ffmpeg's framecrc muxer ("#tb 0: 1/12800", then
    "0, dts, pts, duration, size, crc"); None when there is no time base or no packet with a picture.
    ffmpeg counts times from the file's start time (its earliest stream), so the first is how long
    after the file's start the picture starts. Packets before that start (negative times: those an
    edit list cuts away, which are not decoded) are left out."""
    base, rows = framecrc_rows(text)
    packets = [(int(f[2]), int(f[3]), int(f[4])) for f in rows if int(f[2]) >= 0]   # pts, duration, size
    pictures = sorted(pts for pts, _, size in packets if size > 0)
    if base is None or not pictures:
        return None
    last_pts, last_duration, _ = max(packets)   # durations follow the decoding order: take the last shown's
    return VideoPackets(times=tuple(t * base for t in pictures), end=(last_pts + max(last_duration, 0)) * base)


def parse_framecrc(text: str) -> list[float] | None:
    """Presentation times in seconds, sorted, of the stream-0 packets with a picture in the output of
    ffmpeg's framecrc muxer (see parse_packets); None when there are none."""
    packets = parse_packets(text)
    return None if packets is None else list(packets.times)


def probe_packets(path: str | Path) -> VideoPackets | None:
    """The VideoPackets of ``path``'s first video stream, read without decoding (ffmpeg -c copy -f
    framecrc); None without ffmpeg or when they cannot be read."""
    text = framecrc_text(path)
    return None if text is None else parse_packets(text)


def framecrc_text(path: str | Path, timeout: float = 120) -> str | None:
    """ffmpeg's framecrc listing of ``path``'s first video stream, read by stream copy (no decoding):
    one line per packet; None without ffmpeg, or when ffmpeg cannot run or takes over ``timeout`` s."""
    exe = ffmpeg_exe()
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, "-hide_banner", "-loglevel", "error", "-i", str(path), "-map", "0:v:0",
                               "-c", "copy", "-f", "framecrc", "-"], capture_output=True, text=True,
                              errors="replace", timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout


def probe_frame_times(path: str | Path) -> list[float] | None:
    """Presentation times (s, from the start of the file) of the video frames of ``path`` that hold a
    picture, read from its packets without decoding; None without ffmpeg or when they cannot be read."""
    packets = probe_packets(path)
    return None if packets is None else list(packets.times)


#: highest frame rate a variable-frame-rate clip is written at (frames closer together than that share a tick)
MAX_VFR_FPS = 60.0


def vfr_timing(times: Sequence[float], fps: float, max_fps: float = MAX_VFR_FPS,
               end: float | None = None) -> tuple[float, list[int]] | None:
    """How to write a clip whose frames start at ``times`` (s, sorted) at a constant rate.

    None when the clip is steady at ``fps``: every gap within 10 % of the median, the median within
    10 % of 1 / fps, and the last frame showing for at most 1.5 frame times until ``end``. Then write
    each frame once at ``fps``. Otherwise (output fps, copies of each frame): the rate is that of the
    shortest gaps (5th percentile, at least ``fps``, at most ``max_fps``) and frame i is repeated so
    that it starts within half a frame of times[i]; no frame is dropped (one that comes too early
    starts a tick later). end: when the last frame stops showing (s; None: one tick after it starts),
    e.g. after the empty frames that end a dropped-frame AVI.
    """
    stamps = np.asarray(times, dtype=np.float64)
    gaps = np.diff(stamps)
    if len(stamps) < 3 or not np.all(np.isfinite(gaps)):
        return None
    median = float(np.median(gaps))
    tail = None if end is None or not np.isfinite(end) else end - stamps[-1]
    if np.all(np.abs(gaps - median) <= 0.1 * median) and abs(median * fps - 1.0) <= 0.1 \
            and (tail is None or tail <= 1.5 / fps):
        return None
    positive = gaps[gaps > 0]
    if positive.size == 0:
        return None
    rate = float(min(max_fps, max(fps, 1.0 / np.percentile(positive, 5))))
    index = np.arange(len(stamps))
    ticks = np.round((stamps - stamps[0]) * rate).astype(np.int64)
    ticks = np.maximum.accumulate(ticks - index) + index          # strictly increasing: never two in a tick
    last = ticks[-1] + 1 if tail is None else max(ticks[-1] + 1, int(round((end - stamps[0]) * rate)))
    copies = np.diff(np.append(ticks, last))
    return rate, copies.astype(int).tolist()
