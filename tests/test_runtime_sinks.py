"""Sinks: every listed image format, WebM audio, encoder failures, anamorphic video."""
from __future__ import annotations

import logging
import re
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from stylecam import encoders, ffmpeg, fileout, runner, sinks
from stylecam.config import EngineConfig, RunConfig
from stylecam.errors import UserError
from tests.fakes.media import FFMPEG, decode_frames, make_clip, needs_ffmpeg
from tests.fakes.onnx_models import make_weights_dir

IMAGE_OUTPUTS = (".bmp", ".jpeg", ".jpg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp")


def write_frames(writer: sinks.VideoWriter, count: int = 6) -> Path:
    for i in range(count):
        writer.write(np.full((writer.height, writer.width, 3), 30 * i, np.uint8))
    return writer.close()


# ----- images ------------------------------------------------------------------------------

@pytest.mark.parametrize("ext", IMAGE_OUTPUTS)
@pytest.mark.parametrize("channels", [3, 4])
def test_every_listed_image_format_is_written_without_opencv_errors(tmp_path, capfd, ext, channels):
    frame = np.full((6, 10, channels), 100, np.uint8)
    frame[..., 2 % channels] = 200
    path = sinks.write_image(tmp_path / f"x{ext}", frame)
    written = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert written is not None and written.shape[:2] == (6, 10)
    if ext == ".pgm":  # grey only: the luminance of BGR (100, 100, 200)
        assert written.ndim == 2 and abs(int(written[0, 0]) - 130) <= 1
    elif ext in (".jpg", ".jpeg", ".bmp", ".ppm"):  # no alpha
        assert written.shape == (6, 10, 3)
    assert "ERROR" not in capfd.readouterr().err


def test_encodable_gives_each_format_the_channels_it_holds():
    bgra = np.zeros((4, 6, 4), np.uint8)
    assert fileout.encodable(bgra, ".pgm").shape == (4, 6)
    assert fileout.encodable(bgra, ".jpg").shape == (4, 6, 3)
    assert fileout.encodable(bgra, ".png") is bgra
    assert fileout.encodable(np.zeros((4, 6), np.uint8), ".ppm").shape == (4, 6, 3)


# ----- video -------------------------------------------------------------------------------

def test_audio_codec_for_webm_is_opus_then_vorbis_else_none():
    assert encoders.audio_codec_args(".webm", {"aac", "libopus", "libvorbis"})[:2] == ["-c:a", "libopus"]
    assert encoders.audio_codec_args(".webm", {"aac", "libvorbis"})[:2] == ["-c:a", "libvorbis"]
    assert encoders.audio_codec_args(".webm", {"aac"}) is None
    assert encoders.audio_codec_args(".mp4", {"aac", "libopus"})[:2] == ["-c:a", "aac"]


@needs_ffmpeg
def test_webm_keeps_the_audio_as_opus_in_4_2_0(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=6)
    out = write_frames(sinks.VideoWriter(tmp_path / "x.webm", 10, (64, 48), audio_from=clip))
    info = ffmpeg.probe_text(out)
    assert ffmpeg.stream_kinds(info) == ["video", "audio"]
    assert "Audio: opus" in info and "yuv420p" in info
    assert not list(tmp_path.glob(".*partial*"))


@needs_ffmpeg
def test_webm_without_an_audio_encoder_warns_and_writes_video_only(tmp_path, monkeypatch, caplog):
    clip = make_clip(tmp_path / "clip.mp4", frames=6)
    monkeypatch.setattr(encoders, "ffmpeg_encoders", lambda exe: {"aac", "libvpx-vp9"})
    with caplog.at_level(logging.WARNING, logger="stylecam"):
        writer = sinks.VideoWriter(tmp_path / "x.webm", 10, (64, 48), audio_from=clip)
    out = write_frames(writer)
    assert not writer.audio and ffmpeg.probe_streams(out) == ["video"]
    assert "no audio encoder for .webm" in caplog.text


@needs_ffmpeg
def test_encoder_that_stops_while_writing_leaves_no_partial_file(tmp_path):
    writer = sinks.VideoWriter(tmp_path / "x.mp4", 10, (64, 48))
    writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.encoder.process.stdin.flush()
    for _ in range(100):  # until ffmpeg has created its partial output
        if writer.tmp.exists():
            break
        time.sleep(0.05)
    assert writer.tmp.exists()
    writer.encoder.process.kill()
    writer.encoder.process.wait()
    with pytest.raises(UserError, match="the video encoder stopped while writing"):
        for _ in range(50):
            writer.write(np.zeros((48, 64, 3), np.uint8))
    assert not list(tmp_path.glob(".*partial*")) and not (tmp_path / "x.mp4").exists()
    writer.abort()  # what the caller does next: nothing left to remove, no error


