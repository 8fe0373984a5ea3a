"""Live camera speed: frames shown per second and the delay from capture to display, JSON out.

A simulated camera (tests.fakes.cameras.PacedCapture) delivers the bundled clip, scaled to each
size, at a fixed rate (--camera-fps, like a webcam: frames that arrive while the loop is busy
replace each other, as with a real one) to stylecam's real camera loop (stylecam.live.run_live). --modes show: a window stand-in that
draws the HUD and displays nothing (`stylecam` with a window, less the screen); record: no
window, every frame recorded to an .mp4 (`stylecam 0 --no-window -o live.mp4`); window:
OpenCV's real window (`stylecam` itself; needs a display: an X server, Xvfb for a headless one).

For each size, style, precision, inference size, worker setting and mode: a warm-up run
(--warmup frames), then a timed run of --frames frames. "fps" is frames shown per second between
the first and the last shown, "latency_ms" the median and 90th percentile of capture to display.
The simulated camera costs no CPU; a real webcam's driver (MJPEG decoding, often) takes some from
the same cores, so real figures can be lower. "camera_frames_dropped" counts the camera frames
replaced before the loop read them, until the camera is closed (after the last frame shown).

    python -m benchmarks.live_fps --styles wave,mosaic --precisions fp32,int8 --workers 1,auto \\
        -o benchmarks/results/live_fps_cpu.json
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import (RESULTS, choice, comma_list, fake_models, frame_size, infer_size, load_average,
                               load_text, machine, run_script, workers_value, write_results)
from stylecam.argtypes import int_at_least, output_file, positive_int
from stylecam.demo import DEFAULT_CLIP
from stylecam.errors import UserError
from stylecam.live import initial_state, run_live
from stylecam.pipeline import Stylizer
from stylecam.runner import plan_workers
from stylecam.session import DEVICE_PROVIDERS, GPU_PROVIDERS
from stylecam.sinks import Window
from stylecam.sources import CameraSource, VideoFileSource
from tests.fakes.cameras import PacedCapture
from tests.fakes.windows import NullWindow

PROG = "live_fps.py"
MODES = ("show", "record", "window")
PRECISIONS = ("fp32", "int8")


def camera_frames(width: int, height: int) -> list[np.ndarray]:
    """The bundled clip's frames as uint8 BGR (height, width, 3)."""
    return [cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in VideoFileSource(DEFAULT_CLIP)]


def infer_size_or_auto(text: str) -> int | str | None:
    """--infer-sizes entry: native (None), auto (`stylecam --size auto`) or a long side."""
    return "auto" if text == "auto" else infer_size(text)


def live_run(stylizer: Stylizer, style: str, frames: list[np.ndarray], camera_fps: float, mode: str,
             workers: int, count: int, tmp: Path, auto_size: bool = False) -> dict:
    """One run_live of ``count`` frames on a PacedCapture; its summary."""
    window = NullWindow() if mode == "show" else Window() if mode == "window" else None   # before the camera
    camera = CameraSource(0, opener=lambda index: PacedCapture(frames, camera_fps))
    record = tmp / "live.mp4" if mode == "record" else None
    return run_live(camera, stylizer, initial_state([style], [style]), window, record, max_frames=count,
                    workers=workers, auto_size=auto_size)


def measure(stylizer: Stylizer, style: str, frames: list[np.ndarray], camera_fps: float, mode: str,
            workers: int, count: int, warmup: int, tmp: Path, auto_size: bool = False) -> dict:
    """A warm-up run (at least two frames per worker), then the timed run: fps, latency, drops (and,
    auto_size, the sizes it chose: each run starts at the frame's own size, so its fps includes that)."""
    live_run(stylizer, style, frames, camera_fps, mode, workers, max(warmup, 2 * workers), tmp, auto_size)
    summary = live_run(stylizer, style, frames, camera_fps, mode, workers, count, tmp, auto_size)
    extra = {"auto_sizes": summary["auto_size"]} if auto_size else {}
    return {"fps": summary["fps"], "latency_ms": summary["latency_ms"], "frames": summary["frames"],
            "camera_frames_dropped": summary["dropped_frames"],
            "inference_ms_last": round(stylizer.times.inference, 2), **extra}


