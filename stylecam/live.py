"""The live camera loop: keys, HUD, recordings and snapshots, frames stylized while the next are read.

Frames are uint8 BGR (H, W, 3). ``LiveState`` holds what the keys change (``handle_key``, pure);
``run_live`` (a ``LiveLoop``) drives a CameraSource, a Stylizer and an optional Window; recordings
and snapshot names are in stylecam.recordings. With ``workers`` > 1
(stylecam's default on a multi-core CPU: 2, the cores split between them) that many frames are
stylized at once, which keeps both cores of a 2-core CPU busy; frames are still shown in camera order.
"""
from __future__ import annotations

import array
import collections
import dataclasses
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from stylecam import imageops
from stylecam.camera import CameraSource
from stylecam.overlay import LabelOverlay, compose
from stylecam.pipeline import Stylizer
from stylecam.rates import DeliveryRate, FPSMeter
from stylecam.recordings import Recordings, timestamped
# the recordings' parts live in stylecam.rates and stylecam.recordings; importable from here
from stylecam.rates import RealTimePacer  # noqa: F401
from stylecam.recordings import unique_path  # noqa: F401
from stylecam.sinks import VirtualCamera, Window, hud_lines, write_image

log = logging.getLogger("stylecam")

STRENGTH_STEP = 0.1
MAX_REPEAT = 20
LATENCY_WINDOW = 30    # the HUD's latency: median over this many of the last frames


@dataclass(frozen=True)
class LiveState:
    """What the live view shows; changed only by ``handle_key`` (pure)."""
    styles: tuple[str, ...]                 # every style the keys cycle through
    chain: tuple[str, ...]                  # the chain given on the command line
    style_index: int = 0                    # current single style (when the chain is off)
    chain_on: bool = True                   # apply the chain instead of the single style
    repeat: int = 1
    strength: float = 1.0
    show_original: bool = False             # original | stylized side by side
    paused: bool = False
    mirror: bool = False                    # flip the camera frame left-right (selfie view)
    fullscreen: bool = False                # the window fills the screen
    recording: bool = False
    quit: bool = False
    events: tuple[str, ...] = field(default=())  # one-shot requests for the loop: "snapshot"

    def active(self) -> tuple[str, ...]:
        """The styles applied now, in order."""
        if self.chain_on or not self.styles:
            return self.chain
        return (self.styles[self.style_index],)


def initial_state(chain: Sequence[str], styles: Sequence[str], repeat: int = 1, strength: float = 1.0,
                  mirror: bool = False, fullscreen: bool = False) -> LiveState:
    """Start with the chain; single-style keys cycle through ``styles`` (the chain's first if absent)."""
    names = tuple(styles) or tuple(chain)
    index = names.index(chain[0]) if chain and chain[0] in names else 0
    return LiveState(styles=names, chain=tuple(chain), style_index=index, chain_on=len(chain) > 1 or not names,
                     repeat=repeat, strength=strength, mirror=mirror, fullscreen=fullscreen)


def handle_key(state: LiveState, key: int) -> LiveState:
    """New state after a key press (``key`` as returned by cv2.waitKey; -1 = none).

    n/p next/previous style, 1-9 pick a style, c chain on/off, +/- repeat, [ ] strength,
    o original side by side, m mirror on/off, f fullscreen on/off, s snapshot, r recording on/off,
    space pause, q/Esc quit.
    """
    state = dataclasses.replace(state, events=())
    if key is None or key < 0:
        return state
    key &= 0xFF
    ch = chr(key)
    n = len(state.styles)
    if ch in "qQ" or key == 27:
        return dataclasses.replace(state, quit=True)
    if ch in "np" and n:
        step = 1 if ch == "n" else -1
        return dataclasses.replace(state, style_index=(state.style_index + step) % n, chain_on=False)
    if ch.isdigit() and ch != "0":
        index = int(ch) - 1
        return dataclasses.replace(state, style_index=index, chain_on=False) if index < n else state
    if ch == "c":
        return dataclasses.replace(state, chain_on=not state.chain_on)
    if ch in "+=":
        return dataclasses.replace(state, repeat=min(MAX_REPEAT, state.repeat + 1))
    if ch in "-_":
        return dataclasses.replace(state, repeat=max(1, state.repeat - 1))
    if ch == "]":
        return dataclasses.replace(state, strength=round(min(1.0, state.strength + STRENGTH_STEP), 2))
    if ch == "[":
        return dataclasses.replace(state, strength=round(max(0.0, state.strength - STRENGTH_STEP), 2))
    if ch == "o":
        return dataclasses.replace(state, show_original=not state.show_original)
    if ch == "m":
        return dataclasses.replace(state, mirror=not state.mirror)
    if ch == "f":
        return dataclasses.replace(state, fullscreen=not state.fullscreen)
    if ch == "s":
        return dataclasses.replace(state, events=("snapshot",))
    if ch == "r":
        return dataclasses.replace(state, recording=not state.recording)
    if ch == " ":
        return dataclasses.replace(state, paused=not state.paused)
    return state


