"""Video files: every frame and the audio kept, interrupted and failed writes, odd sizes, GIFs,
truncated and audio-only inputs, and the encoder kept apart from a terminal's Ctrl-C."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stylecam import runner, sinks
from stylecam.config import RunConfig
from stylecam.errors import UserError
from stylecam.pipeline import Stylizer
from stylecam.sources import SourceError, VideoFileSource, prefetch
from tests.fakes.engine import engine, interrupt_at_call
from tests.fakes.media import FFMPEG, count_frames, make_clip, needs_ffmpeg


# ----- decoding and writing -------------------------------------------------------------------

@needs_ffmpeg
def test_video_round_trip_keeps_every_frame_and_audio(tmp_path, weights):
    clip = make_clip(tmp_path / "clip.mp4", frames=12)
    assert sinks.probe_streams(clip) == ["video", "audio"]
    code, summary = runner.run(RunConfig(engine=engine(weights, "wave"), sources=(str(clip),), progress=False,
                                         batch=4))
    out = tmp_path / "clip_stylised.mp4"
    assert code == 0 and summary["done"][0]["output"] == str(out)
    assert sinks.has_audio(out)
    assert count_frames(out) == 12
    assert not list(tmp_path.glob(".*partial*"))
    # content: the first frame is the input's first frame + 10 (within codec error)
    src = next(iter(VideoFileSource(clip))).astype(int)
    got = next(iter(VideoFileSource(out))).astype(int)
    assert got.shape == src.shape
    assert abs((got - np.clip(src + 10, 0, 255)).mean()) < 3


def test_prefetch_keeps_order_and_raises_producer_errors():
    assert list(prefetch(iter(range(50)), maxsize=3)) == list(range(50))

    def bad():
        yield 1
        raise RuntimeError("decode failed")

    with pytest.raises(RuntimeError, match="decode failed"):
        list(prefetch(bad()))


def test_video_writer_without_ffmpeg_warns_and_writes_video_only(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("STYLECAM_NO_FFMPEG", "1")
    writer = sinks.VideoWriter(tmp_path / "v.mp4", 10, (32, 24), audio_from=None)
    for i in range(5):
        writer.write(np.full((24, 32, 3), 40 * i, np.uint8))
    assert writer.close() == tmp_path / "v.mp4"
    assert count_frames(tmp_path / "v.mp4") == 5
    assert "no ffmpeg found" in caplog.text


def test_video_writer_with_no_frames_is_an_error(tmp_path):
    writer = sinks.VideoWriter(tmp_path / "empty.mp4", 10, (32, 24))
    with pytest.raises(UserError, match="no frames"):
        writer.close()
    assert not list(tmp_path.iterdir())


def gradient_frame(height: int, width: int) -> np.ndarray:
    """uint8 BGR (H, W, 3): blue rises left to right, green top to bottom, red constant 200."""
    ys, xs = np.mgrid[0:height, 0:width]
    return np.dstack([xs * 255 // (width - 1), ys * 255 // (height - 1),
                      np.full_like(xs, 200)]).astype(np.uint8)


def test_pad_to_even_repeats_the_last_row_and_column():
    frame = gradient_frame(5, 7)
    padded = sinks.pad_to_even(frame)
    assert padded.shape == (6, 8, 3)
    np.testing.assert_array_equal(padded[:5, :7], frame)
    np.testing.assert_array_equal(padded[5, :7], frame[4])
    np.testing.assert_array_equal(padded[:5, 7], frame[:, 6])
    assert sinks.pad_to_even(padded) is padded


@needs_ffmpeg
def test_odd_sized_video_gets_its_edge_repeated_not_a_black_line(tmp_path):
    frame = gradient_frame(25, 33)
    writer = sinks.VideoWriter(tmp_path / "odd.mp4", 10, (33, 25))
    for _ in range(3):
        writer.write(frame)
    writer.close()
    got = next(iter(VideoFileSource(tmp_path / "odd.mp4"))).astype(int)
    assert got.shape == (26, 34, 3)
    assert np.abs(got[:25, :33] - frame).mean() < 4
    # the added column and row repeat the frame's last ones (within codec error), not black
    assert np.abs(got[:25, 33] - frame[:, 32]).mean() < 6
    assert np.abs(got[25, :33] - frame[24]).mean() < 6


@needs_ffmpeg
def test_video_to_animated_gif_keeps_size_and_every_frame(tmp_path, weights):
    clip = tmp_path / "odd.mkv"  # FFV1 stores odd sizes exactly
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc=size=45x31:rate=10:duration=0.8", "-f", "lavfi", "-i", "sine=duration=0.8",
                    "-c:v", "ffv1", "-c:a", "pcm_s16le", str(clip)], check=True)
    out = tmp_path / "loop.gif"
    code, summary = runner.run(RunConfig(engine=engine(weights, "wave"), sources=(str(clip),), output=str(out),
                                         progress=False))
    assert code == 0 and summary["done"][0]["output"] == str(out) and not summary["done"][0]["audio"]
    assert count_frames(out) == 8 and sinks.probe_streams(out) == ["video"]
    src = next(iter(VideoFileSource(clip))).astype(int)
    got = next(iter(VideoFileSource(out))).astype(int)
    assert got.shape == src.shape == (31, 45, 3)
    assert np.abs(got - np.clip(src + 10, 0, 255)).mean() < 6  # the fake wave adds 10; palette error
    assert not list(tmp_path.glob(".*partial*"))


def test_gif_without_ffmpeg_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLECAM_NO_FFMPEG", "1")
    with pytest.raises(UserError, match="animated GIF.*needs ffmpeg.*imageio-ffmpeg"):
        sinks.VideoWriter(tmp_path / "a.gif", 10, (32, 24))


@needs_ffmpeg
def test_video_with_stabilize_keeps_every_frame_and_reports_it(tmp_path, weights):
    clip = make_clip(tmp_path / "clip.mp4", frames=9, audio=False)
    out = tmp_path / "held.mp4"
    summary = runner.process_video(str(clip), out, Stylizer(["wave"], weights_dir=weights, device="cpu"),
                                   progress=False, workers=2, stabilize=0.6)
    assert summary["frames"] == 9 and summary["stabilize"] == 0.6 and count_frames(out) == 9
    assert summary["stabilise"] == 0.6 and summary["stylise_ms_per_frame"] == summary["stylize_ms_per_frame"] > 0


# ----- interrupted, failed, truncated and audio-only ------------------------------------------

@needs_ffmpeg
@pytest.mark.parametrize("workers", [1, 2])
def test_interrupted_write_leaves_a_playable_file(tmp_path, weights, monkeypatch, workers):
    clip = make_clip(tmp_path / "clip.mp4", frames=20)
    interrupt_at_call(monkeypatch, 8)
    out = tmp_path / "out" / "styled.mp4"
    code, summary = runner.run(RunConfig(engine=engine(weights), sources=(str(clip),), output=str(out),
                                         progress=False, workers=workers))
    assert code == 130
    done = summary["done"][-1]["frames"]
    assert summary["done"][-1]["interrupted"]
    # one worker: exactly the 7 frames before the interrupted call. Two: the calls of two neighbouring
    # frames can start in either order, so the 8th call is frame 7, 8 or 9, and the frame still in
    # flight on the other worker may be lost with it: 5 to 8 frames are written, in order.
    assert done == 7 if workers == 1 else 5 <= done <= 8
    assert out.is_file() and count_frames(out) == done
    assert not list(out.parent.glob(".*partial*"))


@needs_ffmpeg
def test_error_mid_video_removes_the_partial_file(tmp_path, weights, monkeypatch):
    clip = make_clip(tmp_path / "clip.mp4", frames=10, audio=False)
    interrupt_at_call(monkeypatch, 4, RuntimeError("inference failed"))
    out = tmp_path / "o" / "x.mp4"
    with pytest.raises(RuntimeError, match="inference failed"):
        runner.process_video(str(clip), out, Stylizer(["wave"], weights_dir=weights, device="cpu"), progress=False)
    assert not out.exists() and not list(out.parent.glob(".*partial*"))


@needs_ffmpeg
def test_truncated_video_warns_keeps_the_frames_and_exits_1(tmp_path, weights, caplog):
    whole = tmp_path / "whole.mp4"
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc=size=64x48:rate=10:duration=5", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    "-movflags", "+faststart", str(whole)], check=True)
    cut = tmp_path / "cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[:len(data) * 2 // 3])
    code, summary = runner.run(RunConfig(engine=engine(weights), sources=(str(cut),), progress=False))
    frames = summary["done"][0]["frames"]
    assert code == 1 and summary["incomplete"] == [str(cut)] and 0 < frames < 47
    assert count_frames(tmp_path / "cut_stylised.mp4") == frames
    assert f"decoded only {frames} of the 50 frames" in caplog.text
    code, summary = runner.run(RunConfig(engine=engine(weights), sources=(str(whole),), output=str(tmp_path / "f.mp4"),
                                         max_frames=10, progress=False))
    assert code == 0 and summary["incomplete"] == [] and summary["done"][0]["frames"] == 10


def test_a_small_frame_count_shortfall_is_not_reported():
    check = runner._check_complete
    assert check("a", 98, 100, None, Path("o"))["frames_missing"] == 0        # 2 frames: an estimate
    assert check("a", 985, 1000, None, Path("o"))["frames_missing"] == 0      # 1.5 %
    assert check("a", 97, 100, None, Path("o"))["frames_missing"] == 3
    assert check("a", 10, 100, 10, Path("o"))["frames_missing"] == 0          # --max-frames
    assert check("a", 10, None, None, Path("o"))["frames_missing"] == 0       # nothing announced


@needs_ffmpeg
@pytest.mark.parametrize("name", ["tune.m4a", "tune.mp4"])
def test_audio_only_file_says_it_has_no_video_stream(tmp_path, name):
    path = tmp_path / name
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=duration=0.5",
                    "-c:a", "aac", str(path)], check=True)
    with pytest.raises(SourceError, match="has no video stream \\(only audio\\)"):
        VideoFileSource(path)


@pytest.mark.parametrize("platform, expected", [
    ("linux", {"start_new_session": True}), ("darwin", {"start_new_session": True}),
    ("win32", {"creationflags": 0x200}),                       # CREATE_NEW_PROCESS_GROUP
])
def test_the_encoder_is_kept_apart_from_the_terminals_ctrl_c(platform, expected):
    assert sinks.apart_from_ctrl_c(platform) == expected


CTRL_C_CHECK = """
import os, signal, sys, time
import numpy as np
from stylecam import sinks
signal.signal(signal.SIGINT, lambda *a: None)               # this process lives on; the question is ffmpeg
writer = sinks.VideoWriter(sys.argv[1], 10, (32, 24))
writer.write(np.zeros((24, 32, 3), np.uint8))
os.killpg(os.getpgrp(), signal.SIGINT)                      # what a terminal's Ctrl-C does to its group
time.sleep(0.3)
alive = writer.encoder.process.poll() is None
writer.write(np.zeros((24, 32, 3), np.uint8))
writer.close()
print("alive" if alive else "killed")
"""


@needs_ffmpeg
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")
def test_a_ctrl_c_sent_to_the_process_group_leaves_the_encoder_running(tmp_path):
    # in a process of its own session, so that the SIGINT reaches nothing else
    proc = subprocess.run([sys.executable, "-c", CTRL_C_CHECK, str(tmp_path / "x.mp4")], capture_output=True,
                          text=True, timeout=120, start_new_session=True, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "alive" and count_frames(tmp_path / "x.mp4") == 2