def markdown_table(results: dict) -> str:
    lines = [f"models: {results['models']}, device: {results['device']}, camera: {results['camera_fps']} FPS, "
             + load_text(results["machine"]), "",
             "| size | inference at | style (network) | precision | mode | workers x threads | FPS shown "
             "| latency median / p90 ms | camera frames dropped |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results["runs"]:
        lat = r["latency_ms"] or {"median": "-", "p90": "-"}
        at = r["inference_size"]
        if r.get("auto_sizes"):
            at = f"auto (ended at {r['auto_sizes'][-1]['size'] or 'native'})"
        lines.append(f"| {r['size']} | {at} | {r['style']} | {r['precision']} | {r['mode']} "
                     f"| {r['workers']} x {r['threads_per_run'] or 'default'} | {r['fps']} "
                     f"| {lat['median']} / {lat['p90']} | {r['camera_frames_dropped']} |")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", choices=("shipped", "fake"), default="shipped",
                   help="shipped: the styles of the weights folder; fake: the tiny test models (loop overhead only)")
    p.add_argument("--weights-dir", default=None)
    p.add_argument("--sizes", type=comma_list(frame_size, "even WIDTHxHEIGHT sizes"), default="640x480",
                   help="comma list of camera frame sizes WIDTHxHEIGHT")
    p.add_argument("--styles", type=comma_list(str, "style names"), default="wave", help="comma list of styles, each alone")
    p.add_argument("--precisions", type=comma_list(choice(PRECISIONS), "precisions"), default="fp32",
                   help="comma list of fp32, int8 (stylecam --int8)")
    p.add_argument("--infer-sizes", type=comma_list(infer_size_or_auto, "inference sizes"), default="native",
                   help="comma list of inference resolutions (as `stylecam --size`); native = frame size, "
                        "auto = `--size auto`")
    p.add_argument("--workers", type=comma_list(workers_value, "worker counts"), default="1,auto",
                   help="comma list of frames stylized at once: numbers or auto (stylecam's default for the "
                        "camera: one run per core up to 2 on the CPU)")
    p.add_argument("--modes", type=comma_list(choice(MODES), "modes"), default="show,record",
                   help="show: window stand-in with the HUD; record: no window, recorded to an .mp4; window: "
                        "OpenCV's real window (needs a display, e.g. Xvfb)")
    p.add_argument("--camera-fps", type=int_at_least(1), default=30, help="frames a second the camera delivers")
    p.add_argument("--frames", type=positive_int, default=150, help="frames shown in each timed run")
    p.add_argument("--warmup", type=positive_int, default=10, help="frames shown in the warm-up run before it")
    p.add_argument("--device", choices=tuple(DEVICE_PROVIDERS), default="cpu")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="onnxruntime threads per run (default: the cores split between the workers)")
    p.add_argument("-o", "--output", default=str(RESULTS / "live_fps.json"),
                   help="JSON file (.json); the Markdown table is written beside it (.md)")
    return p


def main(argv=None) -> int:
    return run_script(PROG, run, build_parser().parse_args(argv))


def run(args) -> int:
    out = output_file(args.output, "-o", (".json",), "live_fps.json", hint="; the Markdown table goes beside it as .md")
    with tempfile.TemporaryDirectory(prefix="stylecam-live-bench-") as folder:
        results = measure_all(args, Path(folder))
    write_results(out, results, markdown_table(results))
    print(f"wrote {out} and {out.with_suffix('.md')}", file=sys.stderr)
    return 0


def measure_all(args, tmp: Path) -> dict:
    """Every run the arguments ask for (module docstring); the results dict written as JSON."""
    weights = fake_models(tmp / "fake") if args.models == "fake" else args.weights_dir
    results = {"benchmark": "live_fps", "models": args.models, "device": args.device,
               "camera_fps": args.camera_fps, "frames": args.frames, "warmup": args.warmup,
               "machine": machine(),
               "notes": ["fps: frames shown per second between the first and the last shown; latency_ms: capture "
                         "(the camera driver's read returning) to the frame recorded and handed to the window",
                         "the simulated camera costs no CPU (a real webcam's driver takes some from the same cores)"],
               "runs": []}
    cores = os.cpu_count() or 1
    for width, height in args.sizes:
        frames = camera_frames(width, height)
        for style in args.styles:
            for precision in args.precisions:
                for infer_px in args.infer_sizes:
                    for asked in args.workers:
                        probe = Stylizer([style], device=args.device, weights_dir=weights, int8=precision == "int8")
                        on_gpu = any(p in GPU_PROVIDERS for p in probe.providers)
                        workers, threads = plan_workers(asked, args.threads, on_gpu, cores, camera=True)
                        auto = infer_px == "auto"
                        stylizer = Stylizer([style], device=args.device, weights_dir=weights,
                                            size=None if auto else infer_px,
                                            int8=precision == "int8", threads=threads)
                        model = stylizer.describe()["models"][0]
                        if precision == "int8" and model["precision"] != "int8":
                            raise UserError(f"no int8 copy of {style} in {stylizer.registry.root}",
                                            "leave int8 out of --precisions")
                        for mode in args.modes:
                            row = {"size": f"{width}x{height}", "inference_size": infer_px or "native",
                                   "style": f"{model['name']} ({model['network']})", "precision": precision,
                                   "mode": mode, "workers": workers, "threads_per_run": threads,
                                   "providers": stylizer.providers,
                                   **measure(stylizer, style, frames, args.camera_fps, mode, workers, args.frames,
                                             args.warmup, tmp, auto_size=auto)}
                            results["runs"].append(row)
                            print(f"{row['size']} @{row['inference_size']} {row['style']} {precision} {mode:6s} "
                                  f"{workers} x {threads or 'default'}: {row['fps']} FPS, latency {row['latency_ms']}"
                                  + (f", sizes {[s['size'] for s in row['auto_sizes']]}" if auto else ""),
                                  file=sys.stderr)
    results["machine"]["load_avg_end"] = load_average()
    return results


if __name__ == "__main__":
    sys.exit(main())
