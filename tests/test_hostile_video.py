"""Hostile videos and faults: outputs that cannot be written, dropped-frame AVIs, damaged MP4s, stop signals.

Every case checks the exit code (2 = a bad request, 1 = an input that could not be read in full),
one line on stderr without a traceback, no temporary (hidden) file left in the output folder, and
inputs byte-identical afterwards. The media are made on the fly with ffmpeg, as small as possible.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from stylecam import cli, encoders, fileout, signals, sinks, sources
from stylecam.ffmpeg import parse_duration, parse_framecrc, parse_packets, probe_text, vfr_timing
from tests.fakes.media import FFMPEG, decode_frames, needs_ffmpeg
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and /proc")
TREE_AVI = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "tree.avi"


def ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def make_clip(path: Path, seconds: float = 1.2, size: str = "64x48", rate: int = 10) -> Path:
    """An H.264 testsrc clip (a key frame every 5 frames, so that damage is recovered from)."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}:duration={seconds}", "-c:v", "libx264",
           "-preset", "ultrafast", "-g", "5", "-pix_fmt", "yuv420p", str(path))
    return path


def digest(*paths: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def hidden_files(folder: Path) -> list[str]:
    """Temporary outputs (hidden names such as .NAME.partial.EXT) left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) if folder.is_dir() else []


def assert_one_line(stderr: str, *expected: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def stylecam_args(weights: Path, *args: str) -> list[str]:
    return [*args, "--weights-dir", str(weights), "--device", "cpu", "--no-progress"]


def run_cli(capsys, weights: Path, *args: str) -> tuple[int, str, str]:
    """`stylecam ARGS` in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = cli.main(stylecam_args(weights, *args))
    out, err = capsys.readouterr()
    return code, out, err


def frames_ffmpeg_decodes(path: Path) -> tuple[int, str]:
    """(frames ffmpeg decodes from ``path``, its error messages)."""
    proc = subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-i", str(path), "-map", "0:v:0",
                           "-f", "framecrc", "-"], capture_output=True, text=True)
    return sum(line.startswith("0,") for line in proc.stdout.splitlines()), proc.stderr.strip()


def duration(path: Path) -> float:
    return parse_duration(probe_text(path))


# ----- 5: outputs that cannot be written ------------------------------------------------------

def _mount_works(folder: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", 'mount -t tmpfs -o size=16k tmpfs "$1"', "sh", str(folder)],
                           capture_output=True)
    return probe.returncode == 0


def run_on_tmpfs(folder: Path, options: str, argv: list[str]) -> tuple[subprocess.CompletedProcess, list[str]]:
    """`stylecam ARGV` in a private mount namespace where ``folder`` is a fresh tmpfs mounted with
    ``options`` (e.g. "ro" or "size=4k"): (the process, the names in ``folder`` when it ended).
    Skips where mounting is not allowed."""
    folder.mkdir(exist_ok=True)
    if not _mount_works(folder):
        pytest.skip("no private mount namespace here (unshare -m / mount tmpfs not permitted)")
    listing = folder.with_name(folder.name + ".listing")
    script = ('mount -t tmpfs -o "$1" tmpfs "$2" || exit 99; folder=$2; listing=$3; shift 3; '
              '"$@"; code=$?; ls -A "$folder" > "$listing"; exit $code')
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", options, str(folder), str(listing),
                           sys.executable, "-m", "stylecam", *argv], capture_output=True, text=True, timeout=300)
    names = listing.read_text().split()
    listing.unlink()
    return proc, names


@needs_ffmpeg
@posix_only
def test_video_to_a_read_only_file_system_is_one_line_and_exit_2(tmp_path, weights):
    clip = make_clip(tmp_path / "clip.mp4")
    before = digest(clip)
    folder = tmp_path / "readonly"
    proc, left = run_on_tmpfs(folder, "ro,size=1m", stylecam_args(weights, str(clip), "-o", str(folder / "out.mp4")))
    assert proc.returncode == 2, proc.stderr
    assert left == []
    assert_one_line(proc.stderr, "stylecam: error:", str(folder / "out.mp4"), "Read-only file system",
                    "a folder you can write to")
    assert digest(clip) == before and sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "readonly", "weights"]


