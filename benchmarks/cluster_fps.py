"""Cluster overhead and scaling: one folder stylized by a plain folder run and by a local Ray cluster
with 1 and 2 workers; frames per second, the overhead against the plain run, JSON out.

The folder: the bundled clip, looped and given a key frame every --gop frames and a sound track,
as clips of --frames lengths (the longest cut into segments of about --segment-frames frames).
Each round runs, in turn (so that a slow spell of a shared machine hits all alike):
  plain_1    `stylecam FOLDER -o OUT --workers 1 --threads 1`    one frame at a time
  cluster_1  `... --cluster --cluster-workers 1 --threads 1`       one worker
  plain_2    `... --workers 2 --threads 1`                          two frames at a time
  cluster_2  `... --cluster --cluster-workers 2 --threads 1`       two workers
The cluster runs use one local Ray cluster started by this script (its start is timed apart, as
`cluster_start_s`); each still starts its workers and loads their models, which is timed with
the run. One `cold` run is the plain command a user types, `stylecam FOLDER -o OUT --cluster`, in a
process of its own that starts and stops its own local cluster. Last, the longest clip alone with
--stabilize on one machine and on the cluster: how much the picture jumps at the joins, where
each segment starts without the frames before it.

    python -m benchmarks.cluster_fps --rounds 2 -o benchmarks/results/cluster_fps_cpu.json
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

from benchmarks.common import load_average, write_results
from stylecam import cli
from stylecam.argtypes import add_hidden_alias, fraction, int_at_least, output_file, positive_int
from stylecam.cluster import segments
from stylecam.cluster.connect import import_ray
from stylecam.demo import DEFAULT_CLIP
from stylecam.errors import UserError
from stylecam.ffmpeg import ffmpeg_exe
from stylecam.sources import SourceError, VideoFileSource

PROG = "cluster_fps.py"
CONFIGS = {                       # name -> the flags it adds to `stylecam FOLDER -o OUT`
    "plain_1": ["--workers", "1", "--threads", "1"],
    "cluster_1": ["--cluster", "--cluster-workers", "1", "--threads", "1"],
    "plain_2": ["--workers", "2", "--threads", "1"],
    "cluster_2": ["--cluster", "--cluster-workers", "2", "--threads", "1"],
}


def frame_counts(text: str) -> list[int]:
    """argparse type: clip lengths in frames, e.g. "60,90,300" (each >= 2)."""
    counts = [int_at_least(2)(part.strip()) for part in text.split(",")]
    return counts


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--style", default="wave", help="style to stylize with (default: wave)")
    parser.add_argument("--weights-dir", default=None, metavar="DIR", help="style models (default: the shipped ones)")
    parser.add_argument("--frames", type=frame_counts, default=frame_counts("60,90,300"), metavar="N,N,...",
                        help="the clips' lengths in frames (default 60,90,300)")
    parser.add_argument("--gop", type=int_at_least(2), default=30, help="a key frame every N frames (default 30)")
    parser.add_argument("--segment-frames", type=int_at_least(2), default=100,
                        help="--segment-frames of the cluster runs (default 100)")
    parser.add_argument("--rounds", type=positive_int, default=2, help="times each configuration runs (default 2)")
    stabilize = parser.add_argument("--stabilize", type=fraction, default=0.8,
                                    help="--stabilize of the join check (default 0.8)")
    add_hidden_alias(parser, "--stabilise", stabilize)
    parser.add_argument("--no-cold", dest="cold", action="store_false", help="leave out the cold run")
    parser.add_argument("-o", "--output", default="benchmarks/results/cluster_fps_cpu.json", help="JSON file to write")
    return parser


def make_folder(folder: Path, lengths: list[int], gop: int) -> list[Path]:
    """Clips of the bundled video looped to each length, a key frame every ``gop`` frames, with a
    sine sound track (H.264 + AAC)."""
    exe = ffmpeg_exe()
    if exe is None:
        raise UserError("the cluster benchmark needs ffmpeg", "pip install imageio-ffmpeg")
    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    fps = VideoFileSource(DEFAULT_CLIP).fps
    for i, frames in enumerate(lengths):
        clip = folder / f"clip{i}_{frames}.mp4"
        subprocess.run([exe, "-hide_banner", "-loglevel", "error", "-y", "-stream_loop", "-1", "-i", str(DEFAULT_CLIP),
                        "-f", "lavfi", "-i", f"sine=frequency=440:duration={frames / fps}", "-map", "0:v:0",
                        "-map", "1:a:0", "-frames:v", str(frames), "-c:v", "libx264", "-preset", "veryfast",
                        "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-pix_fmt", "yuv420p",
                        "-c:a", "aac", "-shortest", str(clip)], check=True, capture_output=True)
        clips.append(clip)
    return clips


def stylecam_json(argv: list[str]) -> tuple[int, dict, float]:
    """`stylecam ARGV --json` in this process: (exit code, summary, wall seconds)."""
    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = cli.main([*argv, "--json", "--no-progress"])
    seconds = time.perf_counter() - started
    return code, (json.loads(out.getvalue()) if out.getvalue().strip() else {}), seconds


def measure(name: str, folder: Path, work: Path, common: list[str]) -> dict:
    """One run of configuration ``name``: frames, seconds, FPS, and for cluster runs the workers."""
    out = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work))
    code, summary, seconds = stylecam_json([str(folder), "-o", str(out), *common, *CONFIGS[name]])
    if code != 0:
        raise UserError(f"{name} ended with exit code {code}", "run the command by hand to see why")
    frames = sum(d["frames"] for d in summary["done"])
    row = {"config": name, "frames": frames, "seconds": round(seconds, 3), "fps": round(frames / seconds, 2),
           "files": len(summary["done"])}
    if "cluster" in name:
        row["segments"] = sum(d["segments"] for d in summary["done"])
        row["workers"] = summary["stylecam"]["cluster"]["workers"]
        row["workers_start_s"] = summary["stylecam"]["cluster"]["workers_start_s"]
    print(f"{name:10s} {frames} frames {seconds:7.2f} s {row['fps']:6.2f} FPS", file=sys.stderr)
    return row


def cold_run(folder: Path, work: Path, common: list[str]) -> dict:
    """`stylecam FOLDER -o OUT --cluster` in a process of its own (its local cluster started and stopped)."""
    out = Path(tempfile.mkdtemp(prefix="cold-", dir=work))
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "stylecam", str(folder), "-o", str(out), *common, "--cluster",
                           "--json", "--no-progress"], capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise UserError(f"the cold run ended with exit code {proc.returncode}: {proc.stderr.strip()[-300:]}")
    summary = json.loads(proc.stdout)
    frames = sum(d["frames"] for d in summary["done"])
    print(f"cold       {frames} frames {seconds:7.2f} s", file=sys.stderr)
    return {"config": "cold", "frames": frames, "seconds": round(seconds, 3), "fps": round(frames / seconds, 2),
            "workers": summary["stylecam"]["cluster"]["workers"]}


def frame_steps(path: Path) -> np.ndarray:
    """Mean absolute difference (grey levels) of each frame of a video from the one before: (N - 1,)."""
    frames = [f.astype(np.float32) for f in VideoFileSource(path)]
    return np.array([np.abs(b - a).mean() for a, b in zip(frames, frames[1:])])


def join_check(clip: Path, work: Path, common: list[str], stabilize: float, segment_frames: int) -> dict:
    """The longest clip with --stabilize on one machine and on the cluster: the frame-to-frame change
    at the first frame of each segment (a join) in both, and the median elsewhere."""
    layout = segments.probe_layout(clip)
    plan = segments.plan_segments(layout.keys, layout.count, segment_frames)
    joins = [start for start, _ in plan[1:]]
    steps = {}
    for name, flags in (("plain", CONFIGS["plain_2"]), ("cluster", CONFIGS["cluster_2"])):
        out = Path(tempfile.mkdtemp(prefix=f"join-{name}-", dir=work)) / clip.name
        code, _, _ = stylecam_json([str(clip), "-o", str(out), *common, *flags, "--stabilize", str(stabilize)])
        if code != 0:
            raise UserError(f"the join check ({name}) ended with exit code {code}")
        steps[name] = frame_steps(out)
    others = [t for t in range(1, layout.count) if t not in joins]
    # "stabilise": the key of the committed result files (benchmarks/results/cluster_fps_*.json)
    return {"clip_frames": layout.count, "stabilise": stabilize, "joins": joins,
            "step_at_joins": {k: [round(float(v[t - 1]), 2) for t in joins] for k, v in steps.items()},
            "step_median_elsewhere": {k: round(float(np.median(v[[t - 1 for t in others]])), 2)
                                      for k, v in steps.items()}}


def run(args) -> int:
    out = output_file(args.output, "-o", (".json",), "cluster_fps.json")
    ray = import_ray()
    common = ["--style", args.style, "--device", "cpu", "--segment-frames", str(args.segment_frames)]
    if args.weights_dir:
        common += ["--weights-dir", args.weights_dir]
    results = {"benchmark": "cluster_fps", "style": args.style, "ray": ray.__version__,
               "machine": {"platform": platform.platform(), "processor": platform.processor(),
                           "cpus": os.cpu_count(), "load_avg_start": load_average()},
               "clip_frames": args.frames, "gop": args.gop, "segment_frames": args.segment_frames,
               "rounds": args.rounds, "configs": {k: " ".join(v) for k, v in CONFIGS.items()}, "runs": []}
    with tempfile.TemporaryDirectory(prefix="stylecam-cluster-bench-") as tmp:
        work = Path(tmp)
        clips = make_folder(work / "folder", args.frames, args.gop)
        handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        started = time.perf_counter()
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)
        results["cluster_start_s"] = round(time.perf_counter() - started, 2)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        try:
            for _ in range(args.rounds):
                for name in CONFIGS:
                    results["runs"].append(measure(name, work / "folder", work, common))
            results["join_check"] = join_check(max(clips, key=lambda c: int(c.stem.split("_")[1])), work, common,
                                               args.stabilize, args.segment_frames)
        finally:
            ray.shutdown()
        if args.cold:
            results["cold"] = cold_run(work / "folder", work, common)
    fps = {name: statistics.median(r["fps"] for r in results["runs"] if r["config"] == name) for name in CONFIGS}
    results["overhead"] = {"cluster_1_vs_plain_1": round(1 - fps["cluster_1"] / fps["plain_1"], 3),
                           "cluster_2_vs_plain_2": round(1 - fps["cluster_2"] / fps["plain_2"], 3),
                           "cluster_2_vs_cluster_1_speedup": round(fps["cluster_2"] / fps["cluster_1"], 3)}
    results["machine"]["load_avg_end"] = load_average()
    write_results(out, results)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (UserError, SourceError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
