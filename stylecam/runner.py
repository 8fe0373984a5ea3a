"""The frame loops: files (every frame, decode / inference / encode overlapped) and cameras (live).

Frames are uint8 BGR (H, W, 3) everywhere here; the Stylizer does the float work.
"""
from __future__ import annotations

import collections
import dataclasses
import importlib
import logging
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from stylecam import imageops
from stylecam.config import RunConfig
from stylecam.errors import UserError
from stylecam.pipeline import Stylizer
from stylecam.session import GPU_PROVIDERS, probe_providers
from stylecam.sinks import VideoWriter, Window, hud_lines, probe_frame_times, vfr_timing, write_image
from stylecam.sources import (ALPHA_EXTS, IMAGE_EXTS, VIDEO_EXTS, CameraSource, SourceError, SourceItem,
                              VideoFileSource, expand_sources, image_format, prefetch, read_image,
                              read_image_alpha)
from stylecam.styles import find_classifier

log = logging.getLogger("stylecam")


class Interrupted(Exception):
    """Ctrl-C during a run; ``summary`` says what was written."""

    def __init__(self, summary: dict):
        super().__init__("interrupted")
        self.summary = summary


# ----- classifier overlay --------------------------------------------------------------------

class LabelOverlay:
    """Top-3 labels of a classifier for the original and the stylised frame, side by side.

    Uses ``stylecam.classify`` (load_classifier, Classifier.top_k, overlay_labels).
    """

    def __init__(self, model: str, device: str = "auto", k: int = 3, weights_dir: str | None = None):
        """model: a classifier .onnx file, or the name of one shipped in <weights>/classifiers/."""
        try:
            classify = importlib.import_module("stylecam.classify")
        except ModuleNotFoundError as err:
            if err.name != "stylecam.classify":
                raise
            raise UserError("--classify is not available: this installation has no stylecam.classify module",
                            "install the complete stylecam package") from None
        self._classify = classify
        self.classifier = classify.load_classifier(str(find_classifier(model, weights_dir)), device=device)
        self.k = k

    def compose(self, original: np.ndarray, stylised: np.ndarray) -> np.ndarray:
        """uint8 BGR original and stylised (H, W, 3) -> uint8 BGR (H, 2W, 3) with labels drawn."""
        left = self._classify.overlay_labels(original, self.classifier.top_k(original, k=self.k), "original")
        right = self._classify.overlay_labels(stylised, self.classifier.top_k(stylised, k=self.k), "stylised")
        return imageops.side_by_side(left, right)


def compose(original: np.ndarray, stylised: np.ndarray, overlay: LabelOverlay | None, show_original: bool) -> np.ndarray:
    """What is shown and recorded: the stylised frame, or original | stylised (with labels)."""
    if overlay is not None:
        return overlay.compose(original, stylised)
    if show_original:
        return imageops.side_by_side(original, stylised)
    return stylised


# ----- output names --------------------------------------------------------------------------

WRITABLE_VIDEO_EXTS = {".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm", ".gif"}


def default_output(path: str | Path) -> Path:
    """``clip.mp4`` -> ``clip_stylised.mp4`` next to the input."""
    path = Path(path)
    return path.with_name(f"{path.stem}_stylised{path.suffix}")


def output_for(item: SourceItem, output: str | None, many: bool) -> Path:
    """Output path of one item.

    No -o: NAME_stylised.EXT next to the input. -o a folder (existing, ending in a separator,
    without an extension, or several inputs): the input's path relative to its folder, mirrored
    under it. -o a file: that file (check_outputs refuses what cannot be written). Names made from
    the input's get a writable extension: videos in other containers (.flv, .wmv, ...) go to .mp4,
    images with an unknown extension to their content's (.jpg for a JPEG, else .png).
    """
    if output is None:
        return _writable_name(item, default_output(item.location))
    out = Path(output)
    as_folder = out.is_dir() or output.endswith(("/", "\\")) or not out.suffix
    if many and not as_folder and out.suffix.lower() in IMAGE_EXTS | VIDEO_EXTS:
        raise UserError(f"several inputs cannot all be written to one file ({output})",
                        f"give -o a folder, e.g. -o {out.with_suffix('')}/")
    return _writable_name(item, out / item.relative) if many or as_folder else out


