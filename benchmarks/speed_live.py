"""The sections of docs/speed.md read from benchmarks/live_fps.py's results: the live camera and
--size auto."""
from __future__ import annotations

from benchmarks.speed_results import fps, load, pick, sources_of, span, table, values

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
        "Reproduce: `python -m benchmarks.live_fps --styles wave,mosaic --precisions fp32,int8 --workers 1,auto",
        "-o benchmarks/results/live_fps_cpu.json` (`--modes window` with a display, e.g. `Xvfb :99 &` then",
        "`DISPLAY=:99 python -m benchmarks.live_fps ... --modes window`; `--camera-fps 60 --modes show` for",
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
        "stylizing keeps up with the camera (see `stylecam.live.AutoSize`). Default two frames at once,",
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
        "smaller sizes. Reproduce: `python -m benchmarks.live_fps --styles wave,mosaic --infer-sizes native,auto",
        "--workers auto --modes show --frames 300 -o benchmarks/results/live_fps_cpu_auto_run1.json`",
        "(and `--modes window`).",
        "",
    ]
    return lines
