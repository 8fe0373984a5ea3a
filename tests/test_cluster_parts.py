"""The parts of a cluster run that need no cluster: cutting and joining videos, the manifest, the
progress count, the worker as a plain object, the flags. (test_cluster_ray.py runs them on Ray.)"""
from __future__ import annotations

import builtins
import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from stylecam import cli, ffmpeg, runner
from stylecam.cluster import manifest, options, segments
from stylecam.cluster.connect import check_address
from stylecam.cluster.driver import settings_of
from stylecam.cluster.progress import CountingStylizer, ProgressBoard
from stylecam.cluster.worker import Task, Worker
from stylecam.config import EngineConfig, RunConfig
from stylecam.errors import UserError
from stylecam.pipeline import Stylizer
from tests.fakes.onnx_models import make_weights_dir

FFMPEG = ffmpeg.ffmpeg_exe()
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="no ffmpeg binary")


def make_clip(path: Path, seconds: float, gop: int = 10, audio: bool = True, size: str = "64x48") -> Path:
    """An H.264 testsrc clip at 10 fps with a key frame every ``gop`` frames, B-frames, and a sine AAC track."""
    cmd = [FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
           "-i", f"testsrc=size={size}:rate=10:duration={seconds}"]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac"]
    cmd += ["-c:v", "libx264", "-preset", "veryfast", "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
            "-pix_fmt", "yuv420p", str(path)]
    subprocess.run(cmd, check=True)
    return path


