"""The pure parts of the camera loop, without a camera: keys (handle_key), the HUD, --size auto
(AutoSize), the camera's delivery rate, real-time pacing of recordings, and unique names."""
from __future__ import annotations

import dataclasses
import types

import pytest

from stylecam import live, sinks


def test_handle_key_state_machine():
    s = live.initial_state(["wave", "muse"], ["candy", "muse", "wave"], repeat=1)
    assert s.chain_on and s.active() == ("wave", "muse")
    s = live.handle_key(s, ord("c"))
    assert not s.chain_on and s.active() == ("wave",)
    s = live.handle_key(s, ord("n"))
    assert s.active() == ("candy",)  # wraps around
    s = live.handle_key(s, ord("p"))
    assert s.active() == ("wave",)
    s = live.handle_key(s, ord("2"))
    assert s.active() == ("muse",)
    assert live.handle_key(s, ord("9")) == s  # no 9th style: unchanged
    s = live.handle_key(live.handle_key(s, ord("+")), ord("="))
    assert s.repeat == 3
    for _ in range(5):
        s = live.handle_key(s, ord("-"))
    assert s.repeat == 1
    s = live.handle_key(live.handle_key(s, ord("[")), ord("["))
    assert s.strength == 0.8
    for _ in range(5):
        s = live.handle_key(s, ord("]"))
    assert s.strength == 1.0
    assert live.handle_key(s, ord("o")).show_original
    assert live.handle_key(s, ord("m")).mirror and not live.handle_key(live.handle_key(s, ord("m")), ord("m")).mirror
    assert live.handle_key(s, ord("f")).fullscreen and not live.handle_key(live.handle_key(s, ord("f")), ord("f")).fullscreen
    assert live.handle_key(s, ord(" ")).paused
    assert live.handle_key(s, ord("r")).recording
    snap = live.handle_key(s, ord("s"))
    assert snap.events == ("snapshot",) and live.handle_key(snap, -1).events == ()
    assert live.handle_key(s, ord("q")).quit and live.handle_key(s, 27).quit
    assert live.handle_key(s, -1) == s


def test_hud_lines():
    lines = sinks.hud_lines(["wave", "muse"], 3, 29.5, ["CUDAExecutionProvider"], 12.34, strength=0.5)
    assert lines[0] == "wave > muse  x3" and "29.5 FPS" in lines[1] and "CUDA" in lines[1]
    assert lines[2] == "strength 0.5" and "latency" not in lines[1]
    lines = sinks.hud_lines(["wave"], 1, 30.0, ["CPUExecutionProvider"], 30.0, latency_ms=57.6, extra=["int8"])
    assert lines[1].endswith("CPU  latency 58 ms") and lines[2:] == ["int8"]


def test_hud_flags_say_int8_only_when_a_model_really_runs_int8():
    state = live.LiveState(styles=("wave",), chain=("wave",))
    fp32 = types.SimpleNamespace(entries=[types.SimpleNamespace(precision="fp32")], int8=True)
    int8 = types.SimpleNamespace(entries=[types.SimpleNamespace(precision="fp32"), types.SimpleNamespace(precision="int8")])
    assert live.hud_flags(fp32, state) == []
    assert live.hud_flags(int8, state) == ["int8"]
    busy = dataclasses.replace(state, recording=True, paused=True)
    assert live.hud_flags(int8, busy) == ["int8", "REC", "PAUSED"]
    int8.size = 448
    assert live.hud_flags(int8, busy, auto=True) == ["int8", "size auto: 448 px", "REC", "PAUSED"]
    int8.size = None
    assert live.hud_flags(int8, state, auto=True) == ["int8", "size auto: native"]


def test_auto_size_ladder_and_steps_down_when_the_camera_is_faster():
    sizer = live.AutoSize(640, workers=2)
    assert sizer.sizes == [640, 544, 448, 384, 320, 256] and sizer.size is None
    assert not sizer.observe(5.0, 30.0)                               # the first frame (a new shape) is left out
    assert not any(sizer.observe(0.08, 30.0) for _ in range(14))   # capacity 25 FPS, but only 14 frames seen
    assert sizer.observe(0.08, 30.0) and sizer.size == 544            # the 15th: 25 < 1.05 x 30
    # 80 FPS at 544 px would afford the frame's own size, but that one is held back for 150 frames
    assert not any(sizer.observe(0.025, 30.0) for _ in range(40))
    sizer.reset()                                                     # e.g. another style: judge afresh
    assert not any(sizer.observe(0.025, 30.0) for _ in range(15))  # one left out, 14 seen
    assert sizer.observe(0.025, 30.0) and sizer.size is None


