"""Reading benchmarks/results/*.json for docs/speed.md (benchmarks.speed_doc): each file loaded once
and remembered as used, runs picked by their fields, and the Markdown pieces (numbers, ranges over
repeated runs, links to the source files, paragraphs, tables)."""
from __future__ import annotations

import json
import re
import textwrap
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
RESULTS_LINK = "../benchmarks/results"     # results/ as seen from docs/speed.md

# ----- reading ---------------------------------------------------------------------------------

USED: set[str] = set()   # the files a section read (for the index at the end)


@lru_cache(maxsize=None)
def read_result(name: str) -> dict:
    """benchmarks/results/NAME (a path relative to results/), parsed once; not remembered as used."""
    return json.loads((RESULTS / name).read_text())


def load(name: str) -> dict:
    """benchmarks/results/NAME (a path relative to results/), parsed; remembered as used."""
    USED.add(name)
    return read_result(name)


def machine_text(data: dict) -> str:
    """What a result file records about its machine, as one line ("" when it records nothing)."""
    machine = data.get("machine") or data.get("environment")
    if machine is None and data.get("runs") and isinstance(data["runs"][0], dict):
        machine = data["runs"][0].get("machine")
    if isinstance(machine, dict):
        skip = {"load_avg_start", "load_avg_end", "load_average_before", "load_average_after"}
        parts = [f"{k} {v}" for k, v in machine.items() if k not in skip and v not in ("", None)]
    else:
        parts = [f"device {data['device']}"] if isinstance(data.get("device"), str) else []
    for key in ("python", "torch", "onnxruntime"):
        if key in data and isinstance(data[key], str):
            parts.append(f"{key} {data[key]}")
    return ", ".join(parts)


# ----- formatting ------------------------------------------------------------------------------

def as_run_now(command: str) -> str:
    """A command line recorded in a result file, as it is typed now: ``python benchmarks/NAME.py ...``
    became ``python -m benchmarks.NAME ...``."""
    return re.sub(r"python benchmarks/(\w+)\.py", r"python -m benchmarks.\1", command)


def num(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}"


def span(values, digits: int = 1) -> str:
    """"lo-hi" of the values (one figure where they agree after rounding); "-" for none."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    lo, hi = num(min(values), digits), num(max(values), digits)
    return lo if lo == hi else f"{lo}-{hi}"


def pct_span(values) -> str:
    return span([100 * v for v in values], 0)


def files(names) -> str:
    """Links to result files, as they appear in the 'source' column."""
    return ", ".join(f"[`{n}`]({RESULTS_LINK}/{n})" for n in names)


def para(text: str, bullet: bool = False) -> list[str]:
    """One paragraph (or "- " bullet) wrapped at 100 columns; code spans and links are not split."""
    lead = "- " if bullet else ""
    return textwrap.wrap(lead + " ".join(text.split()), width=100, subsequent_indent="  " if bullet else "",
                         break_long_words=False, break_on_hyphens=False)


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows] + [""]


def reflow(lines: list[str]) -> list[str]:
    """Paragraphs and "- " bullets joined and wrapped again (the sections write them in pieces);
    headings, tables, code blocks and comments are kept as they are."""
    out: list[str] = []
    block: list[str] = []
    fenced = False

    def flush() -> None:
        if block:
            out.extend(para(" ".join(block)[2:], bullet=True) if block[0].startswith("- ") else para(" ".join(block)))
            block.clear()

    for line in lines:
        text = line.strip()
        if text.startswith("```"):
            flush()
            fenced = not fenced
            out.append(line)
        elif fenced or not text or text.startswith(("#", "|", "<!--")) or line.startswith("     "):
            flush()
            out.append(line)
        else:
            if text.startswith("- "):
                flush()
            block.append(text)
    flush()
    return out


# ----- selecting runs ---------------------------------------------------------------------------

def style_of(run: dict) -> str:
    """'wave' from 'wave (lite, fp32)'; chains as 'wave + muse'."""
    names = run.get("styles") or ([run["style"]] if "style" in run else [])
    return " + ".join(n.split(" (")[0] for n in names)


def network_of(run: dict) -> str:
    name = (run.get("styles") or [run.get("style", "")])[0]
    inside = re.search(r"\(([^,)]+)", name)
    return inside.group(1) if inside else "?"


def workers_of(run: dict) -> str:
    """'1' (one run, onnxruntime's own threads) or 'W x T' (W runs of T threads each)."""
    threads = run.get("threads_per_run")
    return str(run["workers"]) if threads is None else f"{run['workers']} x {threads}"


def pick(names, **where):
    """[(file, run)] of the runs in those runtime_fps/live_fps files that match every key=value
    (callables are called with the run's value)."""
    out = []
    for name in names:
        for run in load(name)["runs"]:
            if all((want(run.get(key)) if callable(want) else run.get(key) == want) for key, want in where.items()):
                out.append((name, run))
    return out


def values(found, getter):
    return [getter(run) for _, run in found]


def sources_of(*founds) -> str:
    names: list[str] = []
    for found in founds:
        for name, _ in found:
            if name not in names:
                names.append(name)
    return files(names)


def fps(run: dict) -> float:
    return run["end_to_end"]["fps"] if "end_to_end" in run else run["fps"]


def inference_ms(run: dict) -> float:
    return run["stages_ms"]["inference"]
