"""The camera loop (stylecam.live.run_live) with fake cameras and windows: keys, fullscreen,
snapshots and recordings, frames in flight, mirror, slow cameras, real-time recordings, names,
--stabilize and --size auto."""
from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from stylecam import live
from stylecam.pipeline import Stylizer
from stylecam.sources import CameraSource
from tests.fakes.cameras import (CountingCapture, FakeCapture, FastCapture, GradientCapture, NoisyStillCapture,
                                 VirtualSlowCamera)
from tests.fakes.engine import interrupt_at_call
from tests.fakes.media import count_frames, needs_ffmpeg
from tests.fakes.onnx_models import make_weights_dir
from tests.fakes.windows import ClockWindow, FakeWindow


# ----- keys, window, recordings ---------------------------------------------------------------

@needs_ffmpeg
def test_live_loop_with_keys_snapshot_and_recording(tmp_path, weights, monkeypatch):
    monkeypatch.chdir(tmp_path)
    camera = CameraSource(0, opener=lambda i: FakeCapture(frames=1000), retry_seconds=0.5)
    stylizer = Stylizer(["wave"], weights_dir=weights, device="cpu")
    state = live.initial_state(["wave"], ["muse", "wave"])
    keys = [ord("n"), ord("s"), ord("r"), -1, -1, ord("r"), ord("o"), ord("q")]
    window = FakeWindow(keys)
    summary = live.run_live(camera, stylizer, state, window, None, snapshot_dir=tmp_path, clock=lambda: 0.0)
    assert window.closed and len(window.shown) == len(keys)
    assert summary["stopped"] == "quit" and len(summary["snapshots"]) == 1
    assert len(summary["recordings"]) == 1 and count_frames(Path(summary["recordings"][0])) == 3
    assert stylizer.chain == ["muse"]  # 'n': from wave (2nd of muse, wave) to muse
    assert window.shown[-1].shape[1] == 2 * 32  # 'o' = original side by side


@pytest.mark.parametrize("start, keys, expected", [
    (False, [-1, ord("f"), -1, ord("f"), ord("q")], [(2, True), (4, False)]),   # after the frame whose key it was
    (True, [ord("f"), ord("q")], [(0, True), (1, False)]),                       # --fullscreen: before the first frame
])
def test_live_f_key_and_fullscreen_flag_switch_the_window(weights, start, keys, expected):
    camera = CameraSource(0, opener=lambda i: FakeCapture(frames=100), retry_seconds=0.5)
    window = FakeWindow(keys)
    live.run_live(camera, Stylizer(["wave"], weights_dir=weights, device="cpu"),
                  live.initial_state(["wave"], ["wave"], fullscreen=start), window, None)
    assert window.fullscreen == expected and len(window.shown) == len(keys)


def test_fullscreen_without_a_window_is_ignored(weights):
    camera = CameraSource(0, opener=lambda i: FakeCapture(frames=100), retry_seconds=0.5)
    summary = live.run_live(camera, Stylizer(["wave"], weights_dir=weights, device="cpu"),
                            live.initial_state(["wave"], ["wave"], fullscreen=True), None, None, max_frames=3)
    assert summary["frames"] == 3 and summary["stopped"] == "max frames"


def test_live_mirror_flips_the_camera_frames_and_m_toggles_it(weights):
    rising = lambda shown: int(shown[-8:, -1, 0].mean()) > int(shown[-8:, 0, 0].mean())  # below the HUD
    stylizer = Stylizer(["wave"], weights_dir=weights, device="cpu")
    for mirror, keys, expect in [(False, [-1, ord("m"), -1, ord("q")], [True, True, False, False]),
                                 (True, [ord("m"), -1, ord("q")], [False, True, True])]:
        camera = CameraSource(0, opener=lambda i: GradientCapture(frames=100, size=(64, 96)), retry_seconds=0.5)
        window = FakeWindow(keys)
        live.run_live(camera, stylizer, live.initial_state(["wave"], ["wave"], mirror=mirror), window, None)
        assert [rising(shown) for shown in window.shown] == expect


@needs_ffmpeg
def test_live_interrupt_finalises_the_recording(tmp_path, weights, monkeypatch):
    camera = CameraSource(0, opener=lambda i: FakeCapture(frames=1000), retry_seconds=0.2)
    stylizer = Stylizer(["wave"], weights_dir=weights, device="cpu")
    interrupt_at_call(monkeypatch, 5)
    state = live.initial_state(["wave"], ["muse", "wave"])
    summary = live.run_live(camera, stylizer, state, None, tmp_path / "rec.mp4", clock=lambda: 0.0)
    assert summary["interrupted"] and summary["frames"] == 4
    assert count_frames(tmp_path / "rec.mp4") == 4