def settle(sizer, seconds_at, camera_fps: float, frames: int = 300) -> list:
    """Feed ``frames`` frames whose stylizing takes seconds_at(long side); the sizes chosen, in order."""
    chosen = [sizer.size]
    for _ in range(frames):
        if sizer.observe(seconds_at(sizer.sizes[sizer.index]), camera_fps):
            chosen.append(sizer.size)
    return chosen


def test_auto_size_settles_on_the_largest_size_that_keeps_up_and_stays_there():
    cost = lambda side: 0.08 * (side / 640) ** 2            # time grows with the pixels
    sizer = live.AutoSize(640, workers=2)
    assert settle(sizer, cost, 30.0) == [None, 544]           # 544: 2 / 0.058 = 34.6 FPS >= 31.5; no flip back
    fast = live.AutoSize(640, workers=2)
    assert settle(fast, lambda side: 0.02, 30.0) == [None]   # 100 FPS at the frame's own size: nothing to do


def test_auto_size_goes_back_up_when_the_stylizing_gets_faster():
    sizer = live.AutoSize(640, workers=1)
    assert settle(sizer, lambda side: 0.2 * (side / 640) ** 2, 30.0)[-1] == 256      # busy machine: the smallest
    assert settle(sizer, lambda side: 0.01 * (side / 640) ** 2, 30.0) == [256, 320, 384, 448, 544, None]


def test_auto_size_tries_a_size_it_had_to_leave_again_later_and_later():
    # 544 px looks affordable from 448 (its pixels alone), but the busier machine cannot keep up there
    cost = {640: 0.1, 544: 0.07, 448: 0.025, 384: 0.02, 320: 0.015, 256: 0.01}
    sizer = live.AutoSize(640, workers=2)
    chosen = settle(sizer, cost.get, 30.0, frames=600)
    assert chosen[:3] == [None, 544, 448] and set(chosen[3:]) <= {544, 448}
    assert len(chosen) == 7      # back to 544 after 150, then 300 frames: not every 30 frames


def test_auto_size_never_goes_under_its_smallest_side():
    assert live.AutoSize(120).sizes == [120, 102, 96] and live.AutoSize(64).sizes == [64]


def test_delivery_rate_follows_what_the_camera_really_delivers():
    rate = live.DeliveryRate(span=3.0, least=1.0)
    assert rate.rate(30.0) == 30.0                                    # nothing seen: the nominal fps
    for i in range(11):                                               # 15 frames a second for 0.5 s
        rate.add(100.0 + i / 20, 10 + i)
    assert rate.rate(30.0) == 30.0                                    # under a second: still nominal
    for i in range(11, 61):                                           # ... for 3 s
        rate.add(100.0 + i / 20, 10 + i)
    assert rate.rate(30.0) == pytest.approx(20.0) and rate.rate(12.0) == 12.0   # capped at the nominal fps
    for i in range(1, 81):                                            # then 10 a second for 8 s
        rate.add(103.0 + i / 10, 70 + i)
    assert rate.rate(30.0) == pytest.approx(10.0, abs=0.4)            # the last 3 s only


def test_real_time_pacer_holds_frames_for_the_time_they_cover():
    now = [0.0]
    pacer = live.RealTimePacer(30.0, clock=lambda: now[0])
    held = []
    for t in (0.0, 0.1, 0.2, 0.25, 0.26, 0.5):
        now[0] = t
        held.append(pacer.copies())
    # 0.1 s = 3 ticks; 0.05 s = 1.5 ticks: 1 now, the half carried; 0.01 s: still 1; then 7.2 ticks
    assert held == [1, 3, 3, 1, 1, 7]
    pacer.restart()
    now[0] = 10.0
    assert pacer.copies() == 1


def test_unique_path_adds_a_counter_for_names_that_exist_or_were_given(tmp_path):
    (tmp_path / "a.gif").write_bytes(b"")
    taken: set[str] = set()
    assert live.unique_path(tmp_path / "a.gif", taken) == tmp_path / "a_2.gif"
    assert live.unique_path(tmp_path / "a.gif", taken) == tmp_path / "a_3.gif"     # a_2 is being written
    assert live.unique_path(tmp_path / "b.png", taken) == tmp_path / "b.png"
    assert taken == {str(tmp_path / n) for n in ("a_2.gif", "a_3.gif", "b.png")}