def decoded(path: Path) -> np.ndarray:
    """Every frame of a video as float (N, H, W, 3) BGR."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame.astype(np.float32))
    cap.release()
    return np.stack(frames)


# ----- segments: the pure part ------------------------------------------------------------------

FRAMECRC = """#tb 0: 1/10240
#media_type 0: video
0,      -2048,          0,     1024,     1420, 0x2737668e
0,      -1024,       4096,     1024,      223, 0x1ef26b16, F=0x0
0,          0,       2048,     1024,       36, 0xe74e0e98, F=0x0
0,       1024,       1024,     1024,       12, 0x0cd10312, F=0x0
0,       2048,       3072,     1024,       12, 0x0cde0315, F=0x0
0,       3072,       5120,     1024,      900, 0x00000001, F=0x5
0,       4096,       6144,     1024,        0, 0x00000002, F=0x0
"""


def test_parse_layout_reads_packets_in_file_order_with_their_key_flags():
    layout = segments.parse_layout(FRAMECRC)
    assert layout.time_base == 1 / 10240
    assert layout.pts == (0, 4096, 2048, 1024, 3072, 5120, 6144)
    assert layout.sizes == (1420, 223, 36, 12, 12, 900, 0)
    assert layout.keys == (0, 5)          # no F= field: key; F=0x5: key (bit 0) and more
    assert segments.parse_layout("#tb 0: 1/25\n") is None
    assert segments.parse_layout("0, 0, 0, 1, 10, 0x0\n") is None   # no time base


@pytest.mark.parametrize("keys, frames, target, expected", [
    ([0, 10, 20, 30, 40, 50], 60, 20, [(0, 20), (20, 20), (40, 20)]),
    ([0, 10, 20, 30, 40, 50], 60, 25, [(0, 30), (30, 30)]),            # the first key at or after 25
    ([0, 10, 20, 30, 40, 50], 55, 25, [(0, 30), (30, 25)]),
    ([0, 10, 20, 30, 40, 50], 58, 20, [(0, 20), (20, 20), (40, 18)]),
    ([0, 10, 20, 30, 40, 50], 45, 20, [(0, 20), (20, 25)]),            # no tail shorter than target // 2
    ([0], 500, 20, [(0, 500)]),                                         # one key frame: no cut
    ([0, 250], 300, 1200, [(0, 300)]),                                  # shorter than a segment
])
def test_plan_segments_cuts_at_the_first_key_frame_after_each_target(keys, frames, target, expected):
    plan = segments.plan_segments(keys, frames, target)
    assert plan == expected
    assert sum(count for _, count in plan) == frames
    assert all(start in keys for start, _ in plan)


def test_plan_segments_refuses_a_target_below_one_frame():
    with pytest.raises(ValueError):
        segments.plan_segments([0, 5], 10, 0)


def test_can_split_only_steady_clips_of_pictures_into_joinable_containers():
    steady = segments.PacketLayout(1 / 10, tuple(range(30)), (100,) * 30, (0, 10, 20))
    assert segments.can_split(steady, 10.0, ".mp4") and segments.can_split(steady, 10.0, ".MKV")
    assert not segments.can_split(steady, 10.0, ".gif")           # a GIF's palette spans the clip
    assert not segments.can_split(steady, 10.0, ".webm")
    assert not segments.can_split(None, 10.0, ".mp4")
    dropped = segments.PacketLayout(1 / 10, tuple(range(30)), (100,) * 15 + (0,) + (100,) * 14, (0, 10, 20))
    assert not segments.can_split(dropped, 10.0, ".mp4")          # a dropped-frame AVI's empty packet
    variable = segments.PacketLayout(1 / 100, tuple(i * 10 + (i % 2) * 6 for i in range(30)), (100,) * 30, (0, 10))
    assert not segments.can_split(variable, 10.0, ".mp4")
    one_key = segments.PacketLayout(1 / 10, tuple(range(30)), (100,) * 30, (0,))
    assert not segments.can_split(one_key, 10.0, ".mp4")


# ----- segments: ffmpeg --------------------------------------------------------------------------

@needs_ffmpeg
def test_split_copies_the_packets_planned_and_join_gives_back_frames_times_and_sound(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", seconds=4)
    layout = segments.probe_layout(clip)
    assert layout.count == 40 and layout.keys[:4] == (0, 10, 20, 30)
    plan = segments.plan_segments(layout.keys, layout.count, 15)
    assert plan == [(0, 20), (20, 20)]
    parts = segments.split(clip, plan, tmp_path)
    assert [segments.probe_layout(p).count for p in parts] == [20, 20]
    assert "audio" not in ffmpeg.probe_streams(parts[0])
    # the parts decode to the clip's frames (a stream copy: bit for bit)
    assert np.array_equal(np.concatenate([decoded(p) for p in parts]), decoded(clip))
    out = tmp_path / "joined.mp4"
    assert segments.join(parts, out, 10.0, 40, clip) is True
    assert ffmpeg.probe_packets(out).times == ffmpeg.probe_packets(clip).times
    assert ffmpeg.probe_streams(out) == ["video", "audio"]
    assert abs(ffmpeg.parse_duration(ffmpeg.probe_text(out)) - 4.0) < 0.05
    assert np.array_equal(decoded(out), decoded(clip))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "joined.mp4", "part00000.mp4", "part00001.mp4"]


@needs_ffmpeg
def test_join_says_when_the_parts_do_not_give_the_frames_expected(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", seconds=2, audio=False)
    with pytest.raises(segments.SegmentError, match="gave 20 frames, not the 25 expected"):
        segments.join([clip], tmp_path / "joined.mp4", 10.0, 25, None)
    with pytest.raises(segments.SegmentError, match="cannot join"):
        segments.join([tmp_path / "missing.mp4"], tmp_path / "joined2.mp4", 10.0, 20, None)


@needs_ffmpeg
def test_split_says_when_a_cut_gives_other_packets_than_planned(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", seconds=3, audio=False)
    with pytest.raises(segments.SegmentError, match="not the 15 planned"):
        segments.split(clip, [(0, 15), (15, 15)], tmp_path)      # 15 is no key frame: the cut falls at 20


# ----- manifest -----------------------------------------------------------------------------------

def test_the_manifest_key_follows_the_input_content_and_every_setting(tmp_path):
    data = tmp_path / "in.mp4"
    data.write_bytes(b"video bytes")
    run = RunConfig(engine=EngineConfig(styles=("wave",)), sources=(str(data),))
    base = manifest.settings_digest(settings_of(run, ["model-a"]))
    key = manifest.work_key(manifest.file_digest(data), base)
    changed = [
        settings_of(RunConfig(engine=EngineConfig(styles=("wave",), strength=0.5)), ["model-a"]),
        settings_of(RunConfig(engine=EngineConfig(styles=("muse",))), ["model-a"]),
        settings_of(RunConfig(engine=EngineConfig(styles=("wave",), size=320)), ["model-a"]),
        settings_of(RunConfig(engine=EngineConfig(styles=("wave",)), stabilize=0.5), ["model-a"]),
        settings_of(run, ["model-b"]),                           # the same name, a retrained model file
    ]
    assert len({manifest.settings_digest(s) for s in changed} | {base}) == len(changed) + 1
    # the thread count and the weights folder's path do not change the output
    same = settings_of(RunConfig(engine=EngineConfig(styles=("wave",), threads=4, weights_dir="/else")), ["model-a"])
    assert manifest.settings_digest(same) == base
    data.write_bytes(b"video bytes, edited")
    assert manifest.work_key(manifest.file_digest(data), base) != key


def test_is_done_needs_the_key_and_the_file_as_recorded(tmp_path):
    out = tmp_path / "out" / "clip.mp4"
    out.parent.mkdir()
    assert not manifest.is_done(out, "k1")
    out.write_bytes(b"x" * 10)
    manifest.record(out, "k1", {"frames": 5})
    other = out.with_name("other.mp4")
    other.write_bytes(b"y")
    manifest.record(other, "k2")
    written = json.loads((out.parent / manifest.MANIFEST_NAME).read_text())
    assert written["files"]["clip.mp4"] == {"key": "k1", "size": 10, "frames": 5}
    assert set(written["files"]) == {"clip.mp4", "other.mp4"}
    assert manifest.is_done(out, "k1") and manifest.is_done(other, "k2")
    assert not manifest.is_done(out, "k2")                       # other settings or input
    out.write_bytes(b"x" * 9)                                    # changed (or half-copied) since
    assert not manifest.is_done(out, "k1")
    out.unlink()
    assert not manifest.is_done(out, "k1")
    (out.parent / manifest.MANIFEST_NAME).write_text("{not json")
    assert not manifest.is_done(other, "k2")                     # unreadable manifest: nothing is skipped
    assert [p.name for p in out.parent.iterdir() if ".partial" in p.name] == []


# ----- progress -----------------------------------------------------------------------------------

def test_the_board_keeps_the_latest_attempt_of_each_task():
    board = ProgressBoard()
    board.report("0/1", 0, 30)
    board.report("2", 0, 5)
    board.report("0/1", 1, 4)        # retried after its worker died: counts again from 0
    board.report("0/1", 0, 31)       # a late report of the dead attempt is ignored
    assert board.snapshot() == {"0/1": 4, "2": 5}
    board.forget("2")
    assert board.snapshot() == {"0/1": 4}


def test_counting_stylizer_counts_frames_and_passes_everything_else_on():
    class Fake:
        providers = ["CPUExecutionProvider"]

        def __call__(self, frame):
            return frame + 1

        def stylize_batch(self, frames):
            return np.asarray(frames) + 2

    reports = []
    counting = CountingStylizer(Fake(), reports.append, every_s=0.0)
    frame = np.zeros((4, 6, 3), np.uint8)
    assert counting(frame)[0, 0, 0] == 1
    assert counting.stylize_batch(np.stack([frame] * 3)).shape == (3, 4, 6, 3)
    counting.flush()
    assert reports == [1, 4, 4] and counting.frames == 4
    assert counting.providers == ["CPUExecutionProvider"]


# ----- the worker, as a plain object ------------------------------------------------------------

@pytest.fixture
def weights(tmp_path) -> Path:
    return make_weights_dir(tmp_path / "weights")


def worker_config(weights: Path, **run) -> RunConfig:
    return RunConfig(engine=EngineConfig(styles=("wave",), device="cpu", weights_dir=str(weights)), **run)


@needs_ffmpeg
def test_the_worker_stylizes_a_video_given_as_bytes_and_reports_its_frames(tmp_path, weights):
    clip = make_clip(tmp_path / "clip.mp4", seconds=1.2, gop=5)
    worker = Worker(worker_config(weights), threads=1)
    ready = worker.ready()
    assert ready["error"] is None and ready["stylizer"]["chain"] == ["wave"]
    assert ready["model_digests"] == [manifest.file_digest(weights / "wave.lite.onnx")]
    board = ProgressBoard()
    result = worker.run(Task("0", str(clip), "video", ".mp4", ".mp4"), clip.read_bytes(), board)
    assert result["ok"] and result["summary"]["frames"] == 12 and result["summary"]["audio"]
    assert board.snapshot() == {"0": 12}
    out = tmp_path / "out.mp4"
    out.write_bytes(result["data"])
    frames = decoded(out)
    assert frames.shape == (12, 48, 64, 3)
    # what this machine makes of the same clip alone, bit for bit
    alone = tmp_path / "alone.mp4"
    runner.process_video(str(clip), alone, Stylizer.from_config(worker_config(weights).engine), progress=False)
    assert np.array_equal(frames, decoded(alone))


@needs_ffmpeg
def test_the_worker_hands_back_its_warnings_naming_the_input_as_given(tmp_path, weights):
    clip = tmp_path / "clip.mp4"
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=64x48:rate=10:duration=4", "-c:v", "libx264", "-g", "5", "-pix_fmt", "yuv420p",
                    "-movflags", "+faststart", str(clip)], check=True)
    data = clip.read_bytes()
    truncated = data[:len(data) // 2]                   # the index says 40 frames; half of them are there
    worker = Worker(worker_config(weights, workers=3), threads=1)
    assert worker.frames_in_flight == 3                 # --workers: frames in flight in each worker
    result = worker.run(Task("0", "/films/cut.mp4", "video", ".mp4", ".mp4"), truncated)
    assert result["ok"] and 0 < result["summary"]["frames"] < 40
    assert result["summary"]["frames_missing"] > 0
    [warning] = result["log"]
    assert warning.startswith("stylecam: warning: /films/cut.mp4: decoded only ") and "stylecam-worker-" not in warning


def test_the_worker_returns_an_unreadable_input_as_one_line_naming_it(tmp_path, weights):
    worker = Worker(worker_config(weights), threads=1)
    result = worker.run(Task("3", "/data/broken.mp4", "video", ".mp4", ".mp4"), b"not a video at all")
    assert not result["ok"] and result["error_kind"] == "source"
    assert "/data/broken.mp4" in result["error"] and "\n" not in result["error"]
    assert "stylecam-worker-" not in result["error"]             # no temporary path of the worker


def test_the_worker_keeps_a_bad_style_for_ready_to_say(weights):
    worker = Worker(RunConfig(engine=EngineConfig(styles=("nosuch",), device="cpu", weights_dir=str(weights))))
    ready = worker.ready()
    assert "nosuch" in ready["error"] and ready["hint"]
    result = worker.run(Task("0", "x.png", "image", ".png", ".png"), b"")
    assert not result["ok"] and result["error_kind"] == "user"


def test_a_task_retried_keeps_its_id_and_counts_its_attempts():
    task = Task("2/1", "clip.mp4", "video", ".mp4", ".mp4", 20)
    assert task.retried().retried() == Task("2/1", "clip.mp4", "video", ".mp4", ".mp4", 20, attempt=2)


# ----- flags --------------------------------------------------------------------------------------

@pytest.mark.parametrize("address", ["local", "auto", "10.0.0.5:6379", "head:6379", "ray://head:10001"])
def test_addresses_that_read_as_one(address):
    assert check_address(address) == address


@pytest.mark.parametrize("address", ["head", "head:port", ":6379"])
def test_other_addresses_are_a_user_error_with_a_hint(address):
    with pytest.raises(UserError, match="not a cluster address") as err:
        check_address(address)
    assert "HOST:PORT" in err.value.hint


def test_an_input_right_after_cluster_is_an_input(tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    args = cli.build_parser().parse_args(["--cluster", str(clip), "-o", "out/"])
    assert options._address_or_source(args) == ("local", (str(clip),))
    args = cli.build_parser().parse_args([str(clip), "--cluster", "head:6379", "--cluster-workers", "3"])
    assert options._address_or_source(args) == ("head:6379", (str(clip),))
    assert args.cluster_workers == 3 and args.segment_frames == options.SEGMENT_FRAMES
    assert cli.build_parser().parse_args([str(clip)]).cluster is None


def test_without_ray_cluster_is_one_line_with_the_install_hint(tmp_path, capsys, monkeypatch, weights):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    monkeypatch.setattr(options, "_address_or_source", lambda args: ("local", tuple(args.sources)))
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    code = cli.main([str(image), "--cluster", "--weights-dir", str(weights), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0] == "stylecam: error: --cluster needs Ray, which is not installed (pip install 'stylecam[cluster]' (Ray))"
    assert not (tmp_path / "a_stylised.png").exists()


@pytest.mark.parametrize("argv, message", [
    (["--save-steps"], "--save-steps is not available with --cluster"),
    (["--size", "auto"], "--size auto and --virtual-camera are for the camera"),
])
def test_what_a_cluster_run_cannot_do_is_said_before_it_starts(tmp_path, capsys, weights, argv, message):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    code = cli.main([str(image), *argv, "--cluster", "--weights-dir", str(weights)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0]


def test_info_says_whether_ray_is_installed(capsys, monkeypatch):
    monkeypatch.setattr("stylecam.cluster.connect.ray_version", lambda: None)
    assert cli.main(["info", "--no-cameras"]) == 0
    out = capsys.readouterr().out
    assert "cluster: Ray not installed (pip install 'stylecam[cluster]' (Ray))" in out
    monkeypatch.setattr("stylecam.cluster.connect.ray_version", lambda: "2.60.0")
    assert cli.main(["info", "--no-cameras", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cluster"] == {"ray": "2.60.0"}
