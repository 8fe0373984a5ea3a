"""Long videos cut into segments at key frames (ffmpeg stream copy, nothing re-encoded), and the
stylized segments joined again with the input's sound.

A segment starts at a key frame, so it decodes on its own; its frames are the packets from that
key frame up to the next cut. The joined file holds the same frames at the same times as the
single-machine output of the same input: every segment is encoded at the input's frame rate and
the concat demuxer lays them end to end (stream copy), then the sound of the input is added as
``stylecam.sinks.VideoWriter`` adds it (skipped by the picture's start, padded with silence, cut
where the picture ends).

Only steady-rate videos whose every packet holds a picture are cut (``can_split``); the others,
and outputs whose container cannot take a stream copy of H.264 (GIF, WebM, AVI), go whole to one
worker.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from stylecam.encoders import audio_codec_args
from stylecam.ffmpeg import (ffmpeg_encoders, ffmpeg_exe, framecrc_rows, framecrc_text, probe_packets, probe_text,
                             stream_kinds, vfr_timing)

#: output containers a joined file can be written to (the segments are H.264 in MP4)
JOINABLE_EXTS = {".mp4", ".mov", ".m4v", ".mkv"}
#: containers the cut segments are written in (stream copy of the input's video)
SEGMENT_EXT = ".mp4"


class SegmentError(Exception):
    """ffmpeg could not cut or join a video (the message ends with ffmpeg's last error line)."""


@dataclass(frozen=True)
class PacketLayout:
    """The packets of a file's first video stream in file (decoding) order, read without decoding.

    pts: presentation times in ``time_base`` units; sizes: bytes (0 = a frame the capture dropped,
    without a picture); keys: indices of the key packets (where decoding can start).
    """
    time_base: float
    pts: tuple[int, ...]
    sizes: tuple[int, ...]
    keys: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.pts)


def parse_layout(text: str) -> PacketLayout | None:
    """PacketLayout of stream 0 from ffmpeg's framecrc output ("#tb 0: 1/12800", then
    "0, dts, pts, duration, size, crc[, F=0x..]": packets with flags other than "key" alone carry an
    F= field, key packets have bit 0 set); None without a time base or a packet."""
    base, rows = framecrc_rows(text)
    pts, sizes, keys = [], [], []
    for fields in rows:
        flags = next((int(f[2:], 16) for f in fields[6:] if f.startswith("F=")), 1)
        if flags & 1:
            keys.append(len(pts))
        pts.append(int(fields[2]))
        sizes.append(int(fields[4]))
    if base is None or not pts:
        return None
    return PacketLayout(time_base=base, pts=tuple(pts), sizes=tuple(sizes), keys=tuple(keys))


def probe_layout(path: str | Path) -> PacketLayout | None:
    """The PacketLayout of ``path``'s first video stream (ffmpeg -c copy -f framecrc); None without
    ffmpeg or when it cannot be read."""
    text = framecrc_text(path, timeout=600)
    return None if text is None else parse_layout(text)


def can_split(layout: PacketLayout | None, fps: float, output_ext: str) -> bool:
    """Whether a video of this layout may be cut: ffmpeg present, every packet a picture at a
    time >= 0 (no dropped frames, nothing cut by an edit list), a steady rate (vfr_timing: None),
    more than one key frame, and an output container the joined segments can be copied into."""
    if layout is None or output_ext.lower() not in JOINABLE_EXTS or len(layout.keys) < 2:
        return False
    if min(layout.sizes) <= 0 or min(layout.pts) < 0:
        return False
    times = sorted(t * layout.time_base for t in layout.pts)
    return vfr_timing(times, fps) is None


def plan_segments(keys: Sequence[int], frames: int, target: int) -> list[tuple[int, int]]:
    """Segments of a video of ``frames`` packets: [(first packet, packet count)], in order, covering
    all of them. A segment is cut at the first key packet (index in ``keys``) at least ``target``
    packets after the start of the one before, unless fewer than target // 2 would remain after
    it (no short tail). One segment [(0, frames)] when no cut fits."""
    if target < 1:
        raise ValueError(f"target must be at least 1 frame, got {target}")
    cuts = [0]
    for key in sorted(keys):
        if key - cuts[-1] >= target and frames - key >= max(1, target // 2):
            cuts.append(key)
    ends = cuts[1:] + [frames]
    return [(start, end - start) for start, end in zip(cuts, ends)]


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=3600)
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit code {proc.returncode}"
        raise SegmentError(f"{what}: {last}")


