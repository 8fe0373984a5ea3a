"""The frame loops over files (every frame; decode, inference and encode overlapped) and one
invocation of the command (``run``: files here, the camera in stylecam.live).

Frames are uint8 BGR (H, W, 3) everywhere here; the Stylizer does the float work.
"""
from __future__ import annotations

import collections
import logging
import os
import queue
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from stylecam import imageops, live, signals
from stylecam.camera import CameraSource
from stylecam.config import RunConfig
from stylecam.errors import InputRefused, UserError
from stylecam.ffmpeg import probe_packets, vfr_timing
from stylecam.fileout import refuse_overwriting_inputs
from stylecam.pipeline import Stylizer
from stylecam.session import GPU_PROVIDERS, probe_providers
from stylecam.overlay import LabelOverlay, compose
from stylecam.sinks import VideoWriter, VirtualCamera, Window, write_image
from stylecam.sources import (ALPHA_EXTS, IMAGE_EXTS, OUTPUT_SUFFIX, VIDEO_EXTS, SourceError, SourceItem,
                              VideoFileSource, expand_sources, image_format, prefetch, read_image,
                              read_image_alpha)

log = logging.getLogger("stylecam")


class Interrupted(Exception):
    """Ctrl-C (or another stop signal, see stylecam.signals) during a run; ``summary`` says what was written."""

    def __init__(self, summary: dict):
        super().__init__("interrupted")
        self.summary = summary


# ----- output names --------------------------------------------------------------------------

WRITABLE_VIDEO_EXTS = {".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm", ".gif"}


def default_output(path: str | Path) -> Path:
    """``clip.mp4`` -> ``clip_stylised.mp4`` next to the input."""
    path = Path(path)
    return path.with_name(f"{path.stem}{OUTPUT_SUFFIX}{path.suffix}")


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
        refuse_overwriting_inputs(out, [item.location], "-o")  # also through '..', a symlink or a hard link
        key = out.resolve()
        if key in seen:
            if Path(item.location).resolve() == Path(seen[key]).resolve():
                raise UserError(f"{item.location} is given twice", "name each input once")
            raise UserError(f"{item.location} and {seen[key]} would both be written to {out}",
                            "rename one of them, or stylize them in separate runs, each with its own -o")
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


