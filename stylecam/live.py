"""The live camera loop: keys, HUD, recordings and snapshots, frames stylised while the next are read.

Frames are uint8 BGR (H, W, 3). ``LiveState`` holds what the keys change (``handle_key``, pure);
``run_live`` drives a CameraSource, a Stylizer and an optional Window. With ``workers`` > 1
(stylecam's default on a multi-core CPU: 2, the cores split between them) that many frames are
stylised at once, which keeps both cores of a 2-core CPU busy; frames are still shown in camera order.
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
from stylecam.overlay import LabelOverlay, compose
from stylecam.pipeline import Stylizer
from stylecam.sinks import VideoWriter, VirtualCamera, Window, hud_lines, write_image
from stylecam.camera import CameraSource

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
    show_original: bool = False             # original | stylised side by side
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


class FPSMeter:
    """Exponential moving average of frames per second."""

    def __init__(self, alpha: float = 0.1):
        self.alpha, self.fps, self._last = alpha, 0.0, None

    def tick(self, now: float | None = None) -> float:
        now = time.perf_counter() if now is None else now
        if self._last is not None and now > self._last:
            inst = 1.0 / (now - self._last)
            self.fps = inst if self.fps == 0 else (1 - self.alpha) * self.fps + self.alpha * inst
        self._last = now
        return self.fps


def timestamped(prefix: str, ext: str, folder: Path = Path("."), taken: set[str] | None = None) -> Path:
    """folder/PREFIX_YYYYmmdd_HHMMSS.EXT, made unique against ``taken`` and existing files (see unique_path)."""
    return unique_path(folder / f"{prefix}_{time.strftime('%Y%m%d_%H%M%S')}{ext}", taken if taken is not None else set())


def unique_path(path: Path, taken: set[str]) -> Path:
    """``path``, else NAME_2.EXT, NAME_3.EXT, ...: the first that neither exists nor is in ``taken``
    (names already given out in this run, e.g. a recording still being written); it is added to ``taken``."""
    candidate, n = Path(path), 1
    while str(candidate) in taken or candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}_{n}{path.suffix}")
    taken.add(str(candidate))
    return candidate


class RealTimePacer:
    """How many times to write each processed frame so that a recording at ``fps`` plays in real time.

    The live loop stylises fewer frames a second than the camera's nominal ``fps`` (the writer's
    rate): each frame is held for the output ticks (1/fps s on ``clock``, a monotonic clock in
    seconds) elapsed since the previous written frame, at least 1, the fraction carried over.
    ``restart()`` (a new recording, or a pause) starts afresh, so time not recorded is left out.
    """

    def __init__(self, fps: float, clock: Callable[[], float] = time.monotonic):
        self.fps, self.clock = float(fps), clock
        self._last: float | None = None
        self._carry = 0.0

    def restart(self) -> None:
        self._last, self._carry = None, 0.0

    def copies(self) -> int:
        """Copies of the frame written now (1 for the first frame after a restart)."""
        now = self.clock()
        if self._last is None:
            self._last = now
            return 1
        ticks = max(0.0, now - self._last) * self.fps + self._carry
        n = max(1, int(ticks + 1e-6))
        self._carry = max(0.0, ticks - n)   # frames coming faster than fps are never owed back
        self._last = now
        return n



class AutoSize:
    """The inference size for the live camera (``--size auto``): the largest long side of a ladder
    at which the frames in flight keep up with the camera.

    Fed with the seconds each frame took to stylise (``observe``); ``workers`` frames are stylised
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
        """The long side to stylise at now; None = the frame's own."""
        return None if self.index == 0 else self.sizes[self.index]

    def observe(self, seconds: float, camera_fps: float) -> bool:
        """One frame stylised in ``seconds``, the camera delivering ``camera_fps``; True when the size changes."""
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


class DeliveryRate:
    """Frames a second a camera really delivers, over the last ``span`` seconds.

    ``add(now, delivered)``: at each read, time.monotonic() seconds and the frames delivered so far
    (read + replaced unread; only differences count). ``rate(nominal)``: at most the nominal fps,
    and the nominal fps itself until ``least`` seconds have been seen.
    """

    def __init__(self, span: float = 3.0, least: float = 1.0):
        self.span, self.least = span, least
        self._samples: collections.deque = collections.deque()

    def add(self, now: float, delivered: int) -> None:
        self._samples.append((now, delivered))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.span:
            self._samples.popleft()

    def rate(self, nominal: float) -> float:
        if len(self._samples) < 2:
            return nominal
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        return nominal if t1 - t0 < self.least else min(nominal, (n1 - n0) / (t1 - t0))