def apply_state(stylizer: Stylizer, state: LiveState) -> None:
    """Bring the stylizer in line with the live state (styles load on first use, then are cached)."""
    if stylizer.specs != state.active():
        stylizer.set_styles(list(state.active()))
    if stylizer.repeat != state.repeat:
        stylizer.set_repeat(state.repeat)
    if stylizer.strength != state.strength:
        stylizer.set_strength(state.strength)


class AutoSize:
    """The inference size for the live camera (``--size auto``): the largest long side of a ladder
    at which the frames in flight keep up with the camera.

    Fed with the seconds each frame took to stylize (``observe``); ``workers`` frames are stylized
    at once, so the loop can take workers / mean seconds frames a second (its capacity, over the
    last ``window`` frames, by their median; the first frame at each size, which pays the
    engine's one-off cost for a new shape, is left out). It steps down when the capacity is under ``low`` x the camera's rate,
    up when the capacity estimated for the next larger size (scaled by its pixel count) is over
    ``high`` x that rate, and waits ``window`` frames after each change. A size it had to leave is
    not tried again for ``retry`` frames, twice as long after each further retreat from it (a
    machine kept busier by the larger size than the estimate says would otherwise swing between
    two sizes). Sizes are long sides in pixels: ``native`` (the frame's own, reported as None)
    times each factor of ``ladder``, at least ``smallest``.
    """

    LADDER = (1.0, 0.85, 0.7, 0.6, 0.5, 0.4)

    def __init__(self, native: int, workers: int = 1, ladder: Sequence[float] = LADDER, low: float = 1.05,
                 high: float = 1.3, window: int = 15, smallest: int = 96, retry: int = 150):
        self.sizes = sorted({max(min(smallest, native), round(native * f)) for f in ladder}, reverse=True)
        self.workers, self.low, self.high, self.window = max(1, workers), low, high, window
        self.index = 0
        self.frames = 0                                   # frames observed
        self._seconds: collections.deque = collections.deque(maxlen=window)
        self.retry = retry
        self.reset()

    def reset(self) -> None:
        """Judge afresh from the next frame (e.g. another style): no timings kept, no size held back."""
        self._seconds.clear()
        self._skip = 1                                    # the next frame pays for a new shape or model
        self._retry = {i: self.retry for i in range(len(self.sizes))}   # wait before trying index i again
        self._not_before: dict[int, int] = {}             # index -> frame count from which it may be tried

    @property
    def size(self) -> int | None:
        """The long side to stylize at now; None = the frame's own."""
        return None if self.index == 0 else self.sizes[self.index]

    def observe(self, seconds: float, camera_fps: float) -> bool:
        """One frame stylized in ``seconds``, the camera delivering ``camera_fps``; True when the size changes."""
        self.frames += 1
        if self._skip:
            self._skip -= 1
            return False
        self._seconds.append(seconds)
        if len(self._seconds) < self.window:
            return False
        capacity = self.workers / max(1e-6, float(np.median(self._seconds)))
        step = 0
        if capacity < self.low * camera_fps and self.index < len(self.sizes) - 1:
            step = 1
            self._not_before[self.index] = self.frames + self._retry[self.index]
            self._retry[self.index] *= 2
        elif self.index > 0 and self.frames >= self._not_before.get(self.index - 1, 0) and \
                capacity * (self.sizes[self.index] / self.sizes[self.index - 1]) ** 2 > self.high * camera_fps:
            step = -1
        if step:
            self.index += step
            self._seconds.clear()
            self._skip = 1
        return bool(step)