@needs_ffmpeg
def test_anamorphic_source_keeps_its_sample_aspect_ratio(tmp_path):
    clip = make_clip(tmp_path / "dvd.mp4", frames=6, audio=False, sar="32/27")
    writer = sinks.VideoWriter(tmp_path / "out.mp4", 10, (64, 48), audio_from=clip)
    assert writer.sample_aspect_ratio == (32, 27)
    out = write_frames(writer)
    assert ffmpeg.parse_sample_aspect(ffmpeg.probe_text(out)) == (32, 27)
    square = write_frames(sinks.VideoWriter(tmp_path / "sq.mp4", 10, (64, 48), audio_from=clip,
                                            sample_aspect_ratio=(1, 1)))
    assert ffmpeg.parse_sample_aspect(ffmpeg.probe_text(square)) is None


# ----- variable frame rate ----------------------------------------------------------------

@needs_ffmpeg
def test_variable_frame_rate_clip_keeps_its_timing(tmp_path):
    weights = make_weights_dir(tmp_path / "weights")
    clip = tmp_path / "vfr.mp4"  # frames at 0.0-0.4 s, a 0.5 s pause, then 0.9-1.3 s
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc=size=64x48:rate=10:duration=1", "-vf", "setpts='(N*0.1+gte(N,5)*0.4)/TB'",
                    "-fps_mode", "passthrough", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(clip)], check=True)
    assert [round(t, 3) for t in ffmpeg.probe_frame_times(clip)] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.9, 1.0, 1.1, 1.2, 1.3]
    out = tmp_path / "out.mp4"
    code, summary = runner.run(RunConfig(engine=EngineConfig(styles=("wave",), weights_dir=str(weights), device="cpu"),
                                         sources=(str(clip),), output=str(out), progress=False))
    done = summary["done"][0]
    assert code == 0 and done["frames"] == 10 and done["variable_frame_rate"] and done["output_fps"] == 10.0
    # written at 10 fps with the 5th frame held through the pause: 14 frames, the 6th first shown at 0.9 s
    frames = [frame.astype(int) for frame in decode_frames(out)]
    assert len(frames) == 14
    changes = [np.abs(a - b).mean() for a, b in zip(frames, frames[1:])]
    held, moving = changes[4:8], changes[:4] + changes[8:]
    assert max(held) < 0.5 * min(moving)          # ticks 4-8 repeat the 5th frame; tick 9 is the 6th


@needs_ffmpeg
def test_a_picture_that_starts_after_its_sound_stays_in_sync(tmp_path):
    """The picture starts 0.5 s after the sound; at 1.0 s of the sound the picture turns white and a
    tone starts. The output starts with the first frame, so 0.5 s of sound must be left out."""
    weights = make_weights_dir(tmp_path / "weights")
    clip = tmp_path / "late_picture.mp4"
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y",
                    "-itsoffset", "0.5", "-f", "lavfi", "-i",
                    "nullsrc=s=64x48:r=25:d=1.5,geq=lum='if(gte(T,0.5),235,16)':cb=128:cr=128",
                    "-f", "lavfi", "-i", "aevalsrc='if(gte(t,1.0),0.8*sin(2*PI*440*t),0)':d=2:s=16000",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(clip)], check=True)
    assert ffmpeg.probe_frame_times(clip)[0] == pytest.approx(0.5, abs=0.03)
    out = tmp_path / "out.mp4"
    code, summary = runner.run(RunConfig(engine=EngineConfig(styles=("wave",), weights_dir=str(weights), device="cpu"),
                                         sources=(str(clip),), output=str(out), progress=False))
    assert code == 0 and summary["done"][0]["audio"]
    means = [float(f.mean()) for f in decode_frames(out)]
    jump = int(np.argmax(np.diff(means))) + 1            # first white frame
    assert 10 <= jump <= 15 and means[jump] > means[0] + 50
    pcm = subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-i", str(out), "-map", "0:a:0",
                          "-f", "s16le", "-ac", "1", "-ar", "16000", "-"], capture_output=True, check=True).stdout
    sound = np.abs(np.frombuffer(pcm, np.int16).astype(float))
    tone_starts = int(np.argmax(sound > 0.3 * 32768)) / 16000
    assert tone_starts == pytest.approx(jump / 25, abs=0.06)   # was 1.0 s against the picture's 0.5 s


@needs_ffmpeg
@pytest.mark.parametrize("picture_delay,sound_s", [(0.0, 0.3), (0.0, 1.9), (0.5, 0.3), (0.0, 3.0)])
def test_every_frame_is_kept_whatever_the_length_of_the_sound(tmp_path, picture_delay, sound_s):
    """A sound that ends before the picture (or before it starts) used to stop the encoder early."""
    weights = make_weights_dir(tmp_path / "weights")
    clip = tmp_path / "clip.mp4"
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-itsoffset", str(picture_delay),
                    "-f", "lavfi", "-i", "testsrc=s=64x48:r=25:d=2", "-f", "lavfi", "-i", f"sine=d={sound_s}",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(clip)], check=True)
    out = tmp_path / "out.mp4"
    code, summary = runner.run(RunConfig(engine=EngineConfig(styles=("wave",), weights_dir=str(weights), device="cpu"),
                                         sources=(str(clip),), output=str(out), progress=False))
    assert code == 0 and summary["done"][0]["frames"] == 50
    assert len(decode_frames(out)) == 50
    info = ffmpeg.probe_text(out)
    assert "Audio" in info
    h, m, sec = re.search(r"Duration: (\d+):(\d+):([\d.]+)", info).groups()
    assert float(sec) == pytest.approx(2.0, abs=0.1)       # the picture's length, sound cut or padded to it