def stylize_in_order(groups: Iterable[list[np.ndarray]], stylizer: Stylizer, workers: int = 1
                     ) -> Iterator[tuple[list[np.ndarray], np.ndarray, float]]:
    """Stylize groups of uint8 BGR (H, W, 3) frames; yields (group, stylized (N, H, W, 3), seconds) in input order.

    workers > 1 stylizes that many groups at once in threads (onnxruntime runs release the GIL):
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
            item = self._q.get()
            if item is None:
                return
            if self.error is not None:
                continue
            frame, lost_before = item
            try:
                t0 = time.perf_counter()
                if self.writer is None:
                    self.writer = self._factory(frame)
                self.writer.write(frame, lost_before=lost_before)
                self.encode_s += time.perf_counter() - t0
            except BaseException as err:
                self.error = err

    def put(self, frame: np.ndarray, lost_before: int = 0) -> None:
        """Queue one uint8 BGR (H, W, 3) frame; ``lost_before``: see VideoWriter.write."""
        if self.error is not None:
            raise self.error
        self._q.put((frame, lost_before))

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
                  progress: bool = True, position: int = 0, workers: int = 1, stabilize: float = 0.0,
                  max_pixels: int | None = None) -> dict:
    """Stylize every frame of ``path`` into ``out`` (audio kept); returns a summary dict.

    max_pixels: InputRefused (nothing written) for frames with more pixels; None: no limit.

    stabilize > 0 holds the previous output where the scene stood still (imageops.Stabilizer),
    applied in frame order after inference.

    The frame times of the input are kept: variable-rate clips, dropped-frame AVIs (empty frames
    hold the picture before them) and frames lost to damage (skipped; the frame before is held for
    their time) give an output as long as the input.

    Decoding runs in a thread ahead of inference, encoding in another behind it, joined by
    bounded queues. Ctrl-C (or SIGTERM, SIGHUP) finalises what was written and raises Interrupted.
    Raises SourceError when the input cannot be decoded.
    """
    packets = probe_packets(path)
    source = VideoFileSource(path, picture_times=packets.times if packets else None, max_pixels=max_pixels)
    announced = source.frame_count
    if packets and announced:   # frames without a picture of their own (dropped by an AVI capture) are not to decode
        announced -= packets.dropped(announced, source.fps)
    total = announced if max_frames is None else min(announced or max_frames, max_frames)
    frames_iter: Iterable[np.ndarray] = source
    if max_frames is not None:
        frames_iter = (f for f, _ in zip(source, range(max_frames)))
    timing = vfr_timing(packets.times, source.fps, end=packets.end) if packets else None   # None: steady rate
    out_fps, copies = timing if timing else (source.fps, None)
    video_start = packets.times[0] if packets else 0.0
    encoder = _EncodeThread(lambda first: VideoWriter(out, out_fps, (first.shape[1], first.shape[0]), audio_from=path,
                                                      copies=copies, video_start=video_start))
    done = 0
    inference_s = 0.0
    bar = _progress(total, Path(path).name, progress, position=position)
    t_start = time.perf_counter()
    interrupted = False
    decoded = prefetch(frames_iter, maxsize=max(8, 2 * batch * workers))
    stabilizer = imageops.Stabilizer(stabilize)
    with signals.deferred():     # a stop signal after the frame loop waits until the output is finalised
        try:
            with signals.at_once():
                for group, styled, seconds in stylize_in_order(_batches(decoded, batch), stylizer, workers):
                    inference_s += seconds / workers
                    for i, (original, result) in enumerate(zip(group, styled)):
                        encoder.put(compose(original, stabilizer(original, result), overlay, show_original),
                                    lost_before=source.lost_before.get(done + i, 0))
                    done += len(group)
                    bar.update(len(group))
        except KeyboardInterrupt:
            interrupted = True
        except BaseException:
            decoded.close()
            bar.close()
            encoder.abort()
            raise
        decoded.close()
        bar.close()
        writer = encoder.finish()
        elapsed = time.perf_counter() - t_start
        summary = {"input": str(path), "output": str(out), "kind": "video", "frames": done,
                   "frames_total": source.frame_count, "seconds": round(elapsed, 3),
                   "fps": round(done / elapsed, 2) if elapsed > 0 else None,
                   "stylize_ms_per_frame": round(1e3 * inference_s / done, 2) if done else None,
                   "encode_ms_per_frame": round(1e3 * encoder.encode_s / done, 2) if done else None,
                   "audio": bool(writer and writer.audio), "stabilize": stabilize, "interrupted": interrupted,
                   "variable_frame_rate": timing is not None, "output_fps": round(out_fps, 3)}
        summary = with_old_key_spellings(summary)
        if writer is None:
            if interrupted:
                raise Interrupted(summary | {"output": None})
            raise SourceError(f"no frames decoded from {path}")
        writer.close()
        summary["output_seconds"] = round(writer.frames / out_fps, 3)
    if interrupted:
        raise Interrupted(summary)
    return summary | _check_complete(path, done, announced, max_frames, out, lost=source.lost)


def _check_complete(path: str, done: int, announced: int | None, max_frames: int | None, out: Path,
                    lost: int = 0) -> dict:
    """{"frames_missing": m, "frames_lost": lost}, with one warning line when frames are missing or lost.

    lost: undecodable frames skipped in the middle of the file. missing: frames missing at the end
    (a truncated file), i.e. how many fewer than ``announced`` (the file's count less the slots of
    dropped frames) were read, less the lost ones; counted only when clearly fewer: more than 2
    frames and 2 % (OpenCV's count is an estimate for some containers). ``max_frames``
    (--max-frames) lowers what is expected.
    """
    expected = announced if announced is None or max_frames is None else min(announced, max_frames)
    missing = (expected or 0) - done
    if missing <= 2 or missing <= 0.02 * expected:
        missing = 0
    if lost and missing <= lost:     # all of the shortfall is the damage skipped: no end is missing
        log.warning("stylecam: warning: %s: %d damaged frame(s) could not be decoded and were skipped "
                    "(the frame before is held for their time); %s holds the other %d frames",
                    path, lost, out, done)
    elif missing:
        damage = f"{lost} damaged one(s) skipped, the rest missing at the end" if lost else "truncated or damaged?"
        log.warning("stylecam: warning: %s: decoded only %d of the %d frames the file announces (%s); "
                    "%s holds those %d frames", path, done, expected, damage, out, done)
    return {"frames_missing": max(0, missing - lost), "frames_lost": lost}


def process_image(path: str, out: Path, stylizer: Stylizer, overlay: LabelOverlay | None = None,
                  show_original: bool = False, max_pixels: int | None = None) -> dict:
    """Stylize one image file into ``out``; returns a summary dict. Raises SourceError, and
    InputRefused for a picture of more than ``max_pixels`` pixels (None: no limit).

    The input's transparency (oriented like its color) is kept where ``out`` can hold it.
    """
    frame, alpha = read_image_alpha(path, max_pixels) if out.suffix.lower() in ALPHA_EXTS else \
        (read_image(path, max_pixels), None)
    t0 = time.perf_counter()
    result = stylizer(frame)
    ms = (time.perf_counter() - t0) * 1e3
    shown = compose(frame, result, overlay, show_original)
    alpha = alpha if shown.shape == frame.shape else None
    write_image(out, shown if alpha is None else np.dstack([shown, alpha]))  # transparency kept
    return with_old_key_spellings({"input": str(path), "output": str(out), "kind": "image", "frames": 1,
                                   "stylize_ms": round(ms, 2)})


#: Summary keys (--json) -> their first spelling, written too so that scripts reading those keep working.
OLD_KEY_SPELLINGS = {"stylize_ms_per_frame": "stylise_ms_per_frame", "stylize_ms": "stylise_ms",
                     "stabilize": "stabilise"}


def with_old_key_spellings(summary: dict) -> dict:
    """``summary`` with each key of OLD_KEY_SPELLINGS it holds also under its first spelling (same value)."""
    return summary | {old: summary[new] for new, old in OLD_KEY_SPELLINGS.items() if new in summary}


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


def process_files(items: Sequence[SourceItem], config: RunConfig, stylizer: Stylizer,
                  overlay: LabelOverlay | None, workers: int = 1) -> tuple[list[dict], list[dict]]:
    """Every image and video item; returns (done, failed) summaries. Unreadable files are skipped,
    and so are refused ones (InputRefused) in a batch; a single refused input raises it."""
    many = len(items) > 1
    batch = many or any(item.root for item in items)   # several inputs, or what a folder or glob held
    pairs = [(item, output_for(item, config.output, many)) for item in items]
    check_outputs(pairs)
    done, failed = [], []
    overall = _progress(len(items), "files", config.progress and many, unit="file")
    try:
        for item, out in pairs:
            try:
                if item.kind == "image":
                    summary = process_image(item.location, out, stylizer, overlay, max_pixels=config.max_pixels)
                    if config.save_steps:
                        summary.update(save_steps(read_image(item.location, config.max_pixels), stylizer, out))
                else:
                    summary = process_video(item.location, out, stylizer, overlay, batch=config.batch or 1,
                                            max_frames=config.max_frames, progress=config.progress,
                                            position=1 if many else 0, workers=workers,
                                            stabilize=config.stabilize, max_pixels=config.max_pixels)
                    if config.save_steps:
                        first = next(iter(VideoFileSource(item.location, max_pixels=config.max_pixels)))
                        summary.update(save_steps(first, stylizer, out))
                done.append(summary)
            except (SourceError, InputRefused) as err:
                if isinstance(err, InputRefused) and not batch:
                    raise
                log.error("stylecam: skipped %s: %s", item.location, err)
                failed.append({"input": item.location, "error": str(err)})
            except Interrupted as stop:
                stop.summary = {"done": done + [stop.summary], "failed": failed}
                raise
            overall.update(1)
    finally:
        overall.close()
    return done, failed


# ----- one invocation ------------------------------------------------------------------------

def plan_workers(workers: int | None, threads: int | None, on_gpu: bool, cores: int,
                 camera: bool = False) -> tuple[int, int | None]:
    """(frames stylized at once, onnxruntime threads per model) for video files or the live camera.

    Asked-for values are kept. Auto for video files: one run per core, up to 4 runs. On the CPU
    several independent runs keep the cores busier than one run split over threads, and the
    threads split the cores between the runs; on a GPU the CPU's share of each frame (pre- and
    post-processing) overlaps the GPU's (measured in docs/speed.md). Auto for the camera: at most
    2 runs on the CPU (each frame in flight adds to the latency), 1 on a GPU (one run alone
    outpaces any camera).
    """
    if workers is None:
        most = (1 if on_gpu else 2) if camera else 4
        workers = 1 if cores < 2 else min(cores, most)
    if threads is None and workers > 1 and not on_gpu:
        threads = max(1, cores // workers)
    return workers, threads


def run(config: RunConfig, camera_opener: Callable | None = None,
        camera_retry_s: float = 3.0, camera_first_frame_s: float = 10.0) -> tuple[int, dict]:
    """Run one invocation; returns (exit code, summary). Raises UserError for bad input.

    camera_retry_s, camera_first_frame_s: see CameraSource (retry_seconds, first_frame_seconds).
    Exit code 0: all done; 1: some files could not be read, videos were read only in part (damaged
    or truncated), or the camera delivered no frame; 128 + the signal's number when stopped by
    Ctrl-C, SIGTERM or SIGHUP (130, 143, 129; files finalised, see stylecam.signals).
    """
    items, notes = expand_sources(config.sources or ("0",), output=config.output)
    for note in notes:
        log.info("stylecam: %s", note)
    cameras = [i for i in items if i.kind == "camera"]
    files = [i for i in items if i.kind != "camera"]
    if cameras and (files or len(cameras) > 1):
        raise UserError("a camera cannot be combined with other sources", "run one camera at a time")
    if config.auto_size and not cameras:
        raise UserError("--size auto is for the camera (it follows the camera's frame rate)",
                        "give files a long side, e.g. --size 480")
    if config.virtual_camera and not cameras:
        raise UserError("--virtual-camera sends the live camera, not files",
                        "give a camera index as the source, e.g. stylecam 0 --virtual-camera")
    if cameras and not config.window and not config.output and not config.virtual_camera:
        raise UserError("--no-window with a camera needs -o to record to (or --virtual-camera)",
                        "e.g. --no-window -o live.mp4")
    if cameras and config.output and Path(config.output).suffix.lower() not in WRITABLE_VIDEO_EXTS:
        raise UserError(f"a camera is recorded as a video, not to {config.output}",
                        f"give -o a video name ({', '.join(sorted(WRITABLE_VIDEO_EXTS))}), e.g. -o live.mp4")
    # before any model loads or the camera opens: a missing pyvirtualcam is said at once
    virtual = VirtualCamera(config.virtual_camera_device) if cameras and config.virtual_camera else None
    on_gpu = any(p in GPU_PROVIDERS for p in probe_providers(config.engine.device))
    workers, threads = plan_workers(config.workers, config.engine.threads, on_gpu, os.cpu_count() or 1,
                                    camera=bool(cameras))
    stylizer = Stylizer.from_config(replace(config.engine, threads=threads))
    overlay = LabelOverlay(config.classify, device=config.engine.device,
                                                  weights_dir=config.engine.weights_dir) if config.classify else None
    summary: dict = {"stylecam": {**stylizer.describe(), "workers": workers, "threads": threads}}
    if cameras:
        import cv2
        camera = CameraSource(int(cameras[0].location), opener=camera_opener or cv2.VideoCapture,
                              retry_seconds=camera_retry_s, first_frame_seconds=camera_first_frame_s,
                              size=config.camera_size, fps=config.camera_fps, fourcc=config.camera_format)
        if virtual is not None:
            virtual.fps = camera.fps
        try:
            window = Window() if config.window else None
        except BaseException:
            camera.close()
            raise
        registry_names = stylizer.registry.names() if stylizer.registry else []
        state = live.initial_state(list(config.engine.styles), registry_names, config.engine.repeat, config.engine.strength,
                              mirror=config.mirror, fullscreen=config.fullscreen)
        record_to = Path(config.output) if config.output else None
        result = live.run_live(camera, stylizer, state, window, record_to, overlay, max_frames=config.max_frames,
                               stabilize=config.stabilize, workers=workers, virtual_camera=virtual,
                               auto_size=config.auto_size)
        summary.update(result)
        if result["interrupted"]:
            return signals.exit_code(), summary
        if result["frames"] == 0:
            log.error("stylecam: camera %s delivered no frame%s", result["camera"],
                      "; nothing recorded" if record_to is not None else "")
            return 1, summary
        return 0, summary
    try:
        done, failed = process_files(files, config, stylizer, overlay, workers)
    except Interrupted as stop:
        summary.update(stop.summary)
        last = stop.summary["done"][-1] if stop.summary.get("done") else {}
        if last.get("output"):
            log.warning("stylecam: %s: %s holds the %d frames done so far (playable)",
                        signals.describe(), last["output"], last.get("frames", 0))
        else:
            log.warning("stylecam: %s before any frame was written", signals.describe())
        return signals.exit_code(), summary
    incomplete = [d["input"] for d in done if d.get("frames_missing") or d.get("frames_lost")]
    summary.update({"done": done, "failed": failed, "incomplete": incomplete})
    if failed:
        log.error("stylecam: %d of %d files could not be read", len(failed), len(files))
    if incomplete and len(files) > 1:   # a single file's warning has said it
        log.error("stylecam: %d of %d videos were read only in part (see the warnings above)",
                  len(incomplete), len(files))
    return (1 if failed or incomplete else 0), summary