class InFlight:
    """Frames being stylised, at most ``workers`` at once (in threads; inline for 1), taken out in order.

    Each entry: the frame as given (uint8 BGR (H, W, 3)), its capture time (time.monotonic s) and
    its stylised result (uint8 BGR (H, W, 3)). onnxruntime releases the GIL while it runs, so on
    a CPU two single-threaded runs side by side keep two cores busy.
    """

    def __init__(self, stylizer: Stylizer, workers: int = 1, on_done: Callable[[], None] | None = None):
        """on_done: called (from the worker thread) when a frame is done."""
        self.stylizer, self.workers, self.on_done = stylizer, max(1, int(workers)), on_done
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="stylecam-live") \
            if self.workers > 1 else None
        self._queue: collections.deque = collections.deque()

    def submit(self, frame: np.ndarray, captured_at: float) -> None:
        """Start stylising ``frame`` (with one worker: stylise it now; its errors are raised here)."""
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
        """The oldest frame, its capture time, its result and the seconds it took to stylise; waits for
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


class Recordings:
    """The live recordings: the first to ``record_to``, later ones (key r) timestamped next to it
    with its extension (.mp4 without one). Each frame is held for the wall-clock time it covers on
    ``clock`` (RealTimePacer), so a recording plays in real time at ``fps``; paused time is left out.
    """

    def __init__(self, record_to: Path | None, fps: float, clock: Callable[[], float], taken: set[str]):
        self.record_to, self.fps, self.taken = record_to, fps, taken
        self.pacer = RealTimePacer(fps, clock)
        self.ext = record_to.suffix.lower() if record_to is not None and record_to.suffix else ".mp4"
        self.folder = record_to.parent if record_to is not None else Path(".")
        self.writer: VideoWriter | None = None
        self.paths: list[str] = []

    def write(self, shown: np.ndarray) -> None:
        """Add the uint8 BGR (H, W, 3) frame shown now (opens a recording when none is open)."""
        if self.writer is None:
            if self.record_to is not None and not self.paths:
                target = self.record_to
                self.taken.add(str(target))
            else:
                target = timestamped("stylecam", self.ext, self.folder, self.taken)
            self.writer = VideoWriter(target, self.fps, (shown.shape[1], shown.shape[0]))
            self.pacer.restart()
        self.writer.write(shown, repeat=self.pacer.copies())

    def hold(self, recording: bool) -> None:
        """Nothing recorded now (paused, or not recording): that time is left out; when recording
        is off, the open recording is finalised."""
        self.pacer.restart()
        if not recording:
            self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.paths.append(str(self.writer.close()))
            self.writer = None


def _settings(state: LiveState) -> tuple:
    """What the stylised frames depend on: a change applies from the next frame read."""
    return state.active(), state.repeat, state.strength, state.mirror


def run_live(camera: CameraSource, stylizer: Stylizer, state: LiveState, window: Window | None,
             record_to: Path | None, overlay: LabelOverlay | None = None, max_frames: int | None = None,
             snapshot_dir: Path = Path("."), stabilise: float = 0.0,
             clock: Callable[[], float] = time.monotonic, workers: int = 1,
             virtual_camera: VirtualCamera | None = None, auto_size: bool = False) -> dict:
    """The camera loop. Returns a summary; the recording (if any) is always finalised.

    workers > 1 stylises that many frames at once (InFlight) while the next are read; they are
    shown in camera order. A key that changes the styles, repeat, strength or mirroring applies
    from the next frame read (the frames in flight are shown first); after a pause key, the
    frames in flight are shown but not recorded. stabilise > 0 holds the previous output where
    the scene stood still (imageops.Stabiliser); it starts afresh whenever those settings change.

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
    taken: set[str] = set()
    recordings = Recordings(record_to, camera.fps, clock, taken)
    snapshots: list[str] = []
    meter = FPSMeter()
    wake = threading.Event()   # set by a new camera frame or a frame done (workers > 1)
    flight = InFlight(stylizer, workers, on_done=wake.set)
    if flight.workers > 1:
        camera.on_frame = wake.set
    stabiliser = imageops.Stabiliser(stabilise)
    state = dataclasses.replace(state, recording=state.recording or (window is None and record_to is not None))
    shown: np.ndarray | None = None
    settings = None
    frames = 0
    window_fullscreen = False
    first_shown = last_shown = None              # time.monotonic() of the first and the last frame shown
    latencies = array.array("d")                 # seconds from capture to shown, per frame
    reason, interrupted = "quit", False
    sizer: AutoSize | None = None                # made at the first frame (auto_size)
    sizes_used: list[dict] = []                  # auto_size: {"from_frame": n, "size": long side or None}
    delivery, frames_read = DeliveryRate(), 0    # the rate at which the camera really delivers
    present_seconds = 0.0                        # main-thread time of the last frame shown

    def present(frame: np.ndarray | None = None, captured_at: float = 0.0, result: np.ndarray | None = None,
                seconds: float = 0.0) -> None:
        """Show (and record) a stylised frame, or the last one again (paused); read the key.
        seconds: the time the frame took to stylise (for auto_size)."""
        nonlocal state, shown, frames, first_shown, last_shown, window_fullscreen, present_seconds
        started = time.perf_counter()
        if result is not None:
            if sizer is not None and sizer.size == stylizer.size:   # not a frame of the size before a change
                # one worker: the loop also waits for the showing of each frame
                sizer.observe(seconds + (present_seconds if flight.workers == 1 else 0.0),
                              delivery.rate(camera.fps))
            shown = compose(frame, stabiliser(frame, result), overlay, state.show_original)
            frames += 1
        meter.tick()
        if state.recording and not state.paused:
            recordings.write(shown)
        else:
            recordings.hold(state.recording)
        if virtual_camera is not None:
            virtual_camera.send(shown)
        if window is not None:
            recent = latencies[-LATENCY_WINDOW:]
            lines = hud_lines(list(state.active()), state.repeat, meter.fps, stylizer.providers,
                              stylizer.times.inference, state.strength,
                              extra=hud_flags(stylizer, state, auto=sizer is not None),
                              latency_ms=float(np.median(recent)) * 1e3 if len(recent) else None)
            state = handle_key(state, window.show(imageops.draw_text_lines(shown, lines)))
            if state.fullscreen != window_fullscreen:
                window_fullscreen = state.fullscreen
                window.set_fullscreen(window_fullscreen)
        if result is not None:   # shown and recorded: the frame's way from the camera ends here
            last_shown = time.monotonic()
            first_shown = first_shown if first_shown is not None else last_shown
            latencies.append(last_shown - captured_at)
        if window is not None and "snapshot" in state.events:
            snapshots.append(str(write_image(timestamped("stylecam_snapshot", ".png", snapshot_dir, taken), shown)))
        present_seconds = time.perf_counter() - started

    def show_in_flight() -> None:
        while len(flight) and not state.quit:
            present(*flight.pop())

    try:
        if window is not None and state.fullscreen:
            window.set_fullscreen(True)
            window_fullscreen = True
        while not state.quit:
            wake.clear()            # from here on, a frame done or a new camera frame ends the wait below
            capped = max_frames is not None and frames + len(flight) >= max_frames
            if len(flight) and (flight.full or capped or flight.oldest_done):
                present(*flight.pop())
                continue
            if capped:
                reason = "max frames"
                break
            if len(flight):   # a frame is being stylised, there is room for one more: take what comes first
                frame = camera.read(timeout=0)
                if frame is None:
                    if camera.ended:
                        reason = camera.failure or "the camera stopped"
                        log.warning("stylecam: %s; stopping", reason)
                        break
                    wake.wait(0.1)  # a new frame, or the one in flight done
                    continue
            else:
                frame = camera.read()   # waits for a slow camera; None once it has ended (see CameraSource)
                if frame is None:
                    reason = camera.failure or "the camera stopped"
                    log.warning("stylecam: %s; stopping", reason)
                    break
            captured_at = getattr(camera, "captured_at", None) or time.monotonic()
            frames_read += 1
            delivery.add(time.monotonic(), frames_read + camera.dropped)
            if auto_size and sizer is None:
                sizer = AutoSize(max(frame.shape[:2]), flight.workers)
                stylizer.size = sizer.size
                sizes_used.append({"from_frame": frames + len(flight) + 1, "size": sizer.size})
            if state.paused and shown is not None:
                show_in_flight()
                if not state.quit:
                    present()
                continue
            if _settings(state) != settings or (sizer is not None and sizer.size != stylizer.size):
                show_in_flight()    # stylised with the settings and the size they were read under
                if state.quit:
                    break
                if state.paused:    # paused while those were shown
                    continue
                if _settings(state) != settings:
                    apply_state(stylizer, state)
                    if sizer is not None and settings is not None:
                        sizer.reset()   # another style, repeat or strength: judge the size afresh
                    settings = _settings(state)
                if sizer is not None and sizer.size != stylizer.size:
                    stylizer.size = sizer.size
                    sizes_used.append({"from_frame": frames + 1, "size": sizer.size})
                    log.info("stylecam: inference size now %s", sizer.size or "the frame's own")
                stabiliser.reset()
            if state.mirror:
                frame = np.ascontiguousarray(frame[:, ::-1])
            flight.submit(frame, captured_at)
        show_in_flight()            # the camera ended, or max_frames: the last frames are kept
    except KeyboardInterrupt:
        interrupted, reason = True, "interrupted"
    finally:   # the recording first: a second Ctrl-C while a running frame is waited for must not lose it
        try:
            recordings.close()
        finally:
            try:
                if virtual_camera is not None:
                    virtual_camera.close()
            finally:
                try:
                    camera.close()
                finally:
                    if window is not None:
                        window.close()
                    flight.close()
    span = last_shown - first_shown if frames > 1 else 0.0
    return {"kind": "camera", "camera": camera.index, "frames": frames, "stopped": reason,
            "recordings": recordings.paths, "snapshots": snapshots, "interrupted": interrupted,
            "dropped_frames": camera.dropped, "workers": flight.workers,
            **({"virtual_camera": virtual_camera.device} if virtual_camera is not None else {}),
            **({"auto_size": sizes_used} if auto_size else {}),
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