def _writable_name(item: SourceItem, out: Path) -> Path:
    """``out`` with an extension stylecam can write for the item's kind (see output_for)."""
    ext = out.suffix.lower()
    if item.kind == "video" and ext not in WRITABLE_VIDEO_EXTS | IMAGE_EXTS:
        return out.with_suffix(".mp4")
    if item.kind == "image" and ext not in IMAGE_EXTS:
        return out.with_suffix(image_format(item.location) or ".png")
    return out


def check_outputs(pairs: Sequence[tuple[SourceItem, Path]]) -> None:
    """Refuse to overwrite an input or to write two inputs to one output."""
    seen: dict[Path, str] = {}
    for item, out in pairs:
        if Path(item.location).resolve() == out.resolve():
            raise UserError(f"output {out} would overwrite its input", "choose another -o")
        key = out.resolve()
        if key in seen:
            raise UserError(f"{item.location} and {seen[key]} would both be written to {out}",
                            "give -o a folder")
        seen[key] = item.location
        if item.kind == "image" and out.suffix.lower() in WRITABLE_VIDEO_EXTS:
            raise UserError(f"cannot write image {item.location} to a video file {out}", "give -o a folder or an image name")
        if item.kind == "image" and out.suffix.lower() not in IMAGE_EXTS:
            raise UserError(f"cannot write image {item.location} as {out.suffix or 'a file without extension'} ({out})",
                            f"give -o an image name ({', '.join(sorted(IMAGE_EXTS))}) or a folder")
        if item.kind == "video" and out.suffix.lower() in IMAGE_EXTS:
            raise UserError(f"cannot write video {item.location} to an image file {out}",
                            f"give -o a folder or a video name ({', '.join(sorted(WRITABLE_VIDEO_EXTS))})")
        if item.kind == "video" and out.suffix.lower() not in WRITABLE_VIDEO_EXTS:
            raise UserError(f"cannot write video {item.location} as {out.suffix or 'a file without extension'} "
                            f"({out})", f"give -o a video name ({', '.join(sorted(WRITABLE_VIDEO_EXTS))}) or a folder")


# ----- files ---------------------------------------------------------------------------------

def _progress(total, desc: str, enabled: bool, position: int = 0, unit: str = "frame", leave: bool = True):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, position=position, leave=leave,
                dynamic_ncols=True, file=sys.stderr)


def _batches(frames: Iterable[np.ndarray], size: int) -> Iterable[list[np.ndarray]]:
    batch: list[np.ndarray] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def stylise_in_order(groups: Iterable[list[np.ndarray]], stylizer: Stylizer, workers: int = 1
                     ) -> Iterator[tuple[list[np.ndarray], np.ndarray, float]]:
    """Stylise groups of uint8 BGR (H, W, 3) frames; yields (group, stylised (N, H, W, 3), seconds) in input order.

    workers > 1 stylises that many groups at once in threads (onnxruntime runs release the GIL):
    on a CPU, several single-threaded runs side by side keep every core busy without the
    synchronisation of one multi-threaded run. At most 2 x workers groups are in flight.
    """
    def work(group: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray, float]:
        t0 = time.perf_counter()
        styled = stylizer.stylize_batch(np.stack(group)) if len({g.shape for g in group}) == 1 else \
            np.stack([stylizer(g) for g in group])
        return group, styled, time.perf_counter() - t0

    if workers <= 1:
        yield from map(work, groups)
        return
    from concurrent.futures import ThreadPoolExecutor
    pending: collections.deque = collections.deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stylecam-infer") as pool:
        try:
            for group in groups:
                pending.append(pool.submit(work, group))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


