"""Temporal stability of the style models on video: how much each one flickers, JSON out.

Each style runs frame by frame (no smoothing, as the live camera does) over the first --frames
frames of the bundled clip (a fixed camera: people walk across a still scene). For every pair of
consecutive frames, stylecam.metrics.temporal_flicker measures the mean change of the stylized
output over the pixels whose input stood still (no channel moved by more than --threshold grey
levels): a stable model repaints a still scene the same way, so anything it changes there is
flicker. Reported per style: the mean over the frame pairs, and the same measure of the input
itself (its sensor noise and compression, the floor a model starts from), and with --stabilize the
same after imageops.Stabilizer (what `stylecam --stabilize A` does to videos and the camera).

    python -m benchmarks.temporal_flicker --stabilize 0.5,0.8 -o benchmarks/results/temporal_flicker_cpu.json
    python -m benchmarks.temporal_flicker --set shipped=weights --set older=old_weights/ -o cmp.json
"""
from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import REPO, machine, run_script, write_results
from stylecam import imageops, metrics
from stylecam.argtypes import add_hidden_alias, float_in, fraction, int_at_least, output_file
from stylecam.demo import DEFAULT_CLIP
from stylecam.errors import UserError
from stylecam.pipeline import Stylizer
from stylecam.styles import Registry

PROG = "temporal_flicker.py"


def amounts_list(text: str) -> list[float]:
    """--stabilize: comma-separated amounts in 0..1 ("" = none)."""
    parts = text.split(",") if text.strip() else []
    if any(not part.strip() for part in parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated amounts within 0..1, e.g. 0.5,0.8, got {text!r}")
    return [fraction(part.strip()) for part in parts]


def weight_set(text: str) -> tuple[str, str]:
    """--set LABEL=DIR."""
    label, sep, folder = text.partition("=")
    if not sep or not label or not folder:
        raise argparse.ArgumentTypeError(f"expected LABEL=DIR, e.g. shipped=weights, got {text!r}")
    return label, folder


def check_output(text: str) -> Path:
    """-o: a .json file, checked before any work (UserError otherwise)."""
    return output_file(text, "-o", (".json",), "temporal_flicker.json")


def finite(value: float) -> float | None:
    """JSON has no NaN: None where a measure is undefined (no still pixel in any frame pair)."""
    value = float(value)
    return value if math.isfinite(value) else None


def read_frames(path: str | os.PathLike, count: int) -> list[np.ndarray]:
    """The first ``count`` frames of a video: uint8 BGR (H, W, 3) each. UserError when the file
    cannot be opened or gives fewer than 2 frames."""
    if not Path(path).is_file():
        raise UserError(f"cannot open {path}: no such file", "give --input a video file")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise UserError(f"cannot open {path} as a video", "give --input a video file OpenCV can read, e.g. an .mp4")
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    if len(frames) < 2:
        raise UserError(f"cannot read {path} as a video: it gave {len(frames)} frame(s), at least 2 are needed",
                        "give --input a video of at least 2 frames")
    return frames


def flicker_series(inputs: list[np.ndarray], outputs: list[np.ndarray], threshold: float) -> list[float]:
    """temporal_flicker of every consecutive pair; inputs and outputs are same-size frame lists."""
    return [metrics.temporal_flicker(inputs[i - 1], inputs[i], outputs[i - 1], outputs[i], threshold)
            for i in range(1, len(inputs))]


def stabilized(frames: list[np.ndarray], outputs: list[np.ndarray], amount: float) -> list[np.ndarray]:
    """The outputs after imageops.Stabilizer(amount), in frame order."""
    stabilizer = imageops.Stabilizer(amount)
    return [stabilizer(frame, out) for frame, out in zip(frames, outputs)]


def measure_style(style: str, weights: Path, frames: list[np.ndarray], threshold: float,
                  amounts: list[float]) -> dict:
    stylizer = Stylizer(styles=[style], device="cpu", weights_dir=weights, variant="lite")
    started = time.perf_counter()
    outputs = [stylizer(frame) for frame in frames]
    series = flicker_series(frames, outputs, threshold)
    held = {str(a): finite(np.nanmean(flicker_series(frames, stabilized(frames, outputs, a), threshold)))
            for a in amounts}
    path = Path(stylizer.describe()["models"][0]["path"]).resolve()
    return {"style": style, "model": str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path),
            "flicker": finite(np.nanmean(series)), "flicker_max": finite(np.nanmax(series)),
            "flicker_stabilised": held,   # the key of the committed result files
            "seconds": round(time.perf_counter() - started, 2)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--set", action="append", type=weight_set, default=[], metavar="LABEL=DIR",
                   help="a folder of style models to measure (repeatable; default: shipped=weights)")
    p.add_argument("--styles", default="", help="comma-separated style names (default: every style found)")
    p.add_argument("--input", default=str(DEFAULT_CLIP), help="video (default: the bundled clip)")
    p.add_argument("--frames", type=int_at_least(2), default=60, help="frames read from the start of the video (≥ 2)")
    p.add_argument("--threshold", type=float_in(0.0, 255.0), default=2.0,
                   help="grey levels (0..255) under which an input pixel stood still")
    stabilize = p.add_argument("--stabilize", type=amounts_list, default="", metavar="A,B",
                               help="also measure the outputs after --stabilize A (comma-separated amounts in 0..1)")
    add_hidden_alias(p, "--stabilise", stabilize)
    p.add_argument("-o", "--output", default="benchmarks/results/temporal_flicker_cpu.json")
    return p