@needs_ffmpeg
def test_recording_plays_in_real_time_without_the_paused_time(tmp_path, weights):
    # the camera says 10 fps, but a frame is stylized every 0.3 s: each is held 3 frames
    camera = CameraSource(0, opener=lambda i: FakeCapture(frames=1000), retry_seconds=0.5)
    stylizer = Stylizer(["wave"], weights_dir=weights, device="cpu")
    state = dataclasses.replace(live.initial_state(["wave"], ["wave"]), recording=True)
    window = ClockWindow([-1, -1, ord(" "), -1, -1, ord(" "), -1, ord("q")], step=0.3)
    summary = live.run_live(camera, stylizer, state, window, tmp_path / "rec.mp4", clock=lambda: window.now)
    assert summary["recordings"] == [str(tmp_path / "rec.mp4")]
    # written at 0.0, 0.3, 0.6 (1 + 3 + 3), paused from 0.9 to 1.5, then 1.8, 2.1 (1 + 3)
    assert count_frames(tmp_path / "rec.mp4") == 11


@needs_ffmpeg
def test_recordings_and_snapshots_within_one_second_get_their_own_names(tmp_path, weights, monkeypatch):
    monkeypatch.setattr(live.time, "strftime", lambda fmt, *a: "20260101_120000")   # all in one second
    camera = CameraSource(0, opener=lambda i: FakeCapture(frames=1000), retry_seconds=0.5)
    stylizer = Stylizer(["wave"], weights_dir=weights, device="cpu")
    r, s = ord("r"), ord("s")
    window = FakeWindow([r, -1, r, r, -1, r, r, -1, r, s, s, ord("q")])
    summary = live.run_live(camera, stylizer, live.initial_state(["wave"], ["wave"]), window,
                              tmp_path / "keys.gif", snapshot_dir=tmp_path, clock=lambda: 0.0)
    recordings, snapshots = summary["recordings"], summary["snapshots"]
    assert recordings == [str(tmp_path / n) for n in ("keys.gif", "stylecam_20260101_120000.gif",
                                                     "stylecam_20260101_120000_2.gif")]   # -o's extension kept
    assert snapshots == [str(tmp_path / n) for n in ("stylecam_snapshot_20260101_120000.png",
                                                    "stylecam_snapshot_20260101_120000_2.png")]
    assert all(count_frames(Path(p)) == 2 for p in recordings) and all(Path(p).is_file() for p in snapshots)


# ----- frames in flight -----------------------------------------------------------------------

def _frame_index(pixel) -> tuple[int, str]:
    """A BGR pixel of CountingCapture's frame n after wave (+10) or muse (+3): (n, style)."""
    shift = 10 if int(pixel[0]) % 10 == 0 else 3
    blue, green = (int(v) - shift for v in pixel[:2])
    return 20 * green // 10 + blue // 10, "wave" if shift == 10 else "muse"


@pytest.mark.parametrize("workers", [1, 2])
def test_live_frames_in_flight_are_shown_in_order_with_the_style_they_were_read_under(tmp_path, workers,
                                                                                      monkeypatch):
    weights = make_weights_dir(tmp_path / "w", {"wave": {"effect": "shift", "amount": 10.0},
                                                "muse": {"effect": "shift", "amount": 3.0}})
    original, chains, running, most = Stylizer.stylize_batch, [], [0], [0]
    lock = threading.Lock()

    def slow(self, frames):   # a chain changed under a running frame would show up as two chains
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        before = self.specs
        time.sleep(0.05)
        out = original(self, frames)
        chains.append((before, self.specs))
        with lock:
            running[0] -= 1
        return out

    monkeypatch.setattr(Stylizer, "stylize_batch", slow)
    camera = CameraSource(0, opener=lambda i: CountingCapture(frames=2000, delay=0.005, size=(48, 64)))
    stylizer = Stylizer(["wave"], weights_dir=weights, device="cpu")
    window = FakeWindow([-1, ord("n"), -1, -1, -1, -1, ord("q")])
    summary = live.run_live(camera, stylizer, live.initial_state(["wave"], ["muse", "wave"]), window, None,
                            workers=workers)
    shown = [_frame_index(f[-1, -1]) for f in window.shown]
    assert len(shown) == 7 and summary["frames"] == 7 and summary["workers"] == workers
    indices = [n for n, _ in shown]
    assert indices == sorted(set(indices))              # camera order, no frame twice
    # 'n' came with the 2nd frame shown; a frame in flight then (at most workers - 1) keeps wave
    styles = [style for _, style in shown]
    waves = styles.count("wave")
    assert 2 <= waves <= 1 + workers and styles == ["wave"] * waves + ["muse"] * (7 - waves)
    assert all(before == after for before, after in chains) and len(chains) >= 7
    assert most[0] == workers                           # that many frames really stylized at once
    assert summary["fps"] > 0 and 0 < summary["latency_ms"]["median"] <= summary["latency_ms"]["p90"] < 5000