class _EncodeThread:
    """Writes frames from a bounded queue in a background thread (encoding overlaps inference)."""

    def __init__(self, writer_factory: Callable[[np.ndarray], VideoWriter], maxsize: int = 8):
        self._factory = writer_factory
        self.writer: VideoWriter | None = None
        self.error: BaseException | None = None
        self.encode_s = 0.0
        self._q: queue.Queue = queue.Queue(maxsize=maxsize)
        self._thread = threading.Thread(target=self._work, name="stylecam-encode", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            frame = self._q.get()
            if frame is None:
                return
            if self.error is not None:
                continue
            try:
                t0 = time.perf_counter()
                if self.writer is None:
                    self.writer = self._factory(frame)
                self.writer.write(frame)
                self.encode_s += time.perf_counter() - t0
            except BaseException as err:
                self.error = err

    def put(self, frame: np.ndarray) -> None:
        if self.error is not None:
            raise self.error
        self._q.put(frame)

    def abort(self) -> None:
        """Stop after the queued frames and delete the partial output (used on errors)."""
        self._q.put(None)
        self._thread.join()
        if self.writer is not None:
            self.writer.abort()

    def finish(self) -> VideoWriter | None:
        """Wait for every queued frame to be written; returns the writer (not yet closed)."""
        self._q.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error
        return self.writer


def process_video(path: str, out: Path, stylizer: Stylizer, overlay: LabelOverlay | None = None,
                  show_original: bool = False, batch: int = 1, max_frames: int | None = None,
                  progress: bool = True, position: int = 0, workers: int = 1, stabilise: float = 0.0) -> dict:
    """Stylise every frame of ``path`` into ``out`` (audio kept); returns a summary dict.

    stabilise > 0 holds the previous output where the scene stood still (imageops.Stabiliser),
    applied in frame order after inference.

    Decoding runs in a thread ahead of inference, encoding in another behind it, joined by
    bounded queues. Ctrl-C finalises what was written and raises Interrupted. Raises
    SourceError when the input cannot be decoded.
    """
    source = VideoFileSource(path)
    total = source.frame_count if max_frames is None else min(source.frame_count or max_frames, max_frames)
    frames_iter: Iterable[np.ndarray] = source
    if max_frames is not None:
        frames_iter = (f for f, _ in zip(source, range(max_frames)))
    frame_times = probe_frame_times(path) or []
    timing = vfr_timing(frame_times, source.fps)   # None: constant frame rate
    out_fps, copies = timing if timing else (source.fps, None)
    encoder = _EncodeThread(lambda first: VideoWriter(out, out_fps, (first.shape[1], first.shape[0]), audio_from=path,
                                                      copies=copies, video_start=frame_times[0] if frame_times else 0.0))
    done = 0
    inference_s = 0.0
    bar = _progress(total, Path(path).name, progress, position=position)
    t_start = time.perf_counter()
    interrupted = False
    decoded = prefetch(frames_iter, maxsize=max(8, 2 * batch * workers))
    stabiliser = imageops.Stabiliser(stabilise)
    try:
        for group, styled, seconds in stylise_in_order(_batches(decoded, batch), stylizer, workers):
            inference_s += seconds / workers
            for original, result in zip(group, styled):
                encoder.put(compose(original, stabiliser(original, result), overlay, show_original))
            done += len(group)
            bar.update(len(group))
    except KeyboardInterrupt:
        interrupted = True
    except BaseException:
        encoder.abort()
        raise
    finally:
        decoded.close()
        bar.close()
    writer = encoder.finish()
    elapsed = time.perf_counter() - t_start
    summary = {"input": str(path), "output": str(out), "kind": "video", "frames": done,
               "frames_total": source.frame_count, "seconds": round(elapsed, 3),
               "fps": round(done / elapsed, 2) if elapsed > 0 else None,
               "stylise_ms_per_frame": round(1e3 * inference_s / done, 2) if done else None,
               "encode_ms_per_frame": round(1e3 * encoder.encode_s / done, 2) if done else None,
               "audio": bool(writer and writer.audio), "stabilise": stabilise, "interrupted": interrupted,
               "variable_frame_rate": timing is not None, "output_fps": round(out_fps, 3)}
    if writer is None:
        if interrupted:
            raise Interrupted(summary | {"output": None})
        raise SourceError(f"no frames decoded from {path}")
    writer.close()
    if interrupted:
        raise Interrupted(summary)
    return summary | _check_complete(path, done, source.frame_count, max_frames, out)


def _check_complete(path: str, done: int, announced: int | None, max_frames: int | None, out: Path) -> dict:
    """{"frames_missing": n} with a warning when clearly fewer frames were decoded than the file
    announces (more than 2 frames and 2 %: OpenCV's count is an estimate for some containers)."""
    expected = announced if announced is None or max_frames is None else min(announced, max_frames)
    missing = (expected or 0) - done
    if missing <= 2 or missing <= 0.02 * expected:
        return {"frames_missing": 0}
    log.warning("stylecam: warning: %s: decoded only %d of the %d frames the file announces "
                "(truncated or damaged?); %s holds those %d frames", path, done, expected, out, done)
    return {"frames_missing": missing}


def process_image(path: str, out: Path, stylizer: Stylizer, overlay: LabelOverlay | None = None,
                  show_original: bool = False) -> dict:
    """Stylise one image file into ``out``; returns a summary dict. Raises SourceError.

    The input's transparency (oriented like its colour) is kept where ``out`` can hold it.
    """
    frame, alpha = read_image_alpha(path) if out.suffix.lower() in ALPHA_EXTS else (read_image(path), None)
    t0 = time.perf_counter()
    result = stylizer(frame)
    ms = (time.perf_counter() - t0) * 1e3
    shown = compose(frame, result, overlay, show_original)
    alpha = alpha if shown.shape == frame.shape else None
    write_image(out, shown if alpha is None else np.dstack([shown, alpha]))  # transparency kept
    return {"input": str(path), "output": str(out), "kind": "image", "frames": 1, "stylise_ms": round(ms, 2)}


def save_steps(frame: np.ndarray, stylizer: Stylizer, out: Path) -> dict:
    """Write every step of chain x repeat for one frame as PNGs plus a contact sheet.

    Files: ``<out stem>_steps/00_original.png, 01_wave.png, ...`` and ``<out stem>_steps.png``.
    """
    steps = stylizer.steps(frame)
    folder = out.with_name(f"{out.stem}_steps")
    files = []
    for i, (label, image) in enumerate(steps):
        name = label.split(" ", 1)[-1] if i else "original"
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
        files.append(str(write_image(folder / f"{i:02d}_{safe}.png", image)))
    sheet = write_image(out.with_name(f"{out.stem}_steps.png"), imageops.contact_sheet(steps))
    return {"steps": files, "contact_sheet": str(sheet)}


def batch_size(config: RunConfig, stylizer: Stylizer) -> int:
    """Frames per inference call: as configured, else 4 on a GPU (fewer launches), 1 on the CPU
    (batching does not speed up convolutions there and only adds latency)."""
    if config.batch:
        return config.batch
    return 4 if any(p in GPU_PROVIDERS for p in stylizer.providers) else 1


def process_files(items: Sequence[SourceItem], config: RunConfig, stylizer: Stylizer,
                  overlay: LabelOverlay | None, workers: int = 1) -> tuple[list[dict], list[dict]]:
    """Every image and video item; returns (done, failed) summaries. Unreadable files are skipped."""
    many = len(items) > 1
    pairs = [(item, output_for(item, config.output, many)) for item in items]
    check_outputs(pairs)
    done, failed = [], []
    overall = _progress(len(items), "files", config.progress and many, unit="file")
    try:
        for item, out in pairs:
            try:
                if item.kind == "image":
                    summary = process_image(item.location, out, stylizer, overlay)
                    if config.save_steps:
                        summary.update(save_steps(read_image(item.location), stylizer, out))
                else:
                    summary = process_video(item.location, out, stylizer, overlay, batch=batch_size(config, stylizer),
                                            max_frames=config.max_frames, progress=config.progress,
                                            position=1 if many else 0, workers=workers,
                                            stabilise=config.stabilise)
                    if config.save_steps:
                        first = next(iter(VideoFileSource(item.location)))
                        summary.update(save_steps(first, stylizer, out))
                done.append(summary)
            except SourceError as err:
                log.error("stylecam: skipped %s: %s", item.location, err)
                failed.append({"input": item.location, "error": str(err)})
            except Interrupted as stop:
                stop.summary = {"done": done + [stop.summary], "failed": failed}
                raise
            overall.update(1)
    finally:
        overall.close()
    return done, failed


# ----- live ----------------------------------------------------------------------------------

STRENGTH_STEP = 0.1
MAX_REPEAT = 20


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
    recording: bool = False
    quit: bool = False
    events: tuple[str, ...] = field(default=())  # one-shot requests for the loop: "snapshot"

    def active(self) -> tuple[str, ...]:
        """The styles applied now, in order."""
        if self.chain_on or not self.styles:
            return self.chain
        return (self.styles[self.style_index],)


def initial_state(chain: Sequence[str], styles: Sequence[str], repeat: int = 1, strength: float = 1.0,
                  mirror: bool = False) -> LiveState:
    """Start with the chain; single-style keys cycle through ``styles`` (the chain's first if absent)."""
    names = tuple(styles) or tuple(chain)
    index = names.index(chain[0]) if chain and chain[0] in names else 0
    return LiveState(styles=names, chain=tuple(chain), style_index=index, chain_on=len(chain) > 1 or not names,
                     repeat=repeat, strength=strength, mirror=mirror)


def handle_key(state: LiveState, key: int) -> LiveState:
    """New state after a key press (``key`` as returned by cv2.waitKey; -1 = none).

    n/p next/previous style, 1-9 pick a style, c chain on/off, +/- repeat, [ ] strength,
    o original side by side, m mirror on/off, s snapshot, r recording on/off, space pause, q/Esc quit.
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


def run_live(camera: CameraSource, stylizer: Stylizer, state: LiveState, window: Window | None,
             record_to: Path | None, overlay: LabelOverlay | None = None, max_frames: int | None = None,
             snapshot_dir: Path = Path("."), stabilise: float = 0.0,
             clock: Callable[[], float] = time.monotonic) -> dict:
    """The camera loop. Returns a summary; the recording (if any) is always finalised.

    stabilise > 0 holds the previous output where the scene stood still (imageops.Stabiliser);
    it starts afresh whenever the style, repeat, strength or mirroring changes.

    Without a window it records every frame to ``record_to`` until the camera stops, ``max_frames``
    or Ctrl-C. With a window, keys drive ``state`` (see handle_key); later recordings (r) go next
    to ``record_to`` with its extension (.mp4 without one), snapshots (s) to ``snapshot_dir``, under
    timestamped names made unique. Recordings play in real time at the camera's nominal fps: each
    stylised frame is held for the wall-clock time (on ``clock``) it covers (RealTimePacer); paused
    time is not recorded.
    """
    writer: VideoWriter | None = None
    recordings: list[str] = []
    snapshots: list[str] = []
    taken: set[str] = set()
    pacer = RealTimePacer(camera.fps, clock)
    later_ext = record_to.suffix.lower() if record_to is not None and record_to.suffix else ".mp4"
    later_dir = record_to.parent if record_to is not None else Path(".")
    meter = FPSMeter()
    frames = 0
    shown: np.ndarray | None = None
    state = dataclasses.replace(state, recording=state.recording or (window is None and record_to is not None))
    reason = "quit"
    interrupted = False
    stabiliser = imageops.Stabiliser(stabilise)
    settings = None
    try:
        while not state.quit:
            frame = camera.read()   # waits for a slow camera; None once it has ended (see CameraSource)
            if frame is None:
                reason = camera.failure or "the camera stopped"
                log.warning("stylecam: %s; stopping", reason)
                break
            apply_state(stylizer, state)
            if state.mirror:
                frame = np.ascontiguousarray(frame[:, ::-1])
            if not state.paused or shown is None:
                if (state.active(), state.repeat, state.strength, state.mirror) != settings:
                    settings = (state.active(), state.repeat, state.strength, state.mirror)
                    stabiliser.reset()
                result = stabiliser(frame, stylizer(frame))
                shown = compose(frame, result, overlay, state.show_original)
                frames += 1
            meter.tick()
            if state.recording and not state.paused:
                if writer is None:
                    if record_to is not None and not recordings:
                        target = record_to
                        taken.add(str(target))
                    else:
                        target = timestamped("stylecam", later_ext, later_dir, taken)
                    writer = VideoWriter(target, camera.fps, (shown.shape[1], shown.shape[0]))
                    pacer.restart()
                writer.write(shown, repeat=pacer.copies())
            else:
                pacer.restart()   # paused or not recording: that time is not in the recording
                if not state.recording and writer is not None:
                    recordings.append(str(writer.close()))
                    writer = None
            if window is not None:
                lines = hud_lines(list(state.active()), state.repeat, meter.fps, stylizer.providers,
                                  stylizer.times.inference, state.strength,
                                  extra=hud_flags(stylizer, state))
                state = handle_key(state, window.show(imageops.draw_text_lines(shown, lines)))
                if "snapshot" in state.events:
                    snapshots.append(str(write_image(timestamped("stylecam_snapshot", ".png", snapshot_dir, taken),
                                                     shown)))
            if max_frames is not None and frames >= max_frames:
                reason = "max frames"
                break
    except KeyboardInterrupt:
        interrupted, reason = True, "interrupted"
    finally:
        camera.close()
        if window is not None:
            window.close()
        if writer is not None:
            recordings.append(str(writer.close()))
    return {"kind": "camera", "camera": camera.index, "frames": frames, "stopped": reason,
            "recordings": recordings, "snapshots": snapshots, "interrupted": interrupted,
            "dropped_frames": camera.dropped}


# ----- one invocation ------------------------------------------------------------------------

def hud_flags(stylizer, state: LiveState) -> list[str]:
    """The live HUD's flags: "int8" when a model of the chain really runs int8, "REC", "PAUSED"."""
    int8 = any(getattr(e, "precision", "") == "int8" for e in getattr(stylizer, "entries", ()))
    return [flag for flag, on in (("int8", int8), ("REC", state.recording), ("PAUSED", state.paused)) if on]


def plan_workers(workers: int | None, threads: int | None, on_gpu: bool, cores: int) -> tuple[int, int | None]:
    """(frames stylised at once, onnxruntime threads per model) for video files.

    Asked-for values are kept. Auto on the CPU: one single-threaded run per core, up to 4 runs
    (several independent runs keep the cores busier than one run split over threads: 30 -> 39
    FPS at 640x480 on 2 cores); the threads split the cores between the runs. On a GPU: 1 run.
    """
    if workers is None:
        workers = 1 if on_gpu or cores < 2 else min(cores, 4)
    if threads is None and workers > 1 and not on_gpu:
        threads = max(1, cores // workers)
    return workers, threads


def build_stylizer(config: RunConfig, threads: int | None = None) -> Stylizer:
    e = config.engine
    return Stylizer(styles=list(e.styles), repeat=e.repeat, device=e.device, variant=e.variant, prepad=e.prepad,
                    strength=e.strength, preserve_color=e.preserve_color, weights_dir=e.weights_dir, size=e.size,
                    padding=e.padding, fp16=e.fp16, int8=e.int8, threads=threads if threads is not None else e.threads)


def run(config: RunConfig, camera_opener: Callable | None = None,
        camera_retry_s: float = 3.0, camera_first_frame_s: float = 10.0) -> tuple[int, dict]:
    """Run one invocation; returns (exit code, summary). Raises UserError for bad input.

    camera_retry_s, camera_first_frame_s: see CameraSource (retry_seconds, first_frame_seconds).
    Exit code 0: all done; 1: some files could not be read, videos were read only in part, or
    the camera delivered no frame; 130: interrupted (files finalised).
    """
    items, notes = expand_sources(config.sources or ("0",), output=config.output)
    for note in notes:
        log.info("stylecam: %s", note)
    cameras = [i for i in items if i.kind == "camera"]
    files = [i for i in items if i.kind != "camera"]
    if cameras and (files or len(cameras) > 1):
        raise UserError("a camera cannot be combined with other sources", "run one camera at a time")
    if cameras and not config.window and not config.output:
        raise UserError("--no-window with a camera needs -o to record to", "e.g. --no-window -o live.mp4")
    if cameras and config.output and Path(config.output).suffix.lower() not in WRITABLE_VIDEO_EXTS:
        raise UserError(f"a camera is recorded as a video, not to {config.output}",
                        f"give -o a video name ({', '.join(sorted(WRITABLE_VIDEO_EXTS))}), e.g. -o live.mp4")
    workers, threads = 1, config.engine.threads
    if files:
        on_gpu = any(p in GPU_PROVIDERS for p in probe_providers(config.engine.device))
        workers, threads = plan_workers(config.workers, config.engine.threads, on_gpu, os.cpu_count() or 1)
    stylizer = build_stylizer(config, threads)
    overlay = LabelOverlay(config.classify, device=config.engine.device,
                                                  weights_dir=config.engine.weights_dir) if config.classify else None
    summary: dict = {"stylecam": stylizer.describe()}
    if cameras:
        import cv2
        camera = CameraSource(int(cameras[0].location), opener=camera_opener or cv2.VideoCapture,
                              retry_seconds=camera_retry_s, first_frame_seconds=camera_first_frame_s)
        window = Window() if config.window else None
        registry_names = stylizer.registry.names() if stylizer.registry else []
        state = initial_state(list(config.engine.styles), registry_names, config.engine.repeat, config.engine.strength,
                              mirror=config.mirror)
        record_to = Path(config.output) if config.output else None
        result = run_live(camera, stylizer, state, window, record_to, overlay, max_frames=config.max_frames,
                          stabilise=config.stabilise)
        summary.update(result)
        if result["interrupted"]:
            return 130, summary
        if result["frames"] == 0:
            log.error("stylecam: camera %s delivered no frame%s", result["camera"],
                      "; nothing recorded" if record_to is not None else "")
            return 1, summary
        return 0, summary
    summary["stylecam"].update({"workers": workers, "threads": threads})
    try:
        done, failed = process_files(files, config, stylizer, overlay, workers)
    except Interrupted as stop:
        summary.update(stop.summary)
        last = stop.summary["done"][-1] if stop.summary.get("done") else {}
        if last.get("output"):
            log.warning("stylecam: interrupted: %s holds the %d frames done so far (playable)",
                        last["output"], last.get("frames", 0))
        else:
            log.warning("stylecam: interrupted before any frame was written")
        return 130, summary
    incomplete = [d["input"] for d in done if d.get("frames_missing")]
    summary.update({"done": done, "failed": failed, "incomplete": incomplete})
    if failed:
        log.error("stylecam: %d of %d files could not be read", len(failed), len(files))
    if incomplete:
        log.error("stylecam: %d of %d videos were read only in part (see the warnings above)",
                  len(incomplete), len(files))
    return (1 if failed or incomplete else 0), summary