def main(argv: list[str] | None = None) -> int:
    return run_script(PROG, run, build_parser().parse_args(argv))


def run(args) -> int:
    amounts = args.stabilize
    out = check_output(args.output)
    sets = args.set or [("shipped", str(REPO / "weights"))]
    if len({label for label, _ in sets}) < len(sets):
        raise UserError("two --set options share a label", "give each --set its own LABEL")
    wanted = [s.strip() for s in args.styles.split(",") if s.strip()]
    plan = []  # (label, folder, style names), every folder and name checked before any frame is stylized
    for label, folder in sets:
        if not Path(folder).is_dir():
            raise UserError(f"--set {label}={folder}: no such folder", "give --set LABEL=DIR a folder of style models")
        registry = Registry(folder)
        found = registry.names()
        if not found:
            raise UserError(f"--set {label}={folder}: no style models in {folder}",
                            "give a folder that holds stylecam style models, *.onnx")
        for name in wanted:
            if name not in found:
                err = registry.unknown(name)
                raise UserError(f"--set {label}={folder}: {err.message}", err.hint)
        plan.append((label, folder, wanted or found))
    frames = read_frames(args.input, args.frames)
    static = [metrics.static_mask(frames[i - 1], frames[i], args.threshold).mean() for i in range(1, len(frames))]
    if not any(static):
        raise UserError(f"no pixel of {args.input} stood still between frames (within --threshold {args.threshold:g})",
                        "raise --threshold, or use a video with a still background")
    input_floor = flicker_series(frames, frames, args.threshold)
    result = {"benchmark": "temporal_flicker", "input": Path(args.input).name, "frames": len(frames),
              "size": list(frames[0].shape[:2]), "threshold": args.threshold,
              "static_fraction": float(np.mean(static)), "input_flicker": finite(np.nanmean(input_floor)),
              "machine": machine(), "sets": {}}
    for label, folder, names in plan:
        weights = Path(folder)
        rows = []
        for name in names:
            row = measure_style(name, weights, frames, args.threshold, amounts)
            rows.append(row)
            held = "".join(f", stabilize {a}: {v:.2f}" for a, v in row["flicker_stabilised"].items())
            print(f"{label:10s} {name:16s} flicker {row['flicker']:6.2f} grey levels (max {row['flicker_max']:.2f}{held})")
        result["sets"][label] = {"weights_dir": str(folder), "styles": rows}
    print(f"input itself: {result['input_flicker']:.2f} grey levels over {result['static_fraction']:.0%} still pixels")
    write_results(out, result, allow_nan=False)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