@needs_ffmpeg
@posix_only
def test_video_to_a_full_disk_is_one_line_and_exit_2_with_nothing_left(tmp_path, weights):
    clip = make_clip(tmp_path / "clip.mp4", seconds=3, size="128x96")
    before = digest(clip)
    folder = tmp_path / "full"
    proc, left = run_on_tmpfs(folder, "size=4k", stylecam_args(weights, str(clip), "-o", str(folder / "out.mp4")))
    assert proc.returncode == 2, proc.stderr
    assert left == []                                          # no temporary file fills the disk
    assert_one_line(proc.stderr, "stylecam: error:", "No space left on device", "free space")
    assert digest(clip) == before


@needs_ffmpeg
@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc, a folder where no file can be created")
def test_a_temporary_file_that_cannot_be_removed_does_not_hide_the_error(tmp_path, weights, capsys, monkeypatch):
    """On a read-only file system even a file that was never created cannot be unlinked (EROFS):
    here the real ffmpeg cannot create its output under /proc, and unlinking there fails that way."""
    clip = make_clip(tmp_path / "clip.mp4")
    before = digest(clip)
    real_unlink = pathlib.Path.unlink

    def read_only_unlink(self, missing_ok=False):
        if str(self).startswith("/proc/"):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(pathlib.Path, "unlink", read_only_unlink)
    code, out, err = run_cli(capsys, weights, str(clip), "-o", "/proc/stylecam-out.mp4")
    assert code == 2
    # the temporary output cannot be made there (the unlink of the cleanup fails too, and is not shown)
    assert_one_line(err, "stylecam: error: cannot write /proc/stylecam-out.mp4", "a folder you can write to")
    assert digest(clip) == before and not list(Path("/proc").glob(".stylecam-out*"))


@needs_ffmpeg
def test_an_encoder_pipe_that_fails_mid_video_is_one_line_and_exit_2(tmp_path, weights, capsys, monkeypatch):
    """The disk fills while frames are written: the pipe to ffmpeg fails after a few frames."""
    clip = make_clip(tmp_path / "clip.mp4")
    before = digest(clip)
    out_dir = tmp_path / "out"

    class FullDisk:
        def __init__(self, pipe):
            self.pipe, self.writes = pipe, 0

        def write(self, data):
            self.writes += 1
            if self.writes > 3:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.pipe.write(data)

        def close(self):
            self.pipe.close()

    class FillingDisk(encoders.FfmpegEncoder):
        def __init__(self, cmd):
            super().__init__(cmd)
            self.process.stdin = FullDisk(self.process.stdin)

    monkeypatch.setattr(sinks, "FfmpegEncoder", FillingDisk)
    code, out, err = run_cli(capsys, weights, str(clip), "-o", str(out_dir / "out.mp4"), "--workers", "1")
    assert code == 2
    assert_one_line(err, "stylecam: error: the video encoder stopped while writing", "free space")
    assert digest(clip) == before and not out_dir.exists()   # the folder it made is removed again


def test_discard_never_raises(tmp_path, monkeypatch):
    target = tmp_path / "x.tmp"
    target.write_bytes(b"x")
    fileout.discard(target)
    assert not target.exists()
    fileout.discard(target)     # not there: nothing to do

    def read_only(self, missing_ok=False):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(pathlib.Path, "unlink", read_only)
    fileout.discard(target)


# ----- 6: AVIs with dropped frames keep their timing ---------------------------------------

def make_dropped_frame_avi(path: Path, codec: str) -> Path:
    """27 slots at 10 fps (2.7 s); slots 5..14 dropped by the capture: 17 pictures. cinepak leaves
    the dropped slots as empty packets (as in old capture AVIs), mjpeg as gaps in the packet times."""
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=2.7,select='not(between(n\\,5\\,14))'",
           "-fps_mode", "passthrough", "-c:v", codec, str(path))
    return path


def packet_sizes(path: Path) -> list[int]:
    proc = subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy",
                           "-f", "framecrc", "-"], capture_output=True, text=True, check=True)
    return [int(line.split(",")[4]) for line in proc.stdout.splitlines() if line.startswith("0,")]


