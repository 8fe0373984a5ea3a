"""stylecam.ffmpeg: what ffmpeg says about a media file (streams, duration, pixel aspect, packet
times) and the constant-rate timing of variable-frame-rate clips; pure parsers, no ffmpeg needed."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from stylecam import ffmpeg

PACKAGE = Path(ffmpeg.__file__).resolve().parent


def imported_names(module: Path, source: str) -> set[str]:
    """Every name ``module`` (a .py file) imports from the module ``source``, at any depth."""
    names = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == source:
            names |= {alias.name for alias in node.names}
    return names


def test_the_probes_come_from_stylecam_ffmpeg_not_from_the_sinks():
    probes = {name for name in vars(ffmpeg) if not name.startswith("_")} - {"annotations"}
    asking_the_sinks = {module.name: sorted(imported_names(module, "stylecam.sinks") & probes)
                        for module in PACKAGE.glob("*.py")}
    assert {name: found for name, found in asking_the_sinks.items() if found} == {}
    assert "stylecam.sinks" not in {node.module for node in ast.walk(ast.parse((PACKAGE / "sources.py").read_text()))
                                    if isinstance(node, ast.ImportFrom)}


def test_parse_sample_aspect_from_ffmpeg_output():
    text = ("  Stream #0:0[0x1](und): Video: h264 (High), yuv420p(progressive), 720x480 [SAR 32:27 DAR 16:9], "
            "30 fps\n  Stream #0:1[0x2](und): Audio: aac (LC), 48000 Hz, stereo")
    assert ffmpeg.parse_sample_aspect(text) == (32, 27)
    assert ffmpeg.parse_sample_aspect(text.replace("32:27", "1:1")) is None
    assert ffmpeg.parse_sample_aspect("  Stream #0:0: Video: mjpeg, 640x480, SAR 0:1 DAR 0:1") is None
    assert ffmpeg.parse_sample_aspect("  Stream #0:0: Video: h264, 640x480, 25 fps") is None
    assert ffmpeg.parse_sample_aspect("") is None


def test_parse_framecrc_sorts_presentation_times_from_the_start_of_the_file():
    text = "#software: Lavf\n#tb 0: 1/10240\n#media_type 0: video\n" \
           "0,      -2048,       1024,     1024,     1387, 0x90864d0b\n" \
           "0,      -1024,       5120,     1024,      765, 0x8907773d, F=0x0\n" \
           "0,          0,       3072,     1024,      745, 0x268372af, F=0x0\n"
    assert ffmpeg.parse_framecrc(text) == pytest.approx([0.1, 0.3, 0.5], abs=1e-12)
    cut = "#tb 0: 1/100\n0, -40, -20, 10, 9, 0x1\n0, -30, -10, 10, 9, 0x2\n0, -20, 0, 10, 9, 0x3\n0, -10, 10, 10, 9, 0x4\n"
    assert ffmpeg.parse_framecrc(cut) == pytest.approx([0.0, 0.1])   # packets an edit list cuts away: not decoded
    assert ffmpeg.parse_framecrc("#tb 0: 1/100\n") is None
    assert ffmpeg.parse_framecrc("") is None


def test_vfr_timing_leaves_constant_rate_clips_alone():
    assert ffmpeg.vfr_timing([i / 25 for i in range(50)], 25.0) is None
    jitter = [0.0, 0.034, 0.066, 0.101, 0.133, 0.167]  # a phone's 30 fps, within 10 %
    assert ffmpeg.vfr_timing(jitter, 30.0) is None
    assert ffmpeg.vfr_timing([0.0, 0.5], 2.0) is None


def test_vfr_timing_repeats_frames_to_keep_their_start_times():
    rate, copies = ffmpeg.vfr_timing([0.0, 0.1, 0.2, 0.4, 0.6, 1.0], 5.0)
    assert rate == pytest.approx(10.0)
    assert copies == [1, 1, 2, 2, 4, 1]
    starts = np.cumsum([0] + copies[:-1]) / rate
    np.testing.assert_allclose(starts, [0.0, 0.1, 0.2, 0.4, 0.6, 1.0])


def test_vfr_timing_never_drops_a_frame_that_comes_too_early():
    rate, copies = ffmpeg.vfr_timing([0.0, 0.01, 0.5, 1.0], 2.0, max_fps=10.0)
    assert rate == 10.0
    assert copies == [1, 4, 5, 1] and all(c >= 1 for c in copies)


def test_parse_duration():
    assert ffmpeg.parse_duration("  Duration: 01:02:03.50, start: 0.000000, bitrate: 1 kb/s") == pytest.approx(3723.5)
    assert ffmpeg.parse_duration("  Duration: N/A, bitrate: N/A") is None