def split(path: str | Path, segments: Sequence[tuple[int, int]], folder: str | Path) -> list[Path]:
    """Cut the first video stream of ``path`` at the first packet of each of ``segments`` (after the
    first) with a stream copy; returns the segment files in ``folder`` (part00000.mp4, ...), each
    with timestamps starting at 0 and no sound. Raises SegmentError when ffmpeg fails or a segment
    does not hold the packets planned."""
    exe = ffmpeg_exe()
    if exe is None:
        raise SegmentError("cutting a video into segments needs ffmpeg (pip install imageio-ffmpeg)")
    folder = Path(folder)
    cuts = ",".join(str(start) for start, _ in segments[1:])
    pattern = folder / f"part%05d{SEGMENT_EXT}"
    cmd = [exe, "-hide_banner", "-loglevel", "error", "-y", "-i", str(path), "-map", "0:v:0", "-c", "copy",
           "-f", "segment", "-reset_timestamps", "1"]
    if cuts:
        cmd += ["-segment_frames", cuts]
    else:     # one segment: a plain copy
        cmd += ["-segment_time", "1e9"]
    _run(cmd + [str(pattern)], f"cannot cut {path} into segments")
    parts = [folder / f"part{i:05d}{SEGMENT_EXT}" for i in range(len(segments))]
    for part, (start, count) in zip(parts, segments):
        layout = probe_layout(part) if part.is_file() else None
        if layout is None or layout.count != count:
            got = "nothing" if layout is None else f"{layout.count} packets"
            raise SegmentError(f"cutting {path} at packet {start} gave {got}, not the {count} planned")
    return parts


def join(parts: Sequence[str | Path], out: str | Path, fps: float, frames: int, audio_from: str | Path | None,
         video_start: float = 0.0) -> bool:
    """Lay the video of ``parts`` (H.264 files of one size and rate, in order) end to end into
    ``out`` (stream copy), with the sound of ``audio_from`` when it has some: re-encoded for the
    container, ``video_start`` seconds skipped (where the input's picture starts), padded with
    silence and cut at frames / fps. Returns whether sound was added. Raises SegmentError."""
    exe = ffmpeg_exe()
    if exe is None:
        raise SegmentError("joining segments needs ffmpeg (pip install imageio-ffmpeg)")
    out = Path(out)
    listing = out.with_name(f".{out.name}.parts.txt")
    listing.write_text("".join(f"file '{_concat_quoted(Path(p).resolve())}'\n" for p in parts))
    try:
        cmd = [exe, "-hide_banner", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing)]
        audio = []
        if audio_from is not None and "audio" in stream_kinds(probe_text(audio_from)):
            codec = audio_codec_args(out.suffix.lower(), ffmpeg_encoders(exe))
            if codec is not None:
                skip = ["-ss", f"{video_start:.6f}"] if video_start >= 0.0005 else []
                cmd += [*skip, "-i", str(audio_from)]
                audio = ["-map", "1:a:0", *codec, "-af", "apad"]
        cmd += ["-map", "0:v:0", *audio, "-c:v", "copy", "-t", f"{frames / fps:.6f}"]
        if out.suffix.lower() in (".mp4", ".mov", ".m4v"):
            cmd += ["-movflags", "+faststart"]
        if out.suffix.lower() == ".mkv":
            cmd += ["-f", "matroska"]
        elif out.suffix.lower() in (".mp4", ".m4v"):
            cmd += ["-f", "mp4"]
        elif out.suffix.lower() == ".mov":
            cmd += ["-f", "mov"]
        _run(cmd + [str(out)], f"cannot join the segments of {out}")
    finally:
        listing.unlink(missing_ok=True)
    joined = probe_packets(out)
    if joined is None or len(joined.times) != frames:
        got = "nothing readable" if joined is None else f"{len(joined.times)} frames"
        raise SegmentError(f"joining the segments of {out} gave {got}, not the {frames} expected")
    return bool(audio)


def _concat_quoted(path: Path) -> str:
    """A path as the concat demuxer's list file reads it inside single quotes."""
    return str(path).replace("'", "'\\''")