@needs_ffmpeg
@pytest.mark.parametrize("codec, empty_packets", [("cinepak", 10), ("mjpeg", 0)])
def test_an_avi_with_dropped_frames_keeps_its_length_and_is_not_called_damaged(tmp_path, weights, capsys,
                                                                              codec, empty_packets):
    clip = make_dropped_frame_avi(tmp_path / "dropped.avi", codec)
    sizes = packet_sizes(clip)                                 # what ffprobe would list
    assert sizes.count(0) == empty_packets and sum(s > 0 for s in sizes) == 17
    before = digest(clip)
    out = tmp_path / "out" / "styled.mp4"
    code, stdout, err = run_cli(capsys, weights, str(clip), "-o", str(out), "--json")
    assert code == 0 and err == ""                             # was: "decoded only 17 of the 27 frames", exit 1
    done = json.loads(stdout)["done"][0]
    assert done["frames"] == 17 and done["frames_missing"] == 0 and done["frames_lost"] == 0
    frames, errors = frames_ffmpeg_decodes(out)
    assert frames == 27 and errors == ""                       # 2.7 s at 10 fps, the dropped slots held
    assert duration(out) == pytest.approx(2.7, abs=0.05)       # was 1.7 s for cinepak
    assert digest(clip) == before and hidden_files(out.parent) == []


@needs_ffmpeg
@pytest.mark.skipif(not TREE_AVI.is_file(), reason="the sample video tree.avi is not here")
def test_the_tree_sample_lasts_as_long_as_its_input(tmp_path, weights, capsys):
    before = digest(TREE_AVI)
    out = tmp_path / "tree.mp4"
    code, stdout, err = run_cli(capsys, weights, str(TREE_AVI), "-o", str(out), "--json", "--size", "64")
    assert code == 0 and err == ""                              # was: "decoded only 68 of the 444 frames", exit 1
    done = json.loads(stdout)["done"][0]
    assert done["frames"] == 68 and done["frames_missing"] == 0
    assert duration(out) == pytest.approx(29.6, abs=0.1)        # was 4.5 s
    assert digest(TREE_AVI) == before


def test_empty_packets_are_frames_without_a_picture_unless_the_file_ends_early():
    text = ("#tb 0: 1/15\n0, 0, 0, 1, 900, 0x1\n0, 1, 1, 1, 0, 0x0\n0, 2, 2, 1, 0, 0x0\n"
            "0, 3, 3, 1, 700, 0x2\n0, 4, 4, 1, 0, 0x0\n0, 5, 5, 1, 0, 0x0\n")
    packets = parse_packets(text)
    assert packets.times == pytest.approx((0.0, 0.2)) and packets.end == pytest.approx(0.4)
    assert packets.dropped(6, 15.0) == 4          # 6 frames announced, 2 pictures: the packets reach that far
    assert packets.dropped(20, 15.0) == 0         # 20 announced: a truncated file, the rest are missing
    assert packets.dropped(None, 15.0) == 0
    assert parse_framecrc(text) == pytest.approx([0.0, 0.2])
    assert parse_packets("#tb 0: 1/15\n0, 0, 0, 1, 0, 0x0\n") is None     # no picture at all


def test_vfr_timing_holds_the_last_frame_until_the_end_and_knows_a_steady_rate_that_is_not_fps():
    # pictures every 2nd slot of a 15 fps AVI: steady, but at 7.5 fps
    rate, copies = vfr_timing([i * 2 / 15 for i in range(6)], 15.0)
    assert rate == 15.0 and copies == [2, 2, 2, 2, 2, 1]
    rate, copies = vfr_timing([i * 2 / 15 for i in range(6)], 15.0, end=12 / 15)
    assert copies == [2, 2, 2, 2, 2, 2] and sum(copies) / rate == pytest.approx(0.8)
    # a steady clip whose last slots were dropped: its last frame is held until the end
    rate, copies = vfr_timing([i / 10 for i in range(5)], 10.0, end=1.0)
    assert rate == pytest.approx(10.0) and copies == [1, 1, 1, 1, 6]
    assert vfr_timing([i / 10 for i in range(5)], 10.0, end=0.5) is None


# ----- 10: damage in the middle of an MP4 ------------------------------------------------------

