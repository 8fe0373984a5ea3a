"""Temporal stability of the style models on video: how much each one flickers, JSON out.

Each style runs frame by frame (no smoothing, as the live camera does) over the first --frames
frames of the bundled clip (a fixed camera: people walk across a still scene). For every pair of
consecutive frames, stylecam.metrics.temporal_flicker measures the mean change of the stylised
output over the pixels whose input stood still (no channel moved by more than --threshold grey
levels): a stable model repaints a still scene the same way, so anything it changes there is
flicker. Reported per style: the mean over the frame pairs, and the same measure of the input
itself (its sensor noise and compression, the floor a model starts from), and with --stabilise the
same after imageops.Stabiliser (what `stylecam --stabilise A` does to videos and the camera).

    python benchmarks/temporal_flicker.py --stabilise 0.5,0.8 -o benchmarks/results/temporal_flicker_cpu.json
    python benchmarks/temporal_flicker.py --set shipped=weights --set older=old_weights/ -o cmp.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stylecam import imageops, metrics  # noqa: E402
from stylecam.demo import DEFAULT_CLIP  # noqa: E402
from stylecam.pipeline import Stylizer  # noqa: E402
from stylecam.styles import Registry  # noqa: E402


def read_frames(path: str | os.PathLike, count: int) -> list[np.ndarray]:
    """The first ``count`` frames of a video: uint8 BGR (H, W, 3) each."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    if len(frames) < 2:
        raise SystemExit(f"temporal_flicker: {path} gave {len(frames)} frame(s); need at least 2")
    return frames


def flicker_series(inputs: list[np.ndarray], outputs: list[np.ndarray], threshold: float) -> list[float]:
    """temporal_flicker of every consecutive pair; inputs and outputs are same-size frame lists."""
    return [metrics.temporal_flicker(inputs[i - 1], inputs[i], outputs[i - 1], outputs[i], threshold)
            for i in range(1, len(inputs))]


def stabilised(frames: list[np.ndarray], outputs: list[np.ndarray], amount: float) -> list[np.ndarray]:
    """The outputs after imageops.Stabiliser(amount), in frame order."""
    stabiliser = imageops.Stabiliser(amount)
    return [stabiliser(frame, out) for frame, out in zip(frames, outputs)]


def measure_style(style: str, weights: Path, frames: list[np.ndarray], threshold: float,
                  amounts: list[float]) -> dict:
    stylizer = Stylizer(styles=[style], device="cpu", weights_dir=weights, variant="lite")
    started = time.perf_counter()
    outputs = [stylizer(frame) for frame in frames]
    series = flicker_series(frames, outputs, threshold)
    held = {str(a): float(np.nanmean(flicker_series(frames, stabilised(frames, outputs, a), threshold)))
            for a in amounts}
    path = Path(stylizer.describe()["models"][0]["path"]).resolve()
    return {"style": style, "model": str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path),
            "flicker": float(np.nanmean(series)), "flicker_max": float(np.nanmax(series)),
            "flicker_stabilised": held,
            "seconds": round(time.perf_counter() - started, 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--set", action="append", default=[], metavar="LABEL=DIR",
                   help="a folder of style models to measure (repeatable; default: shipped=weights)")
    p.add_argument("--styles", default="", help="comma-separated style names (default: every style found)")
    p.add_argument("--input", default=str(DEFAULT_CLIP), help="video (default: the bundled clip)")
    p.add_argument("--frames", type=int, default=60, help="frames read from the start of the video")
    p.add_argument("--threshold", type=float, default=2.0, help="grey levels under which an input pixel stood still")
    p.add_argument("--stabilise", default="", metavar="A,B",
                   help="also measure the outputs after --stabilise A (comma-separated amounts in 0..1)")
    p.add_argument("-o", "--output", default="benchmarks/results/temporal_flicker_cpu.json")
    args = p.parse_args(argv)

    amounts = [float(a) for a in args.stabilise.split(",") if a]
    sets = [s.split("=", 1) for s in (args.set or [f"shipped={REPO / 'weights'}"])]
    if any(len(s) != 2 for s in sets):
        p.error("--set expects LABEL=DIR")
    frames = read_frames(args.input, args.frames)
    static = [metrics.static_mask(frames[i - 1], frames[i], args.threshold).mean() for i in range(1, len(frames))]
    input_floor = flicker_series(frames, frames, args.threshold)
    result = {"benchmark": "temporal_flicker", "input": Path(args.input).name, "frames": len(frames),
              "size": list(frames[0].shape[:2]), "threshold": args.threshold,
              "static_fraction": float(np.mean(static)), "input_flicker": float(np.mean(input_floor)),
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count()}, "sets": {}}
    for label, folder in sets:
        weights = Path(folder)
        names = [s for s in args.styles.split(",") if s] or Registry(weights).names()
        rows = []
        for name in names:
            row = measure_style(name, weights, frames, args.threshold, amounts)
            rows.append(row)
            held = "".join(f", stabilise {a}: {v:.2f}" for a, v in row["flicker_stabilised"].items())
            print(f"{label:10s} {name:16s} flicker {row['flicker']:6.2f} grey levels (max {row['flicker_max']:.2f}{held})")
        result["sets"][label] = {"weights_dir": str(folder), "styles": rows}
    print(f"input itself: {result['input_flicker']:.2f} grey levels over {result['static_fraction']:.0%} still pixels")
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