@needs_ffmpeg
def test_live_with_two_workers_records_exactly_max_frames(tmp_path, weights):
    camera = CameraSource(0, opener=lambda i: FakeCapture(frames=1000), retry_seconds=0.5)
    stylizer = Stylizer(["wave"], weights_dir=weights, device="cpu", threads=1)
    summary = live.run_live(camera, stylizer, live.initial_state(["wave"], ["wave"]), None, tmp_path / "rec.mp4",
                            max_frames=6, workers=2, clock=lambda: 0.0)
    assert summary["stopped"] == "max frames" and summary["frames"] == 6 and summary["workers"] == 2
    assert count_frames(tmp_path / "rec.mp4") == 6


@needs_ffmpeg
def test_live_interrupt_with_frames_in_flight_finalises_the_recording(tmp_path, weights, monkeypatch):
    camera = CameraSource(0, opener=lambda i: FakeCapture(frames=1000), retry_seconds=0.2)
    stylizer = Stylizer(["wave"], weights_dir=weights, device="cpu", threads=1)
    interrupt_at_call(monkeypatch, 5)
    summary = live.run_live(camera, stylizer, live.initial_state(["wave"], ["wave"]), None, tmp_path / "rec.mp4",
                            clock=lambda: 0.0, workers=2)
    assert summary["interrupted"] and 3 <= summary["frames"] <= 5   # the 5th call may be the 4th or 6th frame's
    assert count_frames(tmp_path / "rec.mp4") == summary["frames"]


def test_live_loop_waits_for_frames_that_come_slowly(weights):
    # /tmp/qa4 slow_default: a frame every 4.5 s with the default 3 s retry counted as a stopped camera
    camera = VirtualSlowCamera(4.5, frames=3)
    stylizer = Stylizer(["wave"], weights_dir=weights, device="cpu")
    summary = live.run_live(camera, stylizer, live.initial_state(["wave"], ["wave"]), None, None)
    assert summary["frames"] == 3 and camera.left == 0


# ----- --stabilize and --size auto ------------------------------------------------------------

def test_live_stabilize_cuts_the_flicker_of_a_still_scene(weights):
    def flicker(stabilize: float) -> float:
        camera = CameraSource(0, opener=lambda i: NoisyStillCapture(frames=100, size=(64, 96)), retry_seconds=0.5)
        window = FakeWindow([-1] * 11 + [ord("q")])
        stylizer = Stylizer(["wave"], weights_dir=weights, device="cpu")
        live.run_live(camera, stylizer, live.initial_state(["wave"], ["wave"]), window, None, stabilize=stabilize)
        below_hud = [f[-16:].astype(np.float32) for f in window.shown[4:]]
        return float(np.mean([np.abs(b - a).mean() for a, b in zip(below_hud, below_hud[1:])]))

    plain, held = flicker(0.0), flicker(0.8)
    assert plain > 1.0            # the +10 fake passes the input's noise straight through
    assert held < 0.5 * plain


def test_live_auto_size_steps_down_for_a_slow_style_and_keeps_the_frame_size(weights, monkeypatch):
    original = Stylizer.stylize_batch
    seen = []

    def slow(self, frames):                      # 40 ms at the frame's own 320 px, less when smaller
        side = self.size or max(frames.shape[1:3])
        seen.append(self.size)
        time.sleep(0.04 * (side / 320) ** 2)
        return original(self, frames)

    monkeypatch.setattr(Stylizer, "stylize_batch", slow)
    camera = CameraSource(0, opener=lambda i: FastCapture(frames=1000, size=(240, 320), delay=0.01))
    window = FakeWindow([])
    summary = live.run_live(camera, Stylizer(["wave"], weights_dir=weights, device="cpu"),
                            live.initial_state(["wave"], ["wave"]), window, None, max_frames=35, auto_size=True)
    sizes = [entry["size"] for entry in summary["auto_size"]]
    assert sizes[:3] == [None, 272, 224] and summary["auto_size"][1]["from_frame"] == 17
    assert seen[:16] == [None] * 16 and seen[16] == 272                  # the first frame left out, then 15
    assert all(f.shape == (240, 320, 3) for f in window.shown)           # shown at the camera's size


def test_live_auto_size_with_two_workers_never_goes_back_to_an_old_size_in_flight(weights, monkeypatch):
    original = Stylizer.stylize_batch
    seen = []

    def slow(self, frames):
        seen.append(self.size)
        time.sleep(0.08 * ((self.size or 320) / 320) ** 2)
        return original(self, frames)

    monkeypatch.setattr(Stylizer, "stylize_batch", slow)
    camera = CameraSource(0, opener=lambda i: FastCapture(frames=1000, size=(240, 320), delay=0.01))
    summary = live.run_live(camera, Stylizer(["wave"], weights_dir=weights, device="cpu", threads=1),
                            live.initial_state(["wave"], ["wave"]), FakeWindow([]), None, max_frames=40,
                            auto_size=True, workers=2)
    sizes = [entry["size"] for entry in summary["auto_size"]]
    assert sizes[:2] == [None, 272] and summary["workers"] == 2
    first_272 = seen.index(272)
    assert None not in seen[first_272:]                  # the frames in flight were shown before the change
    assert summary["auto_size"][1]["from_frame"] == first_272 + 1
