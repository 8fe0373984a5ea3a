"""benchmarks/live_fps.py: the camera loop timed with a paced, simulated camera."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

from benchmarks import common, live_fps
from tests.fakes.cameras import PacedCapture


def test_paced_capture_delivers_frames_in_a_loop_at_its_rate():
    frames = [np.full((4, 6, 3), i, np.uint8) for i in range(3)]
    camera = PacedCapture(frames, fps=50)
    t0 = time.monotonic()
    got = [camera.read() for _ in range(6)]
    elapsed = time.monotonic() - t0
    assert [int(f[0, 0, 0]) for ok, f in got] == [0, 1, 2, 0, 1, 2] and all(ok for ok, _ in got)
    assert 5 / 50 - 0.005 <= elapsed < 1.0          # the first at once, then one every 20 ms
    time.sleep(0.1)                                  # a late read: no burst of frames to catch up
    t1 = time.monotonic()
    camera.read()
    camera.read()
    assert time.monotonic() - t1 >= 1 / 50 - 0.005


def test_run_reports_fps_and_latency_per_setting(tmp_path):
    out = tmp_path / "live.json"
    assert live_fps.main(["--models", "fake", "--sizes", "64x48", "--workers", "1,2", "--modes", "show,record",
                          "--camera-fps", "60", "--frames", "8", "--warmup", "2", "-o", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["camera_fps"] == 60 and result["frames"] == 8
    rows = result["runs"]
    assert [(r["workers"], r["mode"]) for r in rows] == [(1, "show"), (1, "record"), (2, "show"), (2, "record")]
    for row in rows:
        assert row["frames"] == 8 and row["size"] == "64x48" and row["precision"] == "fp32"
        # the fake model costs nothing: the loop shows what the camera delivers, 60 a second, give or
        # take the timing of 7 intervals on a busy machine, and never much more than the camera gives
        assert 30 <= row["fps"] <= 75, row["fps"]
        assert 0 < row["latency_ms"]["median"] <= row["latency_ms"]["p90"] < 200
        assert row["camera_frames_dropped"] >= 0
    table = out.with_suffix(".md").read_text()
    assert table.count("\n| 64x48 |") == 4 and "camera: 60 FPS" in table


@pytest.mark.parametrize("argv, expected", [(["--modes", "film"], "expected one of show, record, window"),
                                            (["--camera-fps", "0"], "≥ 1"),
                                            (["--workers", "none"], "auto or a whole number")])
def test_bad_values_are_refused_at_parse_time(argv, expected, capsys):
    with pytest.raises(SystemExit) as exit_:
        live_fps.main(["--models", "fake", *argv])
    assert exit_.value.code == 2 and expected in capsys.readouterr().err


def test_bad_output_is_one_error_line(tmp_path, capsys):
    assert live_fps.main(["--models", "fake", "-o", str(tmp_path / "live.txt")]) == 2
    assert "live_fps.py: error:" in capsys.readouterr().err


def test_window_mode_without_a_display_is_one_error_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(live_fps.sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert live_fps.main(["--models", "fake", "--sizes", "64x48", "--modes", "window", "--frames", "2",
                          "-o", str(tmp_path / "live.json")]) == 2
    assert "live_fps.py: error: cannot open a window: no display" in capsys.readouterr().err
    assert not (tmp_path / "live.json").exists()


def test_the_table_says_when_there_is_no_load_average(monkeypatch):
    assert common.load_text({"load_avg_start": [1.234, 1.0, 1.0]}) == "load average at start 1.23"
    assert common.load_text({"load_avg_start": None}) == "no load average on this system"
    monkeypatch.delattr(common.os, "getloadavg")
    assert common.load_average() is None


def test_auto_inference_size_rows_list_the_sizes_chosen(tmp_path):
    out = tmp_path / "live.json"
    assert live_fps.main(["--models", "fake", "--sizes", "64x48", "--workers", "1", "--modes", "show",
                          "--infer-sizes", "native,auto", "--frames", "6", "--warmup", "2", "-o", str(out)]) == 0
    native, auto = json.loads(out.read_text())["runs"]
    assert native["inference_size"] == "native" and "auto_sizes" not in native
    assert auto["inference_size"] == "auto" and auto["auto_sizes"] == [{"from_frame": 1, "size": None}]
    assert "| auto (ended at native) |" in out.with_suffix(".md").read_text()


def test_a_numeric_inference_size_is_the_one_timed(tmp_path, monkeypatch):
    sizes = []
    real = live_fps.run_live

    def spy(camera, stylizer, *args, **kwargs):
        sizes.append(stylizer.size)
        return real(camera, stylizer, *args, **kwargs)

    monkeypatch.setattr(live_fps, "run_live", spy)
    assert live_fps.main(["--models", "fake", "--sizes", "64x48", "--workers", "1", "--modes", "show",
                          "--infer-sizes", "32", "--frames", "4", "--warmup", "2", "-o", str(tmp_path / "l.json")]) == 0
    assert sizes == [32, 32]                              # warm-up and timed run
