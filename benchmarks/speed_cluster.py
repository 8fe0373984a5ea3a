"""docs/speed.md: the cluster section, from benchmarks/results/cluster_fps_cpu.json (and the GPU results)."""
from __future__ import annotations

from benchmarks.speed_results import files, fps, load, num, pick, sources_of, span, table

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
        f"`benchmarks/cluster_fps.py` stylizes one folder ({clips} frames of the bundled 480x360 clip with",
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
        "- The cluster's overhead against the plain run with as many frames in flight (median FPS):",
        f"  {num(100 * over['cluster_1_vs_plain_1'], 0)} % with one worker, {num(100 * over['cluster_2_vs_plain_2'], 0)} %",
        f"  with two; two workers give {num(over['cluster_2_vs_cluster_1_speedup'], 2)}x the frames per second of one",
        f"  (two cores shared with other work: the 1-minute load average was {_load(data, 'load_avg_start')} at",
        f"  the start and {_load(data, 'load_avg_end')} at the end, so little speed-up is to be had here).",
        "  The overhead is mostly fixed: starting the workers and loading their models, cutting and",
        "  joining the segments, sending every input and output through Ray's object store; on two cores",
        "  it also takes CPU time from the stylizing.",
        f"- Starting the local cluster itself took {num(data['cluster_start_s'])} s.",
    ]
    if cold:
        lines += ["- The command as typed, `stylecam FOLDER -o OUT --cluster` in a process of its own (the local",
                  f"  cluster started and stopped with it, {cold['workers']} workers), took {num(cold['seconds'])} s",
                  f"  ({num(cold['fps'])} FPS), against {span(plain_2)} s for the plain run."]
    at_joins = check["step_at_joins"]
    lines += [
        f"- `--stabilize {check['stabilise']:g}` at the joins: the longest clip ({check['clip_frames']} frames,",
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
        "Reproduce: `python -m benchmarks.cluster_fps --rounds 2 -o benchmarks/results/cluster_fps_cpu.json`",
        "(when the machine is otherwise idle: the load average is recorded with the results).",
        "",
    ]
    return lines
