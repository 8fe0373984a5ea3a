"""Cluster runs on a real local Ray cluster (2 CPUs, 2 workers), started once for this module:
the same outputs as a single-machine run, a worker killed mid-run, an interrupted run resumed, a bad
file among good ones, the progress bar, the summary, `stylecam info --cluster`.

Skipped without Ray (pip install 'stylecam[cluster]'); CI installs it, so there they run.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from stylecam import cli, ffmpeg
from stylecam.cluster import manifest, segments
from tests.fakes.onnx_models import make_weights_dir
from tests.test_cluster_parts import decoded, make_clip

ray = pytest.importorskip("ray")
FFMPEG = ffmpeg.ffmpeg_exe()
pytestmark = [pytest.mark.cluster, pytest.mark.skipif(FFMPEG is None, reason="no ffmpeg binary")]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of 2 CPUs in this process; stylecam's --cluster uses it as it is."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    for signum, handler in handlers.items():   # ray.init takes SIGTERM
        signal.signal(signum, handler)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    """clips/: a.mp4 (12 frames, sound), b.mp4 (20 frames, silent), long.mp4 (60 frames, sound, a key
    frame every 10: three segments of 20 with --segment-frames 20); heavy/: three 320x240 clips of 40
    frames; weights/: the fake styles."""
    root = tmp_path_factory.mktemp("cluster_media")
    clips = root / "clips"
    clips.mkdir()
    make_clip(clips / "a.mp4", 1.2, gop=5)
    make_clip(clips / "b.mp4", 2.0, audio=False)
    make_clip(clips / "long.mp4", 6.0)
    heavy = root / "heavy"
    heavy.mkdir()
    for name in ("h1", "h2", "h3"):
        make_clip(heavy / f"{name}.mp4", 4.0, size="320x240")
    make_weights_dir(root / "weights")
    return root


def stylecam(capsys, media: Path, *argv: str) -> tuple[int, str, str]:
    """`stylecam ARGV` in this process with the fake styles on the CPU: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = cli.main([*argv, "--weights-dir", str(media / "weights"), "--device", "cpu"])
    out, err = capsys.readouterr()
    return code, out, err


def on_cluster(*argv: str) -> list[str]:
    return [*argv, "--cluster", "--cluster-workers", "2", "--segment-frames", "20", "--json"]


def temporaries(folder: Path) -> list[str]:
    """Hidden files in ``folder`` other than the manifest (temporary outputs left behind)."""
    return sorted(p.name for p in folder.rglob(".*") if p.name != manifest.MANIFEST_NAME)


def whole(path: Path, frames: int) -> bool:
    """Whether ffmpeg reads ``frames`` pictures from ``path`` and OpenCV decodes as many."""
    packets = ffmpeg.probe_packets(path)
    return packets is not None and len(packets.times) == frames and len(decoded(path)) == frames


# ----- the same outputs as one machine ----------------------------------------------------------------

def test_a_folder_on_the_cluster_gives_the_frames_times_and_sound_of_the_single_machine_run(
        cluster, media, capsys, tmp_path):
    code, _, _ = stylecam(capsys, media, str(media / "clips"), "-o", str(tmp_path / "alone"), "--no-progress")
    assert code == 0
    code, out, err = stylecam(capsys, media, *on_cluster(str(media / "clips"), "-o", str(tmp_path / "spread")))
    assert code == 0, err
    summary = json.loads(out)
    done = {Path(d["input"]).name: d for d in summary["done"]}
    assert list(done) == ["a.mp4", "b.mp4", "long.mp4"] and summary["failed"] == [] == summary["skipped"]
    assert summary["stylecam"]["cluster"]["workers"] == 2 and summary["stylecam"]["chain"] == ["wave"]
    for name, frames, sound in (("a.mp4", 12, True), ("b.mp4", 20, False), ("long.mp4", 60, True)):
        entry = done[name]
        assert entry["frames"] == frames and entry["retries"] == 0 and entry["seconds"] > 0
        assert entry["worker"] and entry["audio"] is sound
        alone, spread = tmp_path / "alone" / name, tmp_path / "spread" / name
        assert ffmpeg.probe_packets(spread).times == ffmpeg.probe_packets(alone).times    # frame count and times
        assert ffmpeg.probe_streams(spread) == ffmpeg.probe_streams(alone) == (["video", "audio"] if sound else ["video"])
        durations = [ffmpeg.parse_duration(ffmpeg.probe_text(p)) for p in (alone, spread)]
        assert abs(durations[0] - durations[1]) < 0.05
        a, b = decoded(alone), decoded(spread)
        if entry["segments"] == 1:
            assert np.array_equal(a, b)                    # the same work on another process, bit for bit
        else:                                              # the encoder starts afresh at each join
            assert np.abs(a - b).mean(axis=(1, 2, 3)).max() < 4.0
    assert done["long.mp4"]["segments"] == 3 and done["a.mp4"]["segments"] == 1
    assert temporaries(tmp_path / "spread") == []
    # one progress bar, in frames, over every worker: no bar per file
    bars = [part for part in err.replace("\n", "\r").split("\r") if "frame" in part]
    assert bars and all(part.startswith("stylizing:") for part in bars)
    assert "92/92" in bars[-1]