def damage_middle(clip: Path, damaged: Path, first: int, count: int) -> Path:
    """A copy of a clip with one video stream whose packets ``first`` .. ``first + count - 1`` are zeroed.

    The packets lie one after another in the mdat box in the order ffmpeg lists them."""
    sizes = packet_sizes(clip)
    data = bytearray(clip.read_bytes())
    at = data.find(b"mdat") + 4
    assert int.from_bytes(data[at - 8:at - 4], "big") == 8 + sum(sizes)      # nothing else in mdat
    start, end = at + sum(sizes[:first]), at + sum(sizes[:first + count])
    data[start:end] = bytes(end - start)
    damaged.write_bytes(bytes(data))
    return damaged


@needs_ffmpeg
def test_damage_in_the_middle_of_an_mp4_skips_the_frames_and_goes_on(tmp_path, weights, capsys):
    # 45 frames, a key frame every 5: the group of frames 15..19 destroyed, the rest readable
    clip = damage_middle(make_clip(tmp_path / "whole.mp4", seconds=4.5), tmp_path / "damaged.mp4", 15, 5)
    readable, _ = frames_ffmpeg_decodes(clip)
    assert readable == 40                                        # what ffmpeg decodes
    before = digest(clip)
    out = tmp_path / "out" / "styled.mp4"
    code, stdout, err = run_cli(capsys, weights, str(clip), "-o", str(out), "--json")
    done = json.loads(stdout)["done"][0]
    assert code == 1                                            # read only in part
    assert done["frames"] == readable                           # was 15 of 45
    assert done["frames_lost"] == 5 and done["frames_missing"] == 0
    assert_one_line(err, "damaged.mp4: 5 damaged frame(s) could not be decoded and were skipped",
                    f"holds the other {readable} frames")
    frames, errors = frames_ffmpeg_decodes(out)
    assert frames == 45 and errors == ""                        # the lost frames' time is held: 4.5 s
    levels = [float(f.mean()) for f in decode_frames(out)]
    assert levels[14:20] == pytest.approx([levels[14]] * 6, abs=0.5)   # frame 14 held through 15..19
    assert digest(clip) == before and hidden_files(out.parent) == []


class FakeCapture:
    """A cv2.VideoCapture stand-in: read() follows ``script``: a frame's time in seconds (its pixels
    all equal the number of the read), or None for a frame that fails to decode."""

    def __init__(self, script, count):
        self.script, self.count, self.reads, self.time = list(script), count, 0, 0.0

    def isOpened(self):
        return True

    def read(self):
        self.reads += 1
        step = self.script.pop(0) if self.script else None
        if step is None:
            return False, None
        self.time = step
        return True, np.full((4, 6, 3), self.reads, np.uint8)

    def get(self, prop):
        return {cv2.CAP_PROP_FRAME_COUNT: self.count, cv2.CAP_PROP_FPS: 10.0,
                cv2.CAP_PROP_POS_MSEC: 1000.0 * self.time}.get(prop, 0.0)

    def release(self):
        pass


def test_the_video_source_skips_undecodable_frames_and_counts_them(monkeypatch):
    script = [None, 0.1, 0.2, None, None, None, 0.6, 0.7, None, None]
    capture = FakeCapture(script, count=10)
    monkeypatch.setattr(sources.cv2, "VideoCapture", lambda path: capture)
    source = sources.VideoFileSource("clip.mp4")
    frames = list(source)
    assert [int(f[0, 0, 0]) for f in frames] == [2, 3, 7, 8] and source.lost == 4
    assert source.lost_before == {0: 1, 2: 3}                  # the 2 failures at the end are the end
    assert capture.reads == 8 + sources.SKIP_AT_LEAST          # it stops soon after the end


def test_frames_lost_are_found_by_time_where_the_decoder_reorders_them(monkeypatch):
    """The decoder fails on the 4th packet (a reference frame), then still delivers the frames
    shown before it: by their times, only the frame shown at 0.5 s (file time 1.5 s) is lost."""
    script = [0.0, 0.1, 0.2, None, 0.3, 0.4, 0.6]
    monkeypatch.setattr(sources.cv2, "VideoCapture", lambda path: FakeCapture(script, count=7))
    source = sources.VideoFileSource("clip.mp4", picture_times=[1.0 + i / 10 for i in range(7)])
    assert len(list(source)) == 6
    assert source.lost_before == {5: 1} and source.lost == 1
    # a time that matches none of the pictures: the decoder's failures count
    monkeypatch.setattr(sources.cv2, "VideoCapture", lambda path: FakeCapture([0.0, None, 9.9], count=3))
    source = sources.VideoFileSource("clip.mp4", picture_times=[0.0, 0.1, 0.2])
    assert len(list(source)) == 2 and source.lost_before == {1: 1}


