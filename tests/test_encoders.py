"""stylecam.encoders: the ffmpeg command line, the sound arguments, and the two encoders' own ends."""
from __future__ import annotations

import numpy as np
import pytest

from stylecam import encoders
from stylecam.ffmpeg import ffmpeg_exe

FFMPEG = ffmpeg_exe()
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="no ffmpeg binary")


def test_encode_command_reads_raw_bgr_and_names_codec_aspect_and_output_last():
    cmd = encoders.encode_command("ffmpeg", "/out/.x.partial.mp4", (64, 48), 29.97, ".mp4",
                                  sound=["-i", "clip.mp4", "-map", "0:v:0", "-map", "1:a:0"], sample_aspect_ratio=(32, 27))
    assert cmd[:15] == ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
                        "-s", "64x48", "-r", "29.97", "-i", "-"]
    assert cmd[15:21] == ["-i", "clip.mp4", "-map", "0:v:0", "-map", "1:a:0"]     # the sound right after the frames
    assert cmd[21:23] == ["-c:v", "libx264"] and cmd[-1] == "/out/.x.partial.mp4"
    assert cmd[-5:-1] == ["-vf", "setsar=32/27", "-movflags", "+faststart"]


def test_a_gif_gets_its_palette_and_no_pixel_aspect_a_webm_vp9():
    gif = encoders.encode_command("ffmpeg", "x.gif", (5, 3), 10.0, ".gif", sample_aspect_ratio=(32, 27))
    assert "-filter_complex" in gif and "setsar=32/27" not in " ".join(gif) and "+faststart" not in gif
    webm = encoders.encode_command("ffmpeg", "x.webm", (6, 4), 25.0, ".webm", sample_aspect_ratio=(1, 1))
    assert webm[webm.index("-c:v") + 1] == "libvpx-vp9" and "-vf" not in webm and "+faststart" not in webm


def test_sound_args_skip_to_the_picture_and_need_an_encoder_the_container_holds(monkeypatch):
    monkeypatch.setattr(encoders, "ffmpeg_encoders", lambda exe: {"aac", "libvorbis"})
    assert encoders.sound_args("ffmpeg", ".mp4", "clip.mp4") == \
        ["-i", "clip.mp4", "-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac", "-b:a", "160k", "-af", "apad", "-shortest"]
    assert encoders.sound_args("ffmpeg", ".mp4", "clip.mp4", video_start=0.5)[:2] == ["-ss", "0.500000"]
    assert encoders.sound_args("ffmpeg", ".mp4", "clip.mp4", video_start=0.0004)[0] == "-i"   # under half a ms
    assert encoders.sound_args("ffmpeg", ".webm", "clip.mp4")[6:8] == ["-c:a", "libvorbis"]
    monkeypatch.setattr(encoders, "ffmpeg_encoders", lambda exe: {"aac"})
    assert encoders.sound_args("ffmpeg", ".webm", "clip.mp4") is None


@needs_ffmpeg
def test_an_ffmpeg_that_cannot_write_its_output_finishes_with_its_error_line(tmp_path):
    encoder = encoders.FfmpegEncoder(encoders.encode_command(FFMPEG, tmp_path / "missing" / "x.mp4", (16, 16),
                                                             10.0, ".mp4"))
    with pytest.raises(encoders.EncoderStopped, match="No such file or directory"):
        for _ in range(200):                 # until ffmpeg has given up and the pipe breaks
            encoder.write(np.zeros((16, 16, 3), np.uint8), 5)
    assert encoder.process is None and encoder.finish() is None        # stopped: nothing left to finish
    with pytest.raises(encoders.EncoderStopped):
        encoder.write(np.zeros((16, 16, 3), np.uint8), 1)


@needs_ffmpeg
def test_a_finished_ffmpeg_leaves_a_playable_file(tmp_path):
    out = tmp_path / "x.mp4"
    encoder = encoders.FfmpegEncoder(encoders.encode_command(FFMPEG, out, (16, 16), 10.0, ".mp4"))
    encoder.write(np.full((16, 16, 3), 128, np.uint8), 3)
    assert encoder.finish() is None and encoder.process is None and out.stat().st_size > 0
    encoder.kill()                           # nothing running: nothing to do