def test_a_bad_file_fails_alone_with_its_error_in_the_summary(cluster, media, capsys, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.mp4").write_bytes((media / "clips" / "a.mp4").read_bytes())
    (folder / "broken.mp4").write_bytes(os.urandom(5000))
    long = (media / "clips" / "long.mp4").read_bytes()
    (folder / "cut.mp4").write_bytes(long[:len(long) // 2])     # its end is missing: no index, unreadable
    code, out, err = stylecam(capsys, media, *on_cluster(str(folder), "-o", str(tmp_path / "out"), "--no-progress"))
    assert code == 1
    summary = json.loads(out)
    assert [Path(d["input"]).name for d in summary["done"]] == ["a.mp4"]
    assert [Path(f["input"]).name for f in summary["failed"]] == ["broken.mp4", "cut.mp4"]
    for failed in summary["failed"]:
        assert Path(failed["input"]).name in failed["error"] and failed["retries"] == 0 and failed["worker"]
        assert f"stylecam: skipped {failed['input']}: " in err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "stylecam: 2 of 3 files could not be read"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [manifest.MANIFEST_NAME, "a.mp4"]


@pytest.mark.parametrize("fault", ["split", "join"])
def test_a_video_that_cannot_be_cut_or_joined_is_stylized_whole(cluster, media, capsys, tmp_path, monkeypatch,
                                                                  fault):
    def fails(*args, **kwargs):
        raise segments.SegmentError(f"cannot {fault} it here")

    monkeypatch.setattr(segments, fault, fails)
    out = tmp_path / "long.mp4"
    code, stdout, err = stylecam(capsys, media, *on_cluster(str(media / "clips" / "long.mp4"), "-o", str(out),
                                                            "--no-progress"))
    assert code == 0, err
    [entry] = json.loads(stdout)["done"]
    assert entry["segments"] == 1 and entry["frames"] == 60 and entry["audio"]
    assert f"stylecam: cannot {fault} it here; stylizing the file whole" in err
    assert ffmpeg.probe_packets(out).times == ffmpeg.probe_packets(media / "clips" / "long.mp4").times
    assert temporaries(tmp_path) == []


def test_a_style_that_does_not_exist_is_one_line_and_exit_2(cluster, media, capsys, tmp_path):
    code, out, err = stylecam(capsys, media, *on_cluster(str(media / "clips" / "a.mp4"), "-o", str(tmp_path / "x.mp4"),
                                                         "--style", "nosuch"))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("stylecam: error: ") and "nosuch" in lines[0]
    assert json.loads(out)["exit_code"] == 2
    assert not (tmp_path / "x.mp4").exists()


# ----- faults -----------------------------------------------------------------------------------------

def descendants(pid: int) -> list[int]:
    """Processes below ``pid`` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def busy_workers() -> list[int]:
    """This process's Ray workers that are stylizing now (Ray titles them "ray::Worker.run")."""
    busy = []
    for pid in descendants(os.getpid()):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("ray::Worker.run"):
            busy.append(pid)
    return busy


HEAVY = ("--chain", "wave,muse", "--repeat", "10")    # twenty passes a frame: a task lasts long enough to be hit


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the workers in /proc")
def test_a_worker_killed_mid_task_has_its_task_retried_and_every_output_is_whole(cluster, media, capsys, tmp_path):
    killed: list[int] = []
    stop = threading.Event()

    def kill_one_busy_worker():
        seen: set[int] = set()
        while not stop.is_set() and not killed:
            for pid in busy_workers():
                if pid in seen:                 # busy on two looks in a row: in the middle of a task
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
                seen.add(pid)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_busy_worker, daemon=True)
    killer.start()
    try:
        code, out, err = stylecam(capsys, media, *on_cluster(str(media / "heavy"), "-o", str(tmp_path / "out"),
                                                             "--no-progress", *HEAVY))
    finally:
        stop.set()
        killer.join()
    assert killed, "no busy worker was found to kill"
    assert code == 0, err
    summary = json.loads(out)
    assert [Path(d["input"]).name for d in summary["done"]] == ["h1.mp4", "h2.mp4", "h3.mp4"]
    assert sum(d["retries"] for d in summary["done"]) == 1, (err, summary["done"])
    assert "a worker died while stylizing" in err and "Traceback" not in err
    for entry in summary["done"]:
        assert entry["frames"] == 40 and whole(Path(entry["output"]), 40)
    assert temporaries(tmp_path / "out") == []


def test_an_interrupted_run_skips_its_finished_files_when_run_again_and_redoes_them_for_other_settings(
        cluster, media, capsys, tmp_path, monkeypatch):
    out = tmp_path / "out"
    record = manifest.record
    stops = []

    def record_then_ctrl_c(*args, **kwargs):
        record(*args, **kwargs)
        if not stops:                            # Ctrl-C just after the first file is whole
            stops.append(args[0])
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(manifest, "record", record_then_ctrl_c)
    argv = on_cluster(str(media / "clips"), "-o", str(out), "--no-progress")
    code, _, err = stylecam(capsys, media, *argv)
    assert code == 130
    first = Path(stops[0])
    assert err.strip().splitlines()[-1].startswith("stylecam: interrupted: 1 file(s) written whole, 2 not finished")
    assert sorted(p.name for p in out.iterdir()) == sorted([manifest.MANIFEST_NAME, first.name])
    before = first.stat()
    monkeypatch.setattr(manifest, "record", record)

    code, stdout, _ = stylecam(capsys, media, *argv)
    assert code == 0
    summary = json.loads(stdout)
    assert [s["output"] for s in summary["skipped"]] == [str(first)]
    assert sorted(Path(d["output"]).name for d in summary["done"]) == sorted({"a.mp4", "b.mp4", "long.mp4"} - {first.name})
    assert (first.stat().st_ino, first.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    code, stdout, _ = stylecam(capsys, media, *argv, "--strength", "0.5")
    assert code == 0
    summary = json.loads(stdout)
    assert summary["skipped"] == [] and len(summary["done"]) == 3
    assert first.stat().st_ino != before.st_ino            # made again, and renamed into place
    assert temporaries(out) == []


# ----- info, and a cluster of its own -----------------------------------------------------------------

def test_info_lists_the_machines_of_the_cluster_at_an_address(cluster, capsys):
    assert cli.main(["info", "--no-cameras", "--cluster"]) == 0      # this process's cluster
    lines = capsys.readouterr().out.splitlines()
    assert f"cluster (ray {ray.__version__}): 1 machine(s), 2 CPUs, 0 GPUs" in lines
    proc = subprocess.run([sys.executable, "-m", "stylecam", "info", "--no-cameras", "--json", "--cluster", cluster],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout)["cluster"]
    assert facts["cpus"] == 2 and facts["gpus"] == 0 and len(facts["nodes"]) == 1
    assert proc.stderr == ""


def test_an_address_without_a_cluster_is_one_line_and_exit_2(capsys):
    proc = subprocess.run([sys.executable, "-m", "stylecam", "info", "--no-cameras", "--cluster", "127.0.0.1:9"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("stylecam: error: cannot reach a Ray cluster at 127.0.0.1:9") and "ray start --head" in lines[0]


def test_ctrl_c_stops_a_run_on_a_local_cluster_of_its_own_leaving_only_whole_files(media, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "stylecam", str(media / "heavy"), "-o", str(out), *HEAVY,
                             "--cluster", "--segment-frames", "20", "--weights-dir", str(media / "weights"),
                             "--device", "cpu"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and not any("stylizing" in line for line in lines):
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    reader.join(timeout=10)
    text = "".join(lines)
    assert proc.returncode == 130, text
    assert "stylecam: interrupted: " in text and "Traceback" not in text
    for video in (out.glob("*.mp4") if out.is_dir() else []):
        assert whole(video, 40)
    assert temporaries(out) == [] if out.is_dir() else True