@needs_ffmpeg
def test_the_writer_holds_the_frame_before_frames_that_were_lost(tmp_path):
    writer = sinks.VideoWriter(tmp_path / "held.mp4", 10, (16, 16), copies=[1, 2, 1, 1, 1])
    writer.write(np.full((16, 16, 3), 30, np.uint8), lost_before=1)     # the first: it stands in itself
    writer.write(np.full((16, 16, 3), 220, np.uint8), lost_before=2)    # 2 lost: copies 1 + 1 of the 30s
    writer.close()
    levels = _levels(tmp_path / "held.mp4")
    assert len(levels) == 1 + 2 + 2 + 1 and writer.frames == 6
    assert all(abs(v - 30) < 8 for v in levels[:5]) and abs(levels[5] - 220) < 8


def _levels(path: Path) -> list[int]:
    return [int(np.median(frame)) for frame in decode_frames(path)]


# ----- 8: stop signals -------------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _encoder_of(pid: int) -> int | None:
    """The pid of the ffmpeg child of ``pid`` that reads raw frames (the video encoder), or None."""
    for child in _children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"rawvideo" in cmdline:
            return child
    return None


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _default_stop_signals() -> None:
    """In the child before exec: stop signals as a terminal gives them (a test run in the background
    of a shell would otherwise pass SIGINT on as ignored)."""
    for signum in signals.STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)


@needs_ffmpeg
@posix_only
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the encoder process")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["INT", "TERM", "HUP"])
def test_a_stop_signal_leaves_a_playable_renamed_video_and_no_encoder(tmp_path, weights, signum):
    clip = make_clip(tmp_path / "long.mp4", 120, "320x240", 25)     # 3000 frames: far from done when stopped
    before = digest(clip)
    out = tmp_path / "out" / "styled.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "stylecam", *stylecam_args(weights, str(clip), "-o", str(out),
                                                                                  "--json")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_stop_signals)
    try:
        encoder, deadline = None, time.monotonic() + 120
        while encoder is None and proc.poll() is None and time.monotonic() < deadline:
            encoder = _encoder_of(proc.pid)
            time.sleep(0.02)
        assert encoder is not None, "the video encoder never started"
        time.sleep(0.3)                                       # a few frames in
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signum, stderr
    how = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
    line = assert_one_line(stderr, f"stylecam: {how}: {out} holds the", "frames done so far (playable)")
    written = json.loads(stdout)["done"][-1]["frames"]
    assert 0 < written < 3000 and f"holds the {written} frames" in line
    assert not _alive(encoder)
    frames, errors = frames_ffmpeg_decodes(out)
    assert frames == written and errors == ""
    assert hidden_files(out.parent) == [] and digest(clip) == before


def test_a_stop_signal_in_a_deferred_block_is_raised_when_the_block_ends():
    with signals.stop_on_signals():
        log = []
        with pytest.raises(signals.StopSignal) as stop:
            with signals.deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                log.append("finalised")                   # not cut short
        assert log == ["finalised"] and stop.value.signum == signal.SIGTERM
        assert signals.exit_code() == 143 and signals.describe() == "stopped by SIGTERM"
        os.kill(os.getpid(), signal.SIGHUP)               # already stopping: ignored
    assert signals.received() is None and signals.exit_code() == 130


def test_at_once_inside_a_deferred_block_raises_a_noted_signal_on_entering():
    with signals.stop_on_signals():
        log = []
        with pytest.raises(signals.StopSignal) as stop:
            with signals.deferred():
                os.kill(os.getpid(), signal.SIGHUP)
                log.append("noted")
                with signals.at_once():
                    log.append("never")
        assert log == ["noted"] and stop.value.name == "SIGHUP" and signals.exit_code() == 129


def test_signals_that_were_ignored_stay_ignored():
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with signals.stop_on_signals():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)