class InFlight:
    """Frames being stylized, at most ``workers`` at once (in threads; inline for 1), taken out in order.

    Each entry: the frame as given (uint8 BGR (H, W, 3)), its capture time (time.monotonic s) and
    its stylized result (uint8 BGR (H, W, 3)). onnxruntime releases the GIL while it runs, so on
    a CPU two single-threaded runs side by side keep two cores busy.
    """

    def __init__(self, stylizer: Stylizer, workers: int = 1, on_done: Callable[[], None] | None = None):
        """on_done: called (from the worker thread) when a frame is done."""
        self.stylizer, self.workers, self.on_done = stylizer, max(1, int(workers)), on_done
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="stylecam-live") \
            if self.workers > 1 else None
        self._queue: collections.deque = collections.deque()

    def submit(self, frame: np.ndarray, captured_at: float) -> None:
        """Start stylizing ``frame`` (with one worker: stylize it now; its errors are raised here)."""
        if self._pool is None:
            result: Future = Future()
            result.set_result(self._timed(frame))
        else:
            result = self._pool.submit(self._timed, frame)
            if self.on_done is not None:
                result.add_done_callback(lambda _: self.on_done())
        self._queue.append((frame, captured_at, result))

    def _timed(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        t0 = time.perf_counter()
        return self.stylizer(frame), time.perf_counter() - t0

    @property
    def full(self) -> bool:
        return len(self._queue) >= self.workers

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def oldest_done(self) -> bool:
        return bool(self._queue) and self._queue[0][2].done()

    def pop(self) -> tuple[np.ndarray, float, np.ndarray, float]:
        """The oldest frame, its capture time, its result and the seconds it took to stylize; waits for
        it and re-raises its error."""
        frame, captured_at, result = self._queue.popleft()
        return (frame, captured_at, *result.result())

    def close(self) -> None:
        """Drop the frames not taken out (the running ones are waited for)."""
        for *_, result in self._queue:
            result.cancel()
        self._queue.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def _settings(state: LiveState) -> tuple:
    """What the stylized frames depend on: a change applies from the next frame read."""
    return state.active(), state.repeat, state.strength, state.mirror


def run_live(camera: CameraSource, stylizer: Stylizer, state: LiveState, window: Window | None,
             record_to: Path | None, overlay: LabelOverlay | None = None, max_frames: int | None = None,
             snapshot_dir: Path = Path("."), stabilize: float = 0.0,
             clock: Callable[[], float] = time.monotonic, workers: int = 1,
             virtual_camera: VirtualCamera | None = None, auto_size: bool = False) -> dict:
    """The camera loop (LiveLoop). Returns a summary; the recording (if any) is always finalised.

    workers > 1 stylizes that many frames at once (InFlight) while the next are read; they are
    shown in camera order. A key that changes the styles, repeat, strength or mirroring applies
    from the next frame read (the frames in flight are shown first); after a pause key, the
    frames in flight are shown but not recorded. stabilize > 0 holds the previous output where
    the scene stood still (imageops.Stabilizer); it starts afresh whenever those settings change.

    Without a window it records every frame to ``record_to`` until the camera stops,
    ``max_frames`` or Ctrl-C. ``virtual_camera`` gets every frame shown (without the HUD), paused
    ones too. With a window, keys drive ``state`` (see handle_key); later recordings (r) and
    snapshots (s, to ``snapshot_dir``) get timestamped names made unique (Recordings).

    auto_size: choose the inference size as the run goes (AutoSize, against the rate at which the
    camera really delivers, at most its nominal fps); a change applies from the next frame read,
    the frames in flight shown first. The summary then lists the sizes used (``auto_size``).

    The summary's ``fps`` is frames shown per second between the first and the last (paused time
    included; None under 2 frames), ``latency_ms`` the median and 90th percentile of the time from
    a frame's capture (CameraSource.captured_at) to the end of its showing: recorded and handed to
    the window (None without frames).
    """
    return LiveLoop(camera, stylizer, state, window, record_to, overlay, max_frames, snapshot_dir, stabilize,
                    clock, workers, virtual_camera, auto_size).run()


class LiveLoop:
    """One run of the camera loop; see run_live for what it does and its arguments.

    ``run()`` reads frames (``_read_loop``), submits them to InFlight and shows each result
    (``_present``); everything that changes during the run is an attribute here.
    """

    def __init__(self, camera: CameraSource, stylizer: Stylizer, state: LiveState, window: Window | None,
                 record_to: Path | None, overlay: LabelOverlay | None, max_frames: int | None,
                 snapshot_dir: Path, stabilize: float, clock: Callable[[], float], workers: int,
                 virtual_camera: VirtualCamera | None, auto_size: bool):
        self.camera, self.stylizer, self.window, self.overlay = camera, stylizer, window, overlay
        self.max_frames, self.snapshot_dir, self.virtual_camera, self.auto_size = \
            max_frames, snapshot_dir, virtual_camera, auto_size
        self.taken: set[str] = set()                      # file names given out in this run
        self.recordings = Recordings(record_to, camera.fps, clock, self.taken)
        self.snapshots: list[str] = []
        self.meter = FPSMeter()
        self.wake = threading.Event()   # set by a new camera frame or a frame done (workers > 1)
        self.flight = InFlight(stylizer, workers, on_done=self.wake.set)
        if self.flight.workers > 1:
            camera.on_frame = self.wake.set
        self.stabilizer = imageops.Stabilizer(stabilize)
        self.state = dataclasses.replace(state, recording=state.recording or (window is None and record_to is not None))
        self.shown: np.ndarray | None = None              # the last frame shown (uint8 BGR, without the HUD)
        self.settings: tuple | None = None                # _settings() the frames in flight were read under
        self.frames = 0                                   # frames shown
        self.window_fullscreen = False
        self.first_shown: float | None = None             # time.monotonic() of the first and the last frame shown
        self.last_shown: float | None = None
        self.latencies = array.array("d")                 # seconds from capture to shown, per frame
        self.reason, self.interrupted = "quit", False
        self.sizer: AutoSize | None = None                # made at the first frame (auto_size)
        self.sizes_used: list[dict] = []                  # auto_size: {"from_frame": n, "size": long side or None}
        self.delivery, self.frames_read = DeliveryRate(), 0   # the rate at which the camera really delivers
        self.present_seconds = 0.0                        # main-thread time of the last frame shown

    def run(self) -> dict:
        """The loop until quit, the camera's end, max_frames or Ctrl-C; then everything closed. The summary."""
        try:
            if self.window is not None and self.state.fullscreen:
                self.window.set_fullscreen(True)
                self.window_fullscreen = True
            self._read_loop()
            self._show_in_flight()          # the camera ended, or max_frames: the last frames are kept
        except KeyboardInterrupt:
            self.interrupted, self.reason = True, "interrupted"
        finally:
            self._close()
        return self.summary()

    def _read_loop(self) -> None:
        """Read, submit and show frames; returns when the run is to stop (``reason``)."""
        flight, camera = self.flight, self.camera
        while not self.state.quit:
            self.wake.clear()       # from here on, a frame done or a new camera frame ends the wait below
            capped = self.max_frames is not None and self.frames + len(flight) >= self.max_frames
            if len(flight) and (flight.full or capped or flight.oldest_done):
                self._present(*flight.pop())
                continue
            if capped:
                self.reason = "max frames"
                return
            if len(flight):   # a frame is being stylized, there is room for one more: take what comes first
                frame = camera.read(timeout=0)
                if frame is None:
                    if camera.ended:
                        return self._camera_stopped()
                    self.wake.wait(0.1)  # a new frame, or the one in flight done
                    continue
            else:
                frame = camera.read()   # waits for a slow camera; None once it has ended (see CameraSource)
                if frame is None:
                    return self._camera_stopped()
            captured_at = getattr(camera, "captured_at", None) or time.monotonic()
            self._count_read(frame)
            if self.state.paused and self.shown is not None:
                self._show_in_flight()
                if not self.state.quit:
                    self._present()
                continue
            if _settings(self.state) != self.settings or (self.sizer is not None and self.sizer.size != self.stylizer.size):
                self._show_in_flight()    # stylized with the settings and the size they were read under
                if self.state.quit:
                    return
                if self.state.paused:     # paused while those were shown
                    continue
                self._apply_changes()
            if self.state.mirror:
                frame = np.ascontiguousarray(frame[:, ::-1])
            flight.submit(frame, captured_at)

    def _camera_stopped(self) -> None:
        self.reason = self.camera.failure or "the camera stopped"
        log.warning("stylecam: %s; stopping", self.reason)

    def _count_read(self, frame: np.ndarray) -> None:
        """One frame read: the camera's real rate; the AutoSize, at the first frame (auto_size)."""
        self.frames_read += 1
        self.delivery.add(time.monotonic(), self.frames_read + self.camera.dropped)
        if self.auto_size and self.sizer is None:
            self.sizer = AutoSize(max(frame.shape[:2]), self.flight.workers)
            self.stylizer.size = self.sizer.size
            self.sizes_used.append({"from_frame": self.frames + len(self.flight) + 1, "size": self.sizer.size})

    def _apply_changes(self) -> None:
        """Bring the stylizer in line with new settings (keys) or a new AutoSize size."""
        sizer = self.sizer
        if _settings(self.state) != self.settings:
            apply_state(self.stylizer, self.state)
            if sizer is not None and self.settings is not None:
                sizer.reset()   # another style, repeat or strength: judge the size afresh
            self.settings = _settings(self.state)
        if sizer is not None and sizer.size != self.stylizer.size:
            self.stylizer.size = sizer.size
            self.sizes_used.append({"from_frame": self.frames + 1, "size": sizer.size})
            log.info("stylecam: inference size now %s", sizer.size or "the frame's own")
        self.stabilizer.reset()

    def _show_in_flight(self) -> None:
        while len(self.flight) and not self.state.quit:
            self._present(*self.flight.pop())

    def _present(self, frame: np.ndarray | None = None, captured_at: float = 0.0, result: np.ndarray | None = None,
                 seconds: float = 0.0) -> None:
        """Show (and record) a stylized frame, or the last one again (paused); read the key.
        seconds: the time the frame took to stylize (for auto_size)."""
        started = time.perf_counter()
        if result is not None:
            if self.sizer is not None and self.sizer.size == self.stylizer.size:   # not a frame of the size before a change
                # one worker: the loop also waits for the showing of each frame
                self.sizer.observe(seconds + (self.present_seconds if self.flight.workers == 1 else 0.0),
                                   self.delivery.rate(self.camera.fps))
            self.shown = compose(frame, self.stabilizer(frame, result), self.overlay, self.state.show_original)
            self.frames += 1
        self.meter.tick()
        if self.state.recording and not self.state.paused:
            self.recordings.write(self.shown)
        else:
            self.recordings.hold(self.state.recording)
        if self.virtual_camera is not None:
            self.virtual_camera.send(self.shown)
        if self.window is not None:
            self._show_in_window()
        if result is not None:   # shown and recorded: the frame's way from the camera ends here
            self.last_shown = time.monotonic()
            self.first_shown = self.first_shown if self.first_shown is not None else self.last_shown
            self.latencies.append(self.last_shown - captured_at)
        if self.window is not None and "snapshot" in self.state.events:
            path = timestamped("stylecam_snapshot", ".png", self.snapshot_dir, self.taken)
            self.snapshots.append(str(write_image(path, self.shown)))
        self.present_seconds = time.perf_counter() - started

    def _show_in_window(self) -> None:
        """The shown frame with the HUD in the window; the key pressed changes the state."""
        recent = self.latencies[-LATENCY_WINDOW:]
        lines = hud_lines(list(self.state.active()), self.state.repeat, self.meter.fps, self.stylizer.providers,
                          self.stylizer.times.inference, self.state.strength,
                          extra=hud_flags(self.stylizer, self.state, auto=self.sizer is not None),
                          latency_ms=float(np.median(recent)) * 1e3 if len(recent) else None)
        self.state = handle_key(self.state, self.window.show(imageops.draw_text_lines(self.shown, lines)))
        if self.state.fullscreen != self.window_fullscreen:
            self.window_fullscreen = self.state.fullscreen
            self.window.set_fullscreen(self.window_fullscreen)

    def _close(self) -> None:
        """The recording first: a second Ctrl-C while a running frame is waited for must not lose it."""
        try:
            self.recordings.close()
        finally:
            try:
                if self.virtual_camera is not None:
                    self.virtual_camera.close()
            finally:
                try:
                    self.camera.close()
                finally:
                    if self.window is not None:
                        self.window.close()
                    self.flight.close()

    def summary(self) -> dict:
        """What the run did: frames, why it stopped, files written, frame rate and latency (see run_live)."""
        frames, latencies, virtual_camera = self.frames, self.latencies, self.virtual_camera
        span = self.last_shown - self.first_shown if frames > 1 else 0.0
        return {"kind": "camera", "camera": self.camera.index, "frames": frames, "stopped": self.reason,
                "recordings": self.recordings.paths, "snapshots": self.snapshots, "interrupted": self.interrupted,
                "dropped_frames": self.camera.dropped, "workers": self.flight.workers,
                **({"virtual_camera": virtual_camera.device} if virtual_camera is not None else {}),
                **({"auto_size": self.sizes_used} if self.auto_size else {}),
                "fps": round((frames - 1) / span, 2) if span > 0 else None,
                "latency_ms": {"median": round(float(np.median(latencies)) * 1e3, 1),
                               "p90": round(float(np.percentile(latencies, 90)) * 1e3, 1)} if latencies else None}


def hud_flags(stylizer, state: LiveState, auto: bool = False) -> list[str]:
    """The live HUD's flags: "int8" when a model of the chain really runs int8, "size auto: N px"
    (auto: the inference size chosen now, "native" for the frame's own), "REC", "PAUSED"."""
    int8 = any(getattr(e, "precision", "") == "int8" for e in getattr(stylizer, "entries", ()))
    size = f"size auto: {stylizer.size} px" if getattr(stylizer, "size", None) else "size auto: native"
    return [flag for flag, on in (("int8", int8), (size, auto), ("REC", state.recording), ("PAUSED", state.paused))
            if on]