@needs_ffmpeg
def test_frame_times_of_an_edit_list_cut_clip_are_the_frames_that_decode(tmp_path):
    whole = tmp_path / "whole.mp4"
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=s=64x48:r=25:d=3",
                    "-c:v", "libx264", "-g", "50", "-pix_fmt", "yuv420p", str(whole)], check=True)
    cut = tmp_path / "cut.mp4"   # starts between key frames: the packets before the cut stay, with negative times
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-ss", "0.5", "-i", str(whole), "-c", "copy",
                    str(cut)], check=True)
    times = ffmpeg.probe_frame_times(cut)
    assert times[0] >= 0.0 and len(times) == len(decode_frames(cut))


@needs_ffmpeg
@pytest.mark.parametrize("ext,frames", [(".mp4", 3), (".mp4", 7), (".webm", 5)])
def test_a_short_output_gets_the_sound_of_its_frames_only(tmp_path, ext, frames):
    """-shortest lets the sound of a short output (a few frames, an early Ctrl-C) run up to a second on."""
    clip = tmp_path / "clip.mp4"
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=s=64x48:r=25:d=2",
                    "-f", "lavfi", "-i", "sine=d=2", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    str(clip)], check=True)
    writer = sinks.VideoWriter(tmp_path / f"out{ext}", 25, (64, 48), audio_from=clip)
    for i in range(frames):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    out = writer.close()
    assert writer.audio and "Audio" in ffmpeg.probe_text(out)
    assert ffmpeg.parse_duration(ffmpeg.probe_text(out)) <= frames / 25 + 1 / 25 + 0.03
    assert len(decode_frames(out)) == frames
    assert not list(tmp_path.glob(".*"))                 # no temporary file left


# ----- held frames, letterboxing (live recordings) -----------------------------------------

@needs_ffmpeg
def test_write_repeat_holds_a_frame_and_keeps_the_copies_of_file_videos(tmp_path):
    writer = sinks.VideoWriter(tmp_path / "held.mp4", 10, (64, 48), copies=[2])
    writer.write(np.full((48, 64, 3), 40, np.uint8), repeat=3)    # copies 2 x repeat 3
    writer.write(np.full((48, 64, 3), 120, np.uint8))             # past the copies: once
    writer.write(np.full((48, 64, 3), 200, np.uint8), repeat=2)
    with pytest.raises(ValueError, match="at least 1"):
        writer.write(np.zeros((48, 64, 3), np.uint8), repeat=0)
    assert writer.frames == 9 and writer.given == 3
    levels = [int(round(f.mean())) for f in decode_frames(writer.close())]
    assert len(levels) == 9
    assert [abs(v - w) <= 4 for v, w in zip(levels, [40] * 6 + [120] + [200] * 2)] == [True] * 9


def test_letterbox_fits_inside_keeps_the_aspect_and_pads_black():
    portrait = np.full((96, 48, 3), 255, np.uint8)
    boxed = sinks.letterbox(portrait, 48, 64)
    assert boxed.shape == (48, 64, 3) and boxed.dtype == np.uint8
    assert (boxed[:, 20:44] == 255).all()                    # 96x48 scaled by 0.5: 48x24, centred
    assert (boxed[:, :20] == 0).all() and (boxed[:, 44:] == 0).all()
    wide = sinks.letterbox(np.full((10, 64, 1), 7, np.uint8), 48, 64)   # any channel count; bars top and bottom
    assert wide.shape == (48, 64, 1) and (wide[19:29] == 7).all() and (wide[:19] == 0).all() and (wide[29:] == 0).all()
    same_shape = np.full((96, 128, 3), 9, np.uint8)            # the same aspect: a plain resize, no bars
    assert (sinks.letterbox(same_shape, 48, 64) == 9).all()
    frame = np.zeros((48, 64, 3), np.uint8)
    assert sinks.letterbox(frame, 48, 64) is frame


@needs_ffmpeg
def test_video_writer_letterboxes_a_frame_of_another_shape_instead_of_squashing_it(tmp_path):
    writer = sinks.VideoWriter(tmp_path / "turned.mp4", 10, (64, 48))
    writer.write(np.full((48, 64, 3), 255, np.uint8))
    writer.write(np.full((96, 48, 3), 255, np.uint8))          # the camera turned to portrait
    second = decode_frames(writer.close())[1].astype(int)
    assert second[:, 24:40].mean() > 240                        # the picture, in the middle
    assert second[:, :16].mean() < 15 and second[:, 48:].mean() < 15   # black bars left and right
