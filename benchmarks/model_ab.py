"""Inference time of the same style models from two folders, interleaved, JSON out.

For every model file found under the same name in both folders (or the --files named), both are
loaded as stylecam loads them (stylecam.session.load_model, CPU, --threads threads each) and run on
the same frame, alternately A, B, A, B, ... for --steps timed runs after --warmup untimed ones.
Alternating means a slow spell of a shared machine hits both alike, which separate back-to-back
runs do not give (on a shared VM they vary a lot from one run to the next). Reported
per file and thread count: median and quartile ms of each, the B / A ratio of the medians, and
the largest difference between their outputs (grey levels), so a faster graph is shown to
compute the same thing.

    python -m benchmarks.model_ab --a old_weights --b weights --threads 1,2 -o benchmarks/results/model_ab.json
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine, run_script, write_results
from stylecam.argtypes import int_at_least, output_file
from stylecam.errors import UserError
from stylecam.session import load_model

PROG = "model_ab.py"


def size_arg(text: str) -> tuple[int, int]:
    """--size WIDTHxHEIGHT, each side a multiple of 4 from 16 to 4096 (the raw graphs take multiples of 4)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 640x480, got {text!r}") from None
    if not all(16 <= v <= 4096 and v % 4 == 0 for v in (width, height)):
        raise argparse.ArgumentTypeError(f"each side must be a multiple of 4 from 16 to 4096, got {text!r}")
    return width, height


def threads_list(text: str) -> list[int]:
    """--threads: comma-separated thread counts, each 1..64."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated thread counts, e.g. 1,2, got {text!r}") from None
    if not values or not all(1 <= v <= 64 for v in values):
        raise argparse.ArgumentTypeError(f"thread counts must be 1..64, got {text!r}")
    return values


def model_files(folder: Path) -> dict[str, Path]:
    """Relative name -> path of every .onnx under ``folder`` (sub-folders such as int8/ included)."""
    return {str(p.relative_to(folder)): p for p in sorted(folder.rglob("*.onnx"))}


def pairs(a: Path, b: Path, wanted: list[str]) -> list[tuple[str, Path, Path]]:
    """(name, file in a, file in b) for the wanted names, or for every name both folders hold.
    UserError for a missing folder, a wanted name missing from either, or nothing in common."""
    for flag, folder in (("--a", a), ("--b", b)):
        if not folder.is_dir():
            raise UserError(f"{flag} {folder}: no such folder", f"give {flag} a folder of .onnx models")
    in_a, in_b = model_files(a), model_files(b)
    for name in wanted:
        for flag, folder, found in (("--a", a, in_a), ("--b", b, in_b)):
            if name not in found:
                raise UserError(f"{name} is not in {flag} {folder}", "--files takes names relative to both folders, "
                                "e.g. wave.lite.onnx,int8/wave.lite.int8.onnx")
    names = wanted or sorted(set(in_a) & set(in_b))
    if not names:
        raise UserError(f"{a} and {b} hold no .onnx file of the same name", "give two folders of the same models")
    return [(name, in_a[name], in_b[name]) for name in names]


def interleaved_ms(run_a, run_b, warmup: int, steps: int) -> tuple[list[float], list[float]]:
    """Milliseconds of ``steps`` calls of each, alternating a, b, after ``warmup`` untimed calls of each."""
    for _ in range(warmup):
        run_a()
        run_b()
    times_a, times_b = [], []
    for _ in range(steps):
        for run, times in ((run_a, times_a), (run_b, times_b)):
            started = time.perf_counter()
            run()
            times.append(1e3 * (time.perf_counter() - started))
    return times_a, times_b


def summary(times: list[float]) -> dict:
    q1, median, q3 = np.percentile(times, [25, 50, 75])
    return {"median_ms": round(float(median), 2), "q1_ms": round(float(q1), 2), "q3_ms": round(float(q3), 2)}


def compare(name: str, path_a: Path, path_b: Path, frame: np.ndarray, threads: int, warmup: int, steps: int) -> dict:
    """Time and compare one pair of models on ``frame`` (float32 (1, 3, H, W) RGB 0..255)."""
    model_a, model_b = (load_model(str(p), device="cpu", threads=threads) for p in (path_a, path_b))
    out_a, out_b = model_a.run(frame), model_b.run(frame)
    if out_a.shape != out_b.shape:
        raise UserError(f"{name}: the two models give outputs of different shapes ({out_a.shape} and {out_b.shape})",
                        "compare two versions of the same model")
    times_a, times_b = interleaved_ms(lambda: model_a.run(frame), lambda: model_b.run(frame), warmup, steps)
    a, b = summary(times_a), summary(times_b)
    return {"file": name, "threads": threads, "a": a, "b": b,
            "b_over_a": round(b["median_ms"] / a["median_ms"], 3),
            "max_abs_diff": round(float(np.abs(out_a.astype(np.float64) - out_b).max()), 5)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--a", required=True, type=Path, metavar="DIR", help="first folder of models (the reference)")
    p.add_argument("--b", required=True, type=Path, metavar="DIR", help="second folder (the candidate)")
    p.add_argument("--files", default="", help="comma-separated names relative to both folders "
                   "(default: every .onnx both hold), e.g. wave.lite.onnx,int8/wave.lite.int8.onnx")
    p.add_argument("--size", type=size_arg, default=(640, 480), help="frame size WIDTHxHEIGHT (default 640x480)")
    p.add_argument("--threads", type=threads_list, default=[1], help="comma-separated thread counts (default 1)")
    p.add_argument("--warmup", type=int_at_least(0), default=5, help="untimed runs of each model first")
    p.add_argument("--steps", type=int_at_least(1), default=40, help="timed runs of each model")
    p.add_argument("-o", "--output", default="benchmarks/results/model_ab.json", help="JSON file to write")
    return p


def check_output(text: str) -> Path:
    """-o: a .json file, checked before any work (UserError otherwise)."""
    return output_file(text, "-o", (".json",), "model_ab.json")


def main(argv: list[str] | None = None) -> int:
    return run_script(PROG, run, build_parser().parse_args(argv))


def run(args) -> int:
    out = check_output(args.output)
    wanted = [name.strip() for name in args.files.split(",") if name.strip()]
    todo = pairs(args.a, args.b, wanted)
    width, height = args.size
    frame = np.random.default_rng(0).uniform(0, 255, (1, 3, height, width)).astype(np.float32)
    result = {"benchmark": "model_ab", "a": str(args.a), "b": str(args.b), "size": [width, height],
              "warmup": args.warmup, "steps": args.steps, "order": "interleaved a, b per step",
              "machine": machine(),
              "rows": []}
    for threads in args.threads:
        for name, path_a, path_b in todo:
            row = compare(name, path_a, path_b, frame, threads, args.warmup, args.steps)
            result["rows"].append(row)
            print(f"{name:36s} {threads} thread(s): A {row['a']['median_ms']:7.2f} ms  B {row['b']['median_ms']:7.2f} ms"
                  f"  B/A {row['b_over_a']:.3f}  max diff {row['max_abs_diff']:.4f}")
    write_results(out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
