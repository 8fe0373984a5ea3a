"""What the benchmark scripts share: the error handling of a script, argument types, the machine
description, the tiny fake models and writing the results.

Run every benchmark from the repository root as a module: ``python -m benchmarks.NAME --help``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

from stylecam.argtypes import int_at_least, positive_int
from stylecam.errors import UserError
from stylecam.fileout import atomic_write_bytes
from stylecam.sources import SourceError

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
MIN_SIDE = 16        # smallest frame side benchmarked
MIN_INFER = 8        # smallest inference long side (as Stylizer / stylecam --size)


def run_script(prog: str, run, args: argparse.Namespace) -> int:
    """``run(args)``; a UserError or SourceError becomes one line "PROG: error: ..." on stderr and
    exit code 2 (argparse has already refused bad values with exit code 2)."""
    try:
        return run(args)
    except (UserError, SourceError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2


# ----- argument types (argparse turns ArgumentTypeError into "error: argument ...", exit 2) -----

def comma_list(item, what: str):
    """A comma-separated list, each entry parsed by ``item``; empty lists and entries refused."""
    def parse(text: str) -> list:
        parts = text.split(",")
        if not text.strip() or any(not part.strip() for part in parts):
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {what}, got {text!r}")
        return [item(part.strip()) for part in parts]
    return parse


def choice(allowed) -> callable:
    """One of ``allowed`` (for the entries of a comma_list)."""
    def parse(text: str) -> str:
        if text not in allowed:
            raise argparse.ArgumentTypeError(f"expected one of {', '.join(allowed)}, got {text!r}")
        return text
    return parse


def frame_size(text: str) -> tuple[int, int]:
    """WIDTHxHEIGHT, both even (H.264 4:2:0 needs even sizes) and at least MIN_SIDE."""
    m = re.fullmatch(r"(\d+)x(\d+)", text)
    if m is None:
        raise argparse.ArgumentTypeError(f"expected a frame size WIDTHxHEIGHT such as 640x480, got {text!r}")
    w, h = int(m[1]), int(m[2])
    if w < MIN_SIDE or h < MIN_SIDE:
        raise argparse.ArgumentTypeError(f"frame size {text!r} is too small: both sides must be at least {MIN_SIDE}")
    if w % 2 or h % 2:
        raise argparse.ArgumentTypeError(
            f"frame size {text!r} has an odd side: the H.264 clips need even sizes "
            f"(e.g. {w + w % 2}x{h + h % 2})")
    return w, h


def infer_size(text: str) -> int | None:
    """native (None) or a long side >= MIN_INFER."""
    if text == "native":
        return None
    try:
        return int_at_least(MIN_INFER)(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected native or a whole number ≥ {MIN_INFER}, got {text!r}") from None


def workers_value(text: str) -> int | None:
    """auto (None) or a whole number >= 1."""
    if text == "auto":
        return None
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected auto or a whole number ≥ 1, got {text!r}") from None


# ----- the machine ------------------------------------------------------------------------------

def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages, None where the system has none (Windows)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def load_text(machine: dict) -> str:
    """The table header's note on the load at the start of a run."""
    load = machine.get("load_avg_start")
    return f"load average at start {load[0]:.2f}" if load else "no load average on this system"


def gpu_name() -> str:
    """The GPU as nvidia-smi names it, with its driver; "unknown" without nvidia-smi."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
        return out.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def machine() -> dict:
    """What a result file records about its machine: platform, processor, CPU count and the load
    averages now (``load_avg_start``; a script adds ``load_avg_end`` when it is done)."""
    return {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
            "load_avg_start": load_average()}


# ----- models and results -----------------------------------------------------------------------

def fake_models(folder: Path) -> Path:
    """The tiny test models (wave +10, muse x0.5; no compute) in ``folder``: loop overhead only."""
    from tests.fakes.onnx_models import make_weights_dir
    return make_weights_dir(folder)


def write_results(out: Path, results: dict, table: str | None = None, allow_nan: bool = True) -> None:
    """``results`` as JSON to ``out`` (written whole or not at all; ``allow_nan=False``: a NaN is a
    ValueError, not a file JSON readers refuse), and ``table`` (Markdown), when given, beside it as .md."""
    atomic_write_bytes(out, (json.dumps(results, indent=2, allow_nan=allow_nan) + "\n").encode())
    if table is not None:
        atomic_write_bytes(out.with_suffix(".md"), table.encode())
