"""Sources, sinks and loops: video with audio, interrupted writes, folders, cameras (fakes), keys."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from stylecam import live, runner, sinks, sources
from stylecam import overlay as overlay_module
from stylecam.config import EngineConfig, RunConfig
from stylecam.errors import UserError
from stylecam.pipeline import Stylizer
from stylecam.sources import CameraSource, SourceError, VideoFileSource, expand_sources, prefetch
from tests.onnx_fakes import make_classifier_model, make_weights_dir

FFMPEG = sinks.ffmpeg_exe()
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="no ffmpeg binary")


@pytest.fixture
def weights(tmp_path):
    return make_weights_dir(tmp_path / "weights")


def make_clip(path: Path, frames: int = 12, size: str = "64x48", audio: bool = True) -> Path:
    """A short H.264 clip (testsrc pattern, 10 fps) with an optional 440 Hz AAC track."""
    cmd = [FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
           "-i", f"testsrc=size={size}:rate=10:duration={frames / 10}"]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={frames / 10}", "-c:a", "aac"]
    cmd += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-frames:v", str(frames), str(path)]
    subprocess.run(cmd, check=True)
    return path


def count_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def engine(weights, *styles, **kw) -> EngineConfig:
    return EngineConfig(styles=tuple(styles or ("wave",)), weights_dir=str(weights), device="cpu", **kw)


def interrupt_at_call(monkeypatch, n: int, error: BaseException | None = None) -> None:
    """``error`` (default: Ctrl-C, a KeyboardInterrupt) raised by the n-th call of
    Stylizer.stylize_batch; the others run."""
    calls = {"n": 0}
    original = Stylizer.stylize_batch

    def flaky(self, frames):
        calls["n"] += 1
        if calls["n"] == n:
            raise error or KeyboardInterrupt()
        return original(self, frames)

    monkeypatch.setattr(Stylizer, "stylize_batch", flaky)


# ----- files -------------------------------------------------------------------------------

@needs_ffmpeg
def test_video_round_trip_keeps_every_frame_and_audio(tmp_path, weights):
    clip = make_clip(tmp_path / "clip.mp4", frames=12)
    assert sinks.probe_streams(clip) == ["video", "audio"]
    code, summary = runner.run(RunConfig(engine=engine(weights, "wave"), sources=(str(clip),), progress=False,
                                         batch=4))
    out = tmp_path / "clip_stylised.mp4"
    assert code == 0 and summary["done"][0]["output"] == str(out)
    assert sinks.has_audio(out)
    assert count_frames(out) == 12
    assert not list(tmp_path.glob(".*partial*"))
    # content: the first frame is the input's first frame + 10 (within codec error)
    src = next(iter(VideoFileSource(clip))).astype(int)
    got = next(iter(VideoFileSource(out))).astype(int)
    assert got.shape == src.shape
    assert abs((got - np.clip(src + 10, 0, 255)).mean()) < 3


@needs_ffmpeg
@pytest.mark.parametrize("workers", [1, 2])
def test_interrupted_write_leaves_a_playable_file(tmp_path, weights, monkeypatch, workers):
    clip = make_clip(tmp_path / "clip.mp4", frames=20)
    interrupt_at_call(monkeypatch, 8)
    out = tmp_path / "out" / "styled.mp4"
    code, summary = runner.run(RunConfig(engine=engine(weights), sources=(str(clip),), output=str(out),
                                         progress=False, workers=workers))
    assert code == 130
    done = summary["done"][-1]["frames"]
    assert summary["done"][-1]["interrupted"]
    # one worker: exactly the 7 frames before the interrupted call. Two: the calls of two neighbouring
    # frames can start in either order, so the 8th call is frame 7, 8 or 9, and the frame still in
    # flight on the other worker may be lost with it: 5 to 8 frames are written, in order.
    assert done == 7 if workers == 1 else 5 <= done <= 8
    assert out.is_file() and count_frames(out) == done
    assert not list(out.parent.glob(".*partial*"))


@needs_ffmpeg
def test_error_mid_video_removes_the_partial_file(tmp_path, weights, monkeypatch):
    clip = make_clip(tmp_path / "clip.mp4", frames=10, audio=False)
    calls = {"n": 0}
    original = Stylizer.stylize_batch

    def broken(self, frames):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("inference failed")
        return original(self, frames)

    monkeypatch.setattr(Stylizer, "stylize_batch", broken)
    out = tmp_path / "o" / "x.mp4"
    with pytest.raises(RuntimeError, match="inference failed"):
        runner.process_video(str(clip), out, Stylizer(["wave"], weights_dir=weights, device="cpu"), progress=False)
    assert not out.exists() and not list(out.parent.glob(".*partial*"))


def test_video_writer_without_ffmpeg_warns_and_writes_video_only(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("STYLECAM_NO_FFMPEG", "1")
    writer = sinks.VideoWriter(tmp_path / "v.mp4", 10, (32, 24), audio_from=None)
    for i in range(5):
        writer.write(np.full((24, 32, 3), 40 * i, np.uint8))
    assert writer.close() == tmp_path / "v.mp4"
    assert count_frames(tmp_path / "v.mp4") == 5
    assert "no ffmpeg found" in caplog.text


def gradient_frame(height: int, width: int) -> np.ndarray:
    """uint8 BGR (H, W, 3): blue rises left to right, green top to bottom, red constant 200."""
    ys, xs = np.mgrid[0:height, 0:width]
    return np.dstack([xs * 255 // (width - 1), ys * 255 // (height - 1),
                      np.full_like(xs, 200)]).astype(np.uint8)


def test_pad_to_even_repeats_the_last_row_and_column():
    frame = gradient_frame(5, 7)
    padded = sinks.pad_to_even(frame)
    assert padded.shape == (6, 8, 3)
    np.testing.assert_array_equal(padded[:5, :7], frame)
    np.testing.assert_array_equal(padded[5, :7], frame[4])
    np.testing.assert_array_equal(padded[:5, 7], frame[:, 6])
    assert sinks.pad_to_even(padded) is padded


@needs_ffmpeg
def test_odd_sized_video_gets_its_edge_repeated_not_a_black_line(tmp_path):
    frame = gradient_frame(25, 33)
    writer = sinks.VideoWriter(tmp_path / "odd.mp4", 10, (33, 25))
    for _ in range(3):
        writer.write(frame)
    writer.close()
    got = next(iter(VideoFileSource(tmp_path / "odd.mp4"))).astype(int)
    assert got.shape == (26, 34, 3)
    assert np.abs(got[:25, :33] - frame).mean() < 4
    # the added column and row repeat the frame's last ones (within codec error), not black
    assert np.abs(got[:25, 33] - frame[:, 32]).mean() < 6
    assert np.abs(got[25, :33] - frame[24]).mean() < 6


@needs_ffmpeg
def test_video_to_animated_gif_keeps_size_and_every_frame(tmp_path, weights):
    clip = tmp_path / "odd.mkv"  # FFV1 stores odd sizes exactly
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc=size=45x31:rate=10:duration=0.8", "-f", "lavfi", "-i", "sine=duration=0.8",
                    "-c:v", "ffv1", "-c:a", "pcm_s16le", str(clip)], check=True)
    out = tmp_path / "loop.gif"
    code, summary = runner.run(RunConfig(engine=engine(weights, "wave"), sources=(str(clip),), output=str(out),
                                         progress=False))
    assert code == 0 and summary["done"][0]["output"] == str(out) and not summary["done"][0]["audio"]
    assert count_frames(out) == 8 and sinks.probe_streams(out) == ["video"]
    src = next(iter(VideoFileSource(clip))).astype(int)
    got = next(iter(VideoFileSource(out))).astype(int)
    assert got.shape == src.shape == (31, 45, 3)
    assert np.abs(got - np.clip(src + 10, 0, 255)).mean() < 6  # the fake wave adds 10; palette error
    assert not list(tmp_path.glob(".*partial*"))


def test_gif_without_ffmpeg_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLECAM_NO_FFMPEG", "1")
    with pytest.raises(UserError, match="animated GIF.*needs ffmpeg.*imageio-ffmpeg"):
        sinks.VideoWriter(tmp_path / "a.gif", 10, (32, 24))


def test_outputs_that_cannot_be_created_are_user_errors(tmp_path, weights):
    blocker = tmp_path / "a_file"
    blocker.write_bytes(b"x")
    frame = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(UserError, match="cannot write .*a file is in the way"):
        sinks.write_image(blocker / "x.png", frame)
    with pytest.raises(UserError, match="cannot write .*a file is in the way"):
        sinks.VideoWriter(blocker / "x.mp4", 10, (8, 8))
    image = tmp_path / "in.png"
    cv2.imwrite(str(image), np.full((16, 16, 3), 100, np.uint8))
    with pytest.raises(UserError, match="choose an -o in a folder you can write to"):
        runner.run(RunConfig(engine=engine(weights), sources=(str(image),), output=str(blocker / "sub" / "o.png"),
                             progress=False))


def test_video_writer_with_no_frames_is_an_error(tmp_path):
    writer = sinks.VideoWriter(tmp_path / "empty.mp4", 10, (32, 24))
    with pytest.raises(UserError, match="no frames"):
        writer.close()
    assert not list(tmp_path.iterdir())


@needs_ffmpeg
def test_folder_of_mixed_files_skips_unreadable_and_exits_1(tmp_path, weights):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    cv2.imwrite(str(folder / "a.png"), np.full((10, 14, 3), 100, np.uint8))
    cv2.imwrite(str(folder / "sub" / "b.jpg"), np.full((9, 9, 3), 100, np.uint8))
    (folder / "broken.png").write_bytes(b"not a png")
    (folder / "broken.mp4").write_bytes(b"not a video")
    (folder / "notes.txt").write_text("ignored")
    make_clip(folder / "sub" / "clip.mp4", frames=5, audio=False)
    out = tmp_path / "out"
    code, summary = runner.run(RunConfig(engine=engine(weights, "wave", "muse"), sources=(str(folder),),
                                         output=str(out), progress=False))
    assert code == 1
    assert sorted(Path(f["input"]).name for f in summary["failed"]) == ["broken.mp4", "broken.png"]
    assert (cv2.imread(str(out / "a.png")) == 55).all()          # (100 + 10) * 0.5, mirrored names
    assert cv2.imread(str(out / "sub" / "b.jpg")).shape == (9, 9, 3)
    assert count_frames(out / "sub" / "clip.mp4") == 5


def test_image_default_output_and_save_steps(tmp_path, weights):
    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), np.full((7, 9, 3), 100, np.uint8))
    code, summary = runner.run(RunConfig(engine=engine(weights, "wave", "muse", repeat=2), sources=(str(image),),
                                         save_steps=True, progress=False))
    assert code == 0
    out = cv2.imread(str(tmp_path / "photo_stylised.png"))
    assert out.shape == (7, 9, 3) and (out == 32).all()
    steps = sorted(p.name for p in (tmp_path / "photo_stylised_steps").iterdir())
    assert steps == ["00_original.png", "01_wave.png", "02_muse.png", "03_wave.png", "04_muse.png"]
    assert cv2.imread(str(tmp_path / "photo_stylised_steps.png")) is not None
    assert len(summary["done"][0]["steps"]) == 5


def test_expand_sources_and_bad_inputs(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "b.txt").write_text("x")
    items, notes = expand_sources([str(tmp_path), "0", str(tmp_path / "*.png")])
    assert [i.kind for i in items] == ["image", "camera", "image"]
    assert any("b.txt" in n for n in notes)
    with pytest.raises(UserError, match="no such file"):
        expand_sources([str(tmp_path / "missing.mp4")])
    with pytest.raises(UserError, match="no files match"):
        expand_sources([str(tmp_path / "*.mov")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images or videos"):
        expand_sources([str(tmp_path / "empty")])
    with pytest.raises(SourceError):
        VideoFileSource(tmp_path / "b.txt")


def test_output_would_overwrite_input(tmp_path, weights):
    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(UserError, match="overwrite its input"):
        runner.run(RunConfig(engine=engine(weights), sources=(str(image),), output=str(image), progress=False))


def test_prefetch_keeps_order_and_raises_producer_errors():
    assert list(prefetch(iter(range(50)), maxsize=3)) == list(range(50))

    def bad():
        yield 1
        raise RuntimeError("decode failed")

    with pytest.raises(RuntimeError, match="decode failed"):
        list(prefetch(bad()))


# ----- cameras -----------------------------------------------------------------------------

class FakeCapture:
    """cv2.VideoCapture look-alike: ``frames`` frames of rising grey, then read() fails forever."""

    def __init__(self, frames: int = 5, opened: bool = True, size=(24, 32), delay: float = 0.004):
        self.left, self.opened, self.size, self.n, self.delay = frames, opened, size, 0, delay

    def isOpened(self):
        return self.opened

    def read(self):
        time.sleep(self.delay)  # a camera delivers at its own pace
        if self.left <= 0:
            return False, None
        self.left -= 1
        self.n += 1
        return True, np.full((*self.size, 3), (10 * self.n) % 256, np.uint8)

    def get(self, prop):
        return 10.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self):
        self.opened = False


def test_camera_yields_frames_then_stops_after_retrying():
    camera = CameraSource(0, opener=lambda i: FakeCapture(frames=3), retry_seconds=0.2)
    frames = []
    while (frame := camera.read(timeout=2.0)) is not None:
        frames.append(frame)
    camera.close()
    assert 1 <= len(frames) <= 3  # newest-frame policy: some may be replaced before being read
    assert frames[-1][0, 0, 0] == 30  # the last frame delivered is never lost
    assert "no frame for 0.2 s" in camera.failure


def test_camera_that_cannot_open_names_indices():
    def opener(i):
        return FakeCapture(opened=i in (2, 3))

    with pytest.raises(UserError) as err:
        CameraSource(0, opener=opener)
    assert "cannot open camera 0 (tried index 0)" in str(err.value)
    assert "cameras that open here: 2, 3" in str(err.value)
    with pytest.raises(UserError, match="no camera opened at indices 0..4"):
        CameraSource(1, opener=lambda i: FakeCapture(opened=False))



@pytest.mark.parametrize("platform, expected", [("darwin", "Privacy & Security > Camera"),
                                                ("win32", "allow desktop apps"), ("linux", "the video group"),
                                                ("freebsd13", None)])
def test_a_camera_that_cannot_open_gets_a_hint_for_its_system(platform, expected, monkeypatch):
    assert (sources.camera_access_hint(platform) == "") == (expected is None)
    if expected:
        assert expected in sources.camera_access_hint(platform)
    monkeypatch.setattr(sources.sys, "platform", platform)
    with pytest.raises(UserError) as err:
        CameraSource(0, opener=lambda i: FakeCapture(opened=False))
    assert (expected or "pass another index, or a video file instead") in err.value.hint


@needs_ffmpeg
def test_headless_camera_records_until_the_camera_stops(tmp_path, weights):
    out = tmp_path / "live.mp4"
    config = RunConfig(engine=engine(weights), sources=("0",), output=str(out), window=False, progress=False)
    frames_sent = 6

    code, summary = runner.run(config, camera_opener=lambda i: FakeCapture(frames=frames_sent, delay=0.01),
                               camera_retry_s=0.2)
    assert code == 0 and summary["recordings"] == [str(out)]
    assert "no frame" in summary["stopped"]
    n = count_frames(out)
    assert 1 <= summary["frames"] <= frames_sent and n >= summary["frames"]  # frames held in real time


def test_camera_with_no_window_needs_output(weights):
    with pytest.raises(UserError, match="needs -o"):
        runner.run(RunConfig(engine=engine(weights), sources=("0",), window=False))


@needs_ffmpeg
def test_live_interrupt_finalises_the_recording(tmp_path, weights, monkeypatch):
    camera = CameraSource(0, opener=lambda i: FakeCapture(frames=1000), retry_seconds=0.2)
    stylizer = Stylizer(["wave"], weights_dir=weights, device="cpu")
    interrupt_at_call(monkeypatch, 5)
    state = live.initial_state(["wave"], ["muse", "wave"])
    summary = live.run_live(camera, stylizer, state, None, tmp_path / "rec.mp4", clock=lambda: 0.0)
    assert summary["interrupted"] and summary["frames"] == 4
    assert count_frames(tmp_path / "rec.mp4") == 4


class FakeWindow:
    """Plays back a list of keys, one per frame, and keeps what was shown."""

    def __init__(self, keys):
        self.keys, self.shown, self.closed, self.fullscreen = list(keys), [], False, []

    def show(self, frame, wait_ms=1):
        self.shown.append(frame)
        return self.keys.pop(0) if self.keys else -1

    def set_fullscreen(self, on):
        self.fullscreen.append((len(self.shown), on))

    def close(self):
        self.closed = True


@pytest.mark.parametrize("start, keys, expected", [
    (False, [-1, ord("f"), -1, ord("f"), ord("q")], [(2, True), (4, False)]),   # after the frame whose key it was
    (True, [ord("f"), ord("q")], [(0, True), (1, False)]),                       # --fullscreen: before the first frame
])
def test_live_f_key_and_fullscreen_flag_switch_the_window(weights, start, keys, expected):
    camera = CameraSource(0, opener=lambda i: FakeCapture(frames=100), retry_seconds=0.5)
    window = FakeWindow(keys)
    live.run_live(camera, Stylizer(["wave"], weights_dir=weights, device="cpu"),
                  live.initial_state(["wave"], ["wave"], fullscreen=start), window, None)
    assert window.fullscreen == expected and len(window.shown) == len(keys)


def test_fullscreen_without_a_window_is_ignored(weights):
    camera = CameraSource(0, opener=lambda i: FakeCapture(frames=100), retry_seconds=0.5)
    summary = live.run_live(camera, Stylizer(["wave"], weights_dir=weights, device="cpu"),
                            live.initial_state(["wave"], ["wave"], fullscreen=True), None, None, max_frames=3)
    assert summary["frames"] == 3 and summary["stopped"] == "max frames"


@needs_ffmpeg
def test_live_loop_with_keys_snapshot_and_recording(tmp_path, weights, monkeypatch):
    monkeypatch.chdir(tmp_path)
    camera = CameraSource(0, opener=lambda i: FakeCapture(frames=1000), retry_seconds=0.5)
    stylizer = Stylizer(["wave"], weights_dir=weights, device="cpu")
    state = live.initial_state(["wave"], ["muse", "wave"])
    keys = [ord("n"), ord("s"), ord("r"), -1, -1, ord("r"), ord("o"), ord("q")]
    window = FakeWindow(keys)
    summary = live.run_live(camera, stylizer, state, window, None, snapshot_dir=tmp_path, clock=lambda: 0.0)
    assert window.closed and len(window.shown) == len(keys)
    assert summary["stopped"] == "quit" and len(summary["snapshots"]) == 1
    assert len(summary["recordings"]) == 1 and count_frames(Path(summary["recordings"][0])) == 3
    assert stylizer.chain == ["muse"]  # 'n': from wave (2nd of muse, wave) to muse
    assert window.shown[-1].shape[1] == 2 * 32  # 'o' = original side by side


class SizedCapture(FakeCapture):
    """A driver that honours a size asked through set() only when ``obeys``; records what was set."""

    def __init__(self, obeys: bool, **kw):
        super().__init__(**kw)
        self.obeys, self.props, self.order = obeys, {}, []

    def set(self, prop, value):
        self.props[prop] = value
        self.order.append(prop)
        return True

    def read(self):
        if self.obeys and self.props:
            self.size = (int(self.props[cv2.CAP_PROP_FRAME_HEIGHT]), int(self.props[cv2.CAP_PROP_FRAME_WIDTH]))
        return super().read()


@pytest.mark.parametrize("obeys", [True, False])
def test_camera_size_is_asked_of_the_driver_and_a_refusal_is_said(obeys, caplog):
    capture = SizedCapture(obeys, frames=3)
    with caplog.at_level("WARNING", logger="stylecam"):
        camera = CameraSource(0, opener=lambda i: capture, retry_seconds=0.1, size=(64, 40))
        frame = camera.read(timeout=2.0)
        camera.close()
    assert capture.props == {cv2.CAP_PROP_FRAME_WIDTH: 64, cv2.CAP_PROP_FRAME_HEIGHT: 40}
    assert frame.shape == ((40, 64, 3) if obeys else (24, 32, 3))
    warned = [r.getMessage() for r in caplog.records if "asked for" in r.getMessage()]
    assert warned == ([] if obeys else ["WARNING: camera 0 gives 32x24 frames, not the 64x40 asked for; using 32x24"])


@needs_ffmpeg
def test_run_asks_the_camera_for_camera_size(tmp_path, weights):
    capture = SizedCapture(True, frames=100)
    config = RunConfig(engine=engine(weights), sources=("0",), output=str(tmp_path / "live.mp4"), window=False,
                       progress=False, max_frames=2, camera_size=(64, 40), camera_fps=24.0, camera_format="YUYV")
    code, summary = runner.run(config, camera_opener=lambda i: capture)
    assert code == 0 and summary["frames"] == 2
    assert capture.props[cv2.CAP_PROP_FPS] == 24.0 and capture.props[cv2.CAP_PROP_FOURCC] == cv2.VideoWriter_fourcc(*"YUYV")
    cap = cv2.VideoCapture(str(tmp_path / "live.mp4"))
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.shape == (40, 64, 3)


def test_camera_fps_and_pixel_format_are_asked_of_the_driver_format_first():
    capture = SizedCapture(True, frames=3)
    camera = CameraSource(0, opener=lambda i: capture, retry_seconds=0.1, size=(64, 40), fps=15.0, fourcc="MJPG")
    camera.close()
    assert capture.props[cv2.CAP_PROP_FOURCC] == cv2.VideoWriter_fourcc(*"MJPG")
    assert capture.props[cv2.CAP_PROP_FPS] == 15.0
    assert capture.order == [cv2.CAP_PROP_FOURCC, cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT,
                             cv2.CAP_PROP_FPS]


def test_no_camera_size_leaves_the_driver_alone():
    capture = SizedCapture(True, frames=2)
    camera = CameraSource(0, opener=lambda i: capture, retry_seconds=0.1)
    assert camera.read(timeout=2.0).shape == (24, 32, 3)
    camera.close()
    assert capture.props == {}


def test_camera_frames_carry_their_capture_time():
    t0 = time.monotonic()
    camera = CameraSource(0, opener=lambda i: FakeCapture(frames=4, delay=0.01), retry_seconds=0.1)
    times = []
    while camera.read(timeout=2.0) is not None:
        times.append(camera.captured_at)
        assert camera.captured_at <= time.monotonic()
    camera.close()
    assert times and t0 < times[0] and times == sorted(times) and len(set(times)) == len(times)


class CountingCapture(FakeCapture):
    """Frame n (from 1) carries n: blue 10 (n mod 20), green 10 (n div 20)."""

    def read(self):
        ok, frame = super().read()
        if ok:
            frame[..., 0], frame[..., 1] = 10 * (self.n % 20), 10 * (self.n // 20)
        return ok, frame


def _frame_index(pixel) -> tuple[int, str]:
    """A BGR pixel of CountingCapture's frame n after wave (+10) or muse (+3): (n, style)."""
    shift = 10 if int(pixel[0]) % 10 == 0 else 3
    blue, green = (int(v) - shift for v in pixel[:2])
    return 20 * green // 10 + blue // 10, "wave" if shift == 10 else "muse"


@pytest.mark.parametrize("workers", [1, 2])
def test_live_frames_in_flight_are_shown_in_order_with_the_style_they_were_read_under(tmp_path, workers,
                                                                                      monkeypatch):
    weights = make_weights_dir(tmp_path / "w", {"wave": {"effect": "shift", "amount": 10.0},
                                                "muse": {"effect": "shift", "amount": 3.0}})
    original, chains, running, most = Stylizer.stylize_batch, [], [0], [0]
    lock = threading.Lock()

    def slow(self, frames):   # a chain changed under a running frame would show up as two chains
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        before = self.specs
        time.sleep(0.05)
        out = original(self, frames)
        chains.append((before, self.specs))
        with lock:
            running[0] -= 1
        return out

    monkeypatch.setattr(Stylizer, "stylize_batch", slow)
    camera = CameraSource(0, opener=lambda i: CountingCapture(frames=2000, delay=0.005, size=(48, 64)))
    stylizer = Stylizer(["wave"], weights_dir=weights, device="cpu")
    window = FakeWindow([-1, ord("n"), -1, -1, -1, -1, ord("q")])
    summary = live.run_live(camera, stylizer, live.initial_state(["wave"], ["muse", "wave"]), window, None,
                            workers=workers)
    shown = [_frame_index(f[-1, -1]) for f in window.shown]
    assert len(shown) == 7 and summary["frames"] == 7 and summary["workers"] == workers
    indices = [n for n, _ in shown]
    assert indices == sorted(set(indices))              # camera order, no frame twice
    # 'n' came with the 2nd frame shown; a frame in flight then (at most workers - 1) keeps wave
    styles = [style for _, style in shown]
    waves = styles.count("wave")
    assert 2 <= waves <= 1 + workers and styles == ["wave"] * waves + ["muse"] * (7 - waves)
    assert all(before == after for before, after in chains) and len(chains) >= 7
    assert most[0] == workers                           # that many frames really stylised at once
    assert summary["fps"] > 0 and 0 < summary["latency_ms"]["median"] <= summary["latency_ms"]["p90"] < 5000


@needs_ffmpeg
def test_live_with_two_workers_records_exactly_max_frames(tmp_path, weights):
    camera = CameraSource(0, opener=lambda i: FakeCapture(frames=1000), retry_seconds=0.5)
    stylizer = Stylizer(["wave"], weights_dir=weights, device="cpu", threads=1)
    summary = live.run_live(camera, stylizer, live.initial_state(["wave"], ["wave"]), None, tmp_path / "rec.mp4",
                            max_frames=6, workers=2, clock=lambda: 0.0)
    assert summary["stopped"] == "max frames" and summary["frames"] == 6 and summary["workers"] == 2
    assert count_frames(tmp_path / "rec.mp4") == 6


@needs_ffmpeg
def test_live_interrupt_with_frames_in_flight_finalises_the_recording(tmp_path, weights, monkeypatch):
    camera = CameraSource(0, opener=lambda i: FakeCapture(frames=1000), retry_seconds=0.2)
    stylizer = Stylizer(["wave"], weights_dir=weights, device="cpu", threads=1)
    interrupt_at_call(monkeypatch, 5)
    summary = live.run_live(camera, stylizer, live.initial_state(["wave"], ["wave"]), None, tmp_path / "rec.mp4",
                            clock=lambda: 0.0, workers=2)
    assert summary["interrupted"] and 3 <= summary["frames"] <= 5   # the 5th call may be the 4th or 6th frame's
    assert count_frames(tmp_path / "rec.mp4") == summary["frames"]


@needs_ffmpeg
@pytest.mark.parametrize("asked, expected", [(None, (2, 1)), (1, (1, None))])
def test_the_camera_plans_two_single_threaded_workers_on_two_cores(tmp_path, weights, monkeypatch, asked, expected):
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 2)
    config = RunConfig(engine=engine(weights), sources=("0",), output=str(tmp_path / "live.mp4"), window=False,
                       progress=False, workers=asked, max_frames=4)
    code, summary = runner.run(config, camera_opener=lambda i: FakeCapture(frames=100, delay=0.01))
    assert code == 0 and summary["frames"] == 4 and summary["stopped"] == "max frames"
    assert (summary["workers"], summary["stylecam"]["threads"]) == expected == \
        (summary["stylecam"]["workers"], summary["stylecam"]["threads"])


def fake_pyvirtualcam(monkeypatch, fail: str | None = None) -> tuple[list, list]:
    """Installs a stand-in pyvirtualcam; returns (frames sent, cameras opened)."""
    sent, opened = [], []

    class Camera:
        def __init__(self, width, height, fps, fmt=None, device=None):
            if fail:
                raise RuntimeError(fail)
            self.width, self.height, self.fps, self.fmt = width, height, fps, fmt
            self.device, self.closed = device or "/dev/video7", False
            opened.append(self)

        def send(self, frame):
            assert frame.shape == (self.height, self.width, 3) and frame.dtype == np.uint8
            sent.append(frame.copy())

        def close(self):
            self.closed = True

    module = types.ModuleType("pyvirtualcam")
    module.Camera, module.PixelFormat = Camera, types.SimpleNamespace(BGR="bgr")
    monkeypatch.setitem(sys.modules, "pyvirtualcam", module)
    return sent, opened


def test_virtual_camera_opens_at_the_first_frame_size_and_letterboxes_later_ones(monkeypatch):
    sent, opened = fake_pyvirtualcam(monkeypatch)
    virtual = sinks.VirtualCamera(fps=25.0)
    virtual.send(np.full((48, 64, 3), 200, np.uint8))
    virtual.send(np.full((48, 128, 3), 100, np.uint8))          # e.g. original | stylised side by side
    virtual.close()
    (camera,) = opened
    assert (camera.width, camera.height, camera.fps, camera.fmt, camera.closed) == (64, 48, 25.0, "bgr", True)
    assert [f.shape for f in sent] == [(48, 64, 3), (48, 64, 3)] and virtual.frames == 2
    assert sent[1][0, 0, 0] == 0 and sent[1][24, 32, 0] == 100     # bars above and below, the frame between


def test_virtual_camera_without_the_package_or_a_device_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)
    with pytest.raises(UserError, match="needs the pyvirtualcam package") as err:
        sinks.VirtualCamera()
    assert "pip install pyvirtualcam" in err.value.hint
    fake_pyvirtualcam(monkeypatch, fail="No v4l2 loopback device found at /dev/video[0-99]")
    virtual = sinks.VirtualCamera()
    with pytest.raises(UserError, match="cannot start the virtual camera: No v4l2 loopback device") as err:
        virtual.send(np.zeros((48, 64, 3), np.uint8))
    assert "modprobe v4l2loopback" in err.value.hint


def test_camera_to_a_virtual_camera_without_a_window_or_a_file(monkeypatch, weights):
    sent, opened = fake_pyvirtualcam(monkeypatch)
    config = RunConfig(engine=engine(weights), sources=("0",), window=False, progress=False, max_frames=4,
                       virtual_camera=True, virtual_camera_device="/dev/video3")
    code, summary = runner.run(config, camera_opener=lambda i: FakeCapture(frames=20, delay=0.01))
    assert code == 0 and summary["frames"] == 4 and summary["virtual_camera"] == "/dev/video3"
    assert opened[0].closed and opened[0].fps == 10.0                 # the camera's rate
    assert len(sent) == 4 and all(f.shape == (24, 32, 3) for f in sent)
    grey = [int(f[0, 0, 0]) for f in sent]                             # FakeCapture grey 10 n, wave +10: no HUD
    assert all(g % 10 == 0 for g in grey) and grey == sorted(grey)


def test_virtual_camera_rounds_odd_sizes_up_to_even(monkeypatch):
    sent, opened = fake_pyvirtualcam(monkeypatch)
    virtual = sinks.VirtualCamera()
    odd = np.arange(47 * 63 * 3, dtype=np.uint32).reshape(47, 63, 3).astype(np.uint8)
    virtual.send(odd)
    virtual.send(np.zeros((48, 64, 3), np.uint8))
    assert (opened[0].width, opened[0].height) == (64, 48)
    assert np.array_equal(sent[0][:47, :63], odd) and np.array_equal(sent[0][47, :63], odd[46])  # last row repeated
    assert not sent[1].any()                                                                     # no letterbox


def test_a_missing_pyvirtualcam_is_said_before_the_camera_opens(monkeypatch, weights):
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)

    def opener(index):
        raise AssertionError("the camera was opened")

    config = RunConfig(engine=engine(weights), sources=("0",), window=False, virtual_camera=True, progress=False)
    with pytest.raises(UserError, match="needs the pyvirtualcam package"):
        runner.run(config, camera_opener=opener)


def test_the_camera_is_released_when_the_window_cannot_open(monkeypatch, weights):
    capture = FakeCapture(frames=100)

    def no_window():
        raise UserError("cannot open a window: no display (DISPLAY is not set)")

    monkeypatch.setattr(runner, "Window", no_window)
    with pytest.raises(UserError, match="cannot open a window"):
        runner.run(RunConfig(engine=engine(weights), sources=("0",), progress=False), camera_opener=lambda i: capture)
    assert not capture.opened                        # released


def test_run_live_closes_the_virtual_camera_when_stylising_fails(monkeypatch, weights):
    sent, opened = fake_pyvirtualcam(monkeypatch)
    interrupt_at_call(monkeypatch, 3, ValueError("broken model"))
    camera = CameraSource(0, opener=lambda i: FakeCapture(frames=100), retry_seconds=0.5)
    with pytest.raises(ValueError, match="broken model"):
        live.run_live(camera, Stylizer(["wave"], weights_dir=weights, device="cpu"),
                      live.initial_state(["wave"], ["wave"]), None, None, virtual_camera=sinks.VirtualCamera())
    assert len(sent) == 2 and opened[0].closed


def test_virtual_camera_is_for_the_camera_only(weights, tmp_path):
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(UserError, match="--virtual-camera sends the live camera"):
        runner.run(RunConfig(engine=engine(weights), sources=(str(photo),), virtual_camera=True, progress=False))


class GradientCapture(FakeCapture):
    """Frames that grow brighter from left to right, so a left-right flip shows."""

    def read(self):
        ok, frame = super().read()
        if ok:
            frame = np.broadcast_to(np.linspace(0, 200, frame.shape[1], dtype=np.uint8)[None, :, None],
                                    frame.shape).copy()
        return ok, frame


def test_live_mirror_flips_the_camera_frames_and_m_toggles_it(weights):
    rising = lambda shown: int(shown[-8:, -1, 0].mean()) > int(shown[-8:, 0, 0].mean())  # below the HUD
    stylizer = Stylizer(["wave"], weights_dir=weights, device="cpu")
    for mirror, keys, expect in [(False, [-1, ord("m"), -1, ord("q")], [True, True, False, False]),
                                 (True, [ord("m"), -1, ord("q")], [False, True, True])]:
        camera = CameraSource(0, opener=lambda i: GradientCapture(frames=100, size=(64, 96)), retry_seconds=0.5)
        window = FakeWindow(keys)
        live.run_live(camera, stylizer, live.initial_state(["wave"], ["wave"], mirror=mirror), window, None)
        assert [rising(shown) for shown in window.shown] == expect


# ----- live: slow cameras, odd frames, real-time recordings, names --------------------------

class WarmingUpCapture(FakeCapture):
    """A webcam that reports failure for its first ``warmup`` seconds, then delivers."""

    def __init__(self, warmup: float, **kw):
        super().__init__(**kw)
        self.ready_at = time.monotonic() + warmup

    def read(self):
        if time.monotonic() < self.ready_at:
            time.sleep(self.delay)
            return False, None
        return super().read()


def test_a_camera_that_takes_time_to_start_is_waited_for():
    camera = CameraSource(0, opener=lambda i: WarmingUpCapture(0.3, frames=3), retry_seconds=0.05)
    frames = []
    while (frame := camera.read(timeout=2.0)) is not None:
        frames.append(frame)
    camera.close()
    assert frames and frames[-1][0, 0, 0] == 30          # failing at first is not the end
    assert "no frame for 0.05 s" in camera.failure        # failing after frames is, after retry_seconds


def test_a_camera_that_never_delivers_gives_up_after_the_first_frame_wait():
    t0 = time.monotonic()
    camera = CameraSource(0, opener=lambda i: FakeCapture(frames=0), retry_seconds=0.05, first_frame_seconds=0.3)
    assert camera.read() is None and camera.ended
    camera.close()
    assert 0.3 <= time.monotonic() - t0 < 2.0
    assert camera.failure == "camera 0 delivered no frame in 0.3 s after opening"


class VirtualSlowCamera:
    """A CameraSource stand-in whose frames take ``seconds`` each to arrive, in virtual time: read(timeout)
    gives the frame only when it may wait that long (None = as long as it takes)."""

    def __init__(self, seconds: float, frames: int, retry_seconds: float = 3.0):
        self.seconds, self.left, self.retry_seconds = seconds, frames, retry_seconds
        self.index, self.fps, self.dropped, self.failure, self.timeouts = 0, 10.0, 0, None, []

    def read(self, timeout=None):
        self.timeouts.append(timeout)
        if self.left == 0 or (timeout is not None and timeout < self.seconds):
            self.failure = self.failure or "gave up"
            return None
        self.left -= 1
        return np.full((24, 32, 3), 50, np.uint8)

    def close(self):
        pass


def test_live_loop_waits_for_frames_that_come_slowly(weights):
    # /tmp/qa4 slow_default: a frame every 4.5 s with the default 3 s retry counted as a stopped camera
    camera = VirtualSlowCamera(4.5, frames=3)
    stylizer = Stylizer(["wave"], weights_dir=weights, device="cpu")
    summary = live.run_live(camera, stylizer, live.initial_state(["wave"], ["wave"]), None, None)
    assert summary["frames"] == 3 and camera.left == 0


class BlockedCapture(FakeCapture):
    """A driver whose read() never answers (until ``release`` is set)."""

    def __init__(self):
        super().__init__()
        self.release_event = threading.Event()

    def read(self):
        self.release_event.wait()
        return False, None


def test_a_driver_that_does_not_answer_gives_up_after_stall_seconds():
    cap = BlockedCapture()
    camera = CameraSource(0, opener=lambda i: cap, retry_seconds=0.05, first_frame_seconds=0.1, stall_seconds=0.3)
    unblock = threading.Timer(3.0, cap.release_event.set)   # a test never hangs, even when this one fails
    unblock.start()
    t0 = time.monotonic()
    try:
        assert camera.read() is None
        assert 0.25 <= time.monotonic() - t0 < 1.5
        assert camera.failure == "camera 0 delivered no frame for 0.3 s (its driver does not answer)"
    finally:
        cap.release_event.set()
        unblock.cancel()
        camera.close()


class ShapedCapture(FakeCapture):
    """Frames made by ``make(n)`` (grey, BGRA, ...) instead of BGR."""

    def __init__(self, make, **kw):
        super().__init__(**kw)
        self.make = make

    def read(self):
        ok, frame = super().read()
        return (ok, self.make(frame)) if ok else (ok, frame)


@pytest.mark.parametrize("make, expect", [
    (lambda f: f[..., 0].copy(), (10, 10, 10)),                                          # grey (H, W)
    (lambda f: f[..., :1].copy(), (10, 10, 10)),                                         # grey (H, W, 1)
    (lambda f: np.dstack([f[..., :1], f[..., :1] + 1, f[..., :1] + 2, f[..., :1] * 0]), (10, 11, 12)),  # BGRA
    (lambda f: f.astype(np.uint16) * 257, (10, 10, 10)),                                 # 16-bit BGR
])
def test_camera_frames_are_always_uint8_bgr(make, expect):
    camera = CameraSource(0, opener=lambda i: ShapedCapture(make, frames=1), retry_seconds=0.05)
    frame = camera.read(timeout=2.0)
    camera.close()
    assert frame.shape == (24, 32, 3) and frame.dtype == np.uint8 and tuple(frame[0, 0]) == expect


def test_camera_bgr_refuses_what_is_not_an_image():
    with pytest.raises(ValueError, match="not an image"):
        sources.camera_bgr(np.zeros((1000,), np.uint8))          # an undecoded buffer
    with pytest.raises(ValueError, match="not an image"):
        sources.camera_bgr(np.zeros((4, 4, 2), np.uint8))


class ExplodingCapture(FakeCapture):
    def read(self):
        if self.left <= 0:
            raise RuntimeError("driver exploded")
        return super().read()


@needs_ffmpeg
def test_live_run_with_a_grey_camera_records_and_a_driver_error_is_the_stop_reason(tmp_path, weights):
    out = tmp_path / "grey.mp4"
    config = RunConfig(engine=engine(weights), sources=("0",), output=str(out), window=False, progress=False)

    class GreyExploding(ExplodingCapture):
        def read(self):
            ok, frame = super().read()
            return ok, (frame[..., 0].copy() if ok else frame)

    code, summary = runner.run(config, camera_opener=lambda i: GreyExploding(frames=3), camera_retry_s=0.05)
    assert code == 0 and summary["frames"] >= 1 and summary["recordings"] == [str(out)]
    assert summary["stopped"] == "camera 0: driver exploded"


def test_a_camera_that_delivers_nothing_with_o_exits_1_and_records_nothing(tmp_path, weights, caplog):
    out = tmp_path / "none.mp4"
    config = RunConfig(engine=engine(weights), sources=("0",), output=str(out), window=False, progress=False)
    code, summary = runner.run(config, camera_opener=lambda i: FakeCapture(frames=0), camera_retry_s=0.05,
                               camera_first_frame_s=0.2)
    assert code == 1 and summary["frames"] == 0 and summary["recordings"] == []
    assert not out.exists() and not list(tmp_path.glob(".*partial*"))
    assert "camera 0 delivered no frame; nothing recorded" in caplog.text


def test_real_time_pacer_holds_frames_for_the_time_they_cover():
    now = [0.0]
    pacer = live.RealTimePacer(30.0, clock=lambda: now[0])
    held = []
    for t in (0.0, 0.1, 0.2, 0.25, 0.26, 0.5):
        now[0] = t
        held.append(pacer.copies())
    # 0.1 s = 3 ticks; 0.05 s = 1.5 ticks: 1 now, the half carried; 0.01 s: still 1; then 7.2 ticks
    assert held == [1, 3, 3, 1, 1, 7]
    pacer.restart()
    now[0] = 10.0
    assert pacer.copies() == 1


class ClockWindow(FakeWindow):
    """A FakeWindow on which every shown frame takes ``step`` seconds of a virtual clock."""

    def __init__(self, keys, step: float):
        super().__init__(keys)
        self.now, self.step = 0.0, step

    def show(self, frame, wait_ms=1):
        self.now += self.step
        return super().show(frame, wait_ms)


@needs_ffmpeg
def test_recording_plays_in_real_time_without_the_paused_time(tmp_path, weights):
    # the camera says 10 fps, but a frame is stylised every 0.3 s: each is held 3 frames
    camera = CameraSource(0, opener=lambda i: FakeCapture(frames=1000), retry_seconds=0.5)
    stylizer = Stylizer(["wave"], weights_dir=weights, device="cpu")
    state = dataclasses.replace(live.initial_state(["wave"], ["wave"]), recording=True)
    window = ClockWindow([-1, -1, ord(" "), -1, -1, ord(" "), -1, ord("q")], step=0.3)
    summary = live.run_live(camera, stylizer, state, window, tmp_path / "rec.mp4", clock=lambda: window.now)
    assert summary["recordings"] == [str(tmp_path / "rec.mp4")]
    # written at 0.0, 0.3, 0.6 (1 + 3 + 3), paused from 0.9 to 1.5, then 1.8, 2.1 (1 + 3)
    assert count_frames(tmp_path / "rec.mp4") == 11


def test_unique_path_adds_a_counter_for_names_that_exist_or_were_given(tmp_path):
    (tmp_path / "a.gif").write_bytes(b"")
    taken: set[str] = set()
    assert live.unique_path(tmp_path / "a.gif", taken) == tmp_path / "a_2.gif"
    assert live.unique_path(tmp_path / "a.gif", taken) == tmp_path / "a_3.gif"     # a_2 is being written
    assert live.unique_path(tmp_path / "b.png", taken) == tmp_path / "b.png"
    assert taken == {str(tmp_path / n) for n in ("a_2.gif", "a_3.gif", "b.png")}


@needs_ffmpeg
def test_recordings_and_snapshots_within_one_second_get_their_own_names(tmp_path, weights, monkeypatch):
    monkeypatch.setattr(live.time, "strftime", lambda fmt, *a: "20260101_120000")   # all in one second
    camera = CameraSource(0, opener=lambda i: FakeCapture(frames=1000), retry_seconds=0.5)
    stylizer = Stylizer(["wave"], weights_dir=weights, device="cpu")
    r, s = ord("r"), ord("s")
    window = FakeWindow([r, -1, r, r, -1, r, r, -1, r, s, s, ord("q")])
    summary = live.run_live(camera, stylizer, live.initial_state(["wave"], ["wave"]), window,
                              tmp_path / "keys.gif", snapshot_dir=tmp_path, clock=lambda: 0.0)
    recordings, snapshots = summary["recordings"], summary["snapshots"]
    assert recordings == [str(tmp_path / n) for n in ("keys.gif", "stylecam_20260101_120000.gif",
                                                     "stylecam_20260101_120000_2.gif")]   # -o's extension kept
    assert snapshots == [str(tmp_path / n) for n in ("stylecam_snapshot_20260101_120000.png",
                                                    "stylecam_snapshot_20260101_120000_2.png")]
    assert all(count_frames(Path(p)) == 2 for p in recordings) and all(Path(p).is_file() for p in snapshots)


@pytest.mark.parametrize("module, arg, expect", [("stylecam", "--version", "stylecam "),
                                                 ("trainer", "--help", "usage: stylecam-train")])
def test_python_dash_m_runs_the_commands(module, arg, expect):
    proc = subprocess.run([sys.executable, "-m", module, arg], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(expect)


# ----- keys (pure) -------------------------------------------------------------------------

def test_handle_key_state_machine():
    s = live.initial_state(["wave", "muse"], ["candy", "muse", "wave"], repeat=1)
    assert s.chain_on and s.active() == ("wave", "muse")
    s = live.handle_key(s, ord("c"))
    assert not s.chain_on and s.active() == ("wave",)
    s = live.handle_key(s, ord("n"))
    assert s.active() == ("candy",)  # wraps around
    s = live.handle_key(s, ord("p"))
    assert s.active() == ("wave",)
    s = live.handle_key(s, ord("2"))
    assert s.active() == ("muse",)
    assert live.handle_key(s, ord("9")) == s  # no 9th style: unchanged
    s = live.handle_key(live.handle_key(s, ord("+")), ord("="))
    assert s.repeat == 3
    for _ in range(5):
        s = live.handle_key(s, ord("-"))
    assert s.repeat == 1
    s = live.handle_key(live.handle_key(s, ord("[")), ord("["))
    assert s.strength == 0.8
    for _ in range(5):
        s = live.handle_key(s, ord("]"))
    assert s.strength == 1.0
    assert live.handle_key(s, ord("o")).show_original
    assert live.handle_key(s, ord("m")).mirror and not live.handle_key(live.handle_key(s, ord("m")), ord("m")).mirror
    assert live.handle_key(s, ord("f")).fullscreen and not live.handle_key(live.handle_key(s, ord("f")), ord("f")).fullscreen
    assert live.handle_key(s, ord(" ")).paused
    assert live.handle_key(s, ord("r")).recording
    snap = live.handle_key(s, ord("s"))
    assert snap.events == ("snapshot",) and live.handle_key(snap, -1).events == ()
    assert live.handle_key(s, ord("q")).quit and live.handle_key(s, 27).quit
    assert live.handle_key(s, -1) == s


def test_window_without_display_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    with pytest.raises(UserError, match="no display.*--no-window"):
        sinks.Window()


def test_output_names():
    from stylecam.sources import SourceItem
    video = SourceItem("video", "in/clip.avi")
    assert runner.output_for(video, None, False) == Path("in/clip_stylised.avi")
    assert runner.output_for(SourceItem("video", "a/b.gif"), None, False) == Path("a/b_stylised.gif")
    assert runner.output_for(SourceItem("video", "a/b.flv"), None, False) == Path("a/b_stylised.mp4")
    assert runner.output_for(video, "out.mp4", False) == Path("out.mp4")
    assert runner.output_for(video, "outdir", False) == Path("outdir/clip.avi")
    nested = SourceItem("image", "photos/x/y.jpg", root="photos")
    assert runner.output_for(nested, "styled", True) == Path("styled/x/y.jpg")
    assert runner.output_for(nested, "styled.v2", True) == Path("styled.v2/x/y.jpg")  # not a media name
    with pytest.raises(UserError, match="several inputs cannot all be written to one file"):
        runner.output_for(nested, "styled.png", True)
    assert runner.output_for(video, "still.png", False) == Path("still.png")  # refused by check_outputs


def test_output_formats_are_checked_before_any_work():
    from stylecam.sources import SourceItem
    image, video = SourceItem("image", "a.jpg"), SourceItem("video", "b.mp4")
    runner.check_outputs([(image, Path("a.webp")), (video, Path("b.mkv"))])
    for item, out, message in [(image, "a.xyz", "cannot write image a.jpg as .xyz"),
                               (image, "a", "as a file without extension"),
                               (image, "a.mp4", "cannot write image a.jpg to a video file"),
                               (video, "b.png", "cannot write video b.mp4 to an image file")]:
        with pytest.raises(UserError, match=message):
            runner.check_outputs([(item, Path(out))])


def test_hud_lines():
    lines = sinks.hud_lines(["wave", "muse"], 3, 29.5, ["CUDAExecutionProvider"], 12.34, strength=0.5)
    assert lines[0] == "wave > muse  x3" and "29.5 FPS" in lines[1] and "CUDA" in lines[1]
    assert lines[2] == "strength 0.5" and "latency" not in lines[1]
    lines = sinks.hud_lines(["wave"], 1, 30.0, ["CPUExecutionProvider"], 30.0, latency_ms=57.6, extra=["int8"])
    assert lines[1].endswith("CPU  latency 58 ms") and lines[2:] == ["int8"]


# ----- classifier overlay ------------------------------------------------------------------

def stub_classify_module():
    """Stands in for stylecam.classify: labels by the dominant BGR channel."""
    module = types.ModuleType("stylecam.classify")

    class Classifier:
        def top_k(self, frame, k=3):
            means = frame.reshape(-1, 3).mean(0)
            names = ["blue", "green", "red"]
            order = np.argsort(-means)[:k]
            return [(names[i], float(means[i] / max(1e-6, means.sum()))) for i in order]

    module.load_classifier = lambda path, device="auto": Classifier()
    module.overlay_labels = lambda frame, labels, title: cv2.putText(
        frame.copy(), f"{title}: {labels[0][0]}", (1, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (255, 255, 255))
    module.calls = []
    return module


def test_classify_overlay_side_by_side_with_stub(tmp_path, weights, monkeypatch):
    module = stub_classify_module()
    monkeypatch.setitem(sys.modules, "stylecam.classify", module)
    model = make_classifier_model(tmp_path / "clf.onnx")
    overlay = overlay_module.LabelOverlay(str(model))
    original = np.zeros((20, 30, 3), np.uint8)
    original[..., 2] = 200
    stylised = np.zeros((20, 30, 3), np.uint8)
    stylised[..., 0] = 200
    out = overlay.compose(original, stylised)
    assert out.shape == (20, 60, 3)
    image = tmp_path / "red.png"
    cv2.imwrite(str(image), original)
    code, summary = runner.run(RunConfig(engine=engine(weights), sources=(str(image),), classify=str(model),
                                         progress=False))
    assert code == 0 and cv2.imread(str(tmp_path / "red_stylised.png")).shape == (20, 60, 3)


def test_classify_missing_module_or_file(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "stylecam.classify", None)  # import fails
    with pytest.raises(UserError, match="--classify is not available"):
        overlay_module.LabelOverlay(str(tmp_path / "x.onnx"))
    monkeypatch.setitem(sys.modules, "stylecam.classify", stub_classify_module())
    with pytest.raises(UserError, match="classifier model not found"):
        overlay_module.LabelOverlay(str(tmp_path / "x.onnx"))


def test_classify_by_shipped_name(tmp_path, weights, monkeypatch):
    module = stub_classify_module()
    loaded = []
    module.load_classifier = lambda path, device="auto": loaded.append(path) or object()
    monkeypatch.setitem(sys.modules, "stylecam.classify", module)
    model = make_classifier_model(weights / "classifiers" / "colours.onnx")
    overlay_module.LabelOverlay("colours", weights_dir=str(weights))
    assert loaded == [str(model)]
    with pytest.raises(UserError, match="classifier model not found: colour .*shipped name: colours"):
        overlay_module.LabelOverlay("colour", weights_dir=str(weights))
    with pytest.raises(UserError, match="not found: colours.onnx"):  # a path is never looked up by name
        overlay_module.LabelOverlay("colours.onnx", weights_dir=str(weights))


def test_classify_with_the_real_module(tmp_path):
    from stylecam import classify
    model = make_classifier_model(tmp_path / "clf.onnx")
    overlay = overlay_module.LabelOverlay(str(model), device="cpu")
    red = np.zeros((32, 32, 3), np.uint8)
    red[..., 2] = 255
    assert isinstance(overlay.classifier, classify.Classifier)        # the real one, not a stand-in
    labels = overlay.classifier.top_k(red, k=3)
    assert labels[0][0] == "red" and len(labels) == 3 and labels[0][1] > labels[1][1]
    assert overlay.compose(red, red).shape == (32, 64, 3)


def test_transparency_of_images_is_kept_where_the_output_format_can_hold_it(tmp_path, weights):
    from stylecam.sources import read_alpha
    rgba = np.zeros((6, 10, 4), np.uint8)
    rgba[..., :3] = 100
    rgba[..., 3] = np.arange(10, dtype=np.uint8)[None, :] * 25  # a horizontal fade
    cv2.imwrite(str(tmp_path / "logo.png"), rgba)
    for name in ("logo_out.png", "logo_out.webp", "logo_out.jpg"):
        code, _ = runner.run(RunConfig(engine=engine(weights), sources=(str(tmp_path / "logo.png"),),
                                       output=str(tmp_path / name), progress=False))
        assert code == 0
        written = cv2.imread(str(tmp_path / name), cv2.IMREAD_UNCHANGED)
        if name.endswith(".jpg"):
            assert written.shape == (6, 10, 3)
            continue
        assert written.shape == (6, 10, 4)
        assert np.array_equal(written[..., 3], rgba[..., 3])
        assert (written[..., :3][rgba[..., 3] > 0] == 110).all()  # wave = +10 (WebP blanks fully clear pixels)
    runner.process_image(str(tmp_path / "logo.png"), tmp_path / "pair.png",
                         Stylizer(["wave"], weights_dir=weights, device="cpu"), show_original=True)
    assert cv2.imread(str(tmp_path / "pair.png"), cv2.IMREAD_UNCHANGED).shape == (6, 20, 3)  # side by side
    deep = np.full((4, 4, 4), 65535, np.uint16)
    deep[0, 0, 3] = 0
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    alpha = read_alpha(tmp_path / "deep.png")
    assert alpha.dtype == np.uint8 and alpha[0, 0] == 0 and alpha[1, 1] == 255
    cv2.imwrite(str(tmp_path / "opaque.png"), rgba[..., :3])
    assert read_alpha(tmp_path / "opaque.png") is None and read_alpha(tmp_path / "x.jpg") is None


class NoisyStillCapture(FakeCapture):
    """A still scene whose pixels jitter by up to 2 grey levels from frame to frame (sensor noise)."""

    def read(self):
        ok, frame = super().read()
        if ok:
            rng = np.random.default_rng(self.n)
            frame = (100 + rng.integers(-2, 3, frame.shape)).astype(np.uint8)
        return ok, frame


def test_live_stabilise_cuts_the_flicker_of_a_still_scene(weights):
    def flicker(stabilise: float) -> float:
        camera = CameraSource(0, opener=lambda i: NoisyStillCapture(frames=100, size=(64, 96)), retry_seconds=0.5)
        window = FakeWindow([-1] * 11 + [ord("q")])
        stylizer = Stylizer(["wave"], weights_dir=weights, device="cpu")
        live.run_live(camera, stylizer, live.initial_state(["wave"], ["wave"]), window, None, stabilise=stabilise)
        below_hud = [f[-16:].astype(np.float32) for f in window.shown[4:]]
        return float(np.mean([np.abs(b - a).mean() for a, b in zip(below_hud, below_hud[1:])]))

    plain, held = flicker(0.0), flicker(0.8)
    assert plain > 1.0            # the +10 fake passes the input's noise straight through
    assert held < 0.5 * plain


@needs_ffmpeg
def test_video_with_stabilise_keeps_every_frame_and_reports_it(tmp_path, weights):
    clip = make_clip(tmp_path / "clip.mp4", frames=9, audio=False)
    out = tmp_path / "held.mp4"
    summary = runner.process_video(str(clip), out, Stylizer(["wave"], weights_dir=weights, device="cpu"),
                                   progress=False, workers=2, stabilise=0.6)
    assert summary["frames"] == 9 and summary["stabilise"] == 0.6 and count_frames(out) == 9


# ----- QA fixes: orientation, names, reruns, truncated / audio-only media -----------------------

def save_rgba_with_orientation(path: Path, rgba: np.ndarray, orientation: int) -> Path:
    """Write uint8 RGBA (H, W, 4) with Pillow (PNG or lossless WebP by extension) and an EXIF orientation."""
    image_module = pytest.importorskip("PIL.Image")
    image = image_module.fromarray(rgba, "RGBA")
    exif = image.getexif()
    exif[0x0112] = orientation
    image.save(path, exif=exif, **({"lossless": True} if path.suffix == ".webp" else {}))
    return path


def ramp_rgba(height: int, width: int) -> np.ndarray:
    """uint8 RGBA (H, W, 4) whose red channel equals its alpha: a ramp that no flip or turn leaves unchanged."""
    ys, xs = np.mgrid[0:height, 0:width]
    ramp = ((ys * 7 + xs * 3) % 200 + 20).astype(np.uint8)
    return np.dstack([ramp, np.full_like(ramp, 60), np.full_like(ramp, 90), ramp])


@pytest.mark.parametrize("ext", [".png", ".webp"])
def test_exif_rotated_transparent_image_keeps_alpha_with_its_picture(tmp_path, weights, ext):
    from stylecam.sources import exif_orientation, read_alpha, read_image
    source = save_rgba_with_orientation(tmp_path / f"al_exif{ext}", ramp_rgba(150, 200), 6)
    assert exif_orientation(source.read_bytes()) == 6
    out = tmp_path / f"o{ext}"
    code, _ = runner.run(RunConfig(engine=engine(weights, size=64), sources=(str(source),), output=str(out),
                                   progress=False))
    written = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert code == 0 and written.shape[2] == 4 and written.shape[:2] == read_image(source).shape[:2]
    for orientation in range(1, 9):  # square too: the alpha turns exactly like the colour OpenCV decodes
        square = save_rgba_with_orientation(tmp_path / f"sq{orientation}{ext}", ramp_rgba(40, 40), orientation)
        np.testing.assert_array_equal(read_alpha(square), read_image(square)[..., 2])


def test_alpha_of_a_plain_coloured_picture_follows_the_exif_orientation(tmp_path):
    from stylecam.sources import orient, read_alpha, read_image
    rgba = ramp_rgba(30, 40)
    rgba[..., :3] = 80  # the colour cannot tell which of the quarter turns and flips was applied; EXIF does
    source = save_rgba_with_orientation(tmp_path / "plain.png", rgba, 6)
    turned = read_image(source).shape[:2] == (40, 30)  # OpenCV applies PNG orientation (recent versions)
    np.testing.assert_array_equal(read_alpha(source), orient(rgba[..., 3], 6) if turned else rgba[..., 3])


def test_an_existing_path_with_glob_characters_is_taken_as_it_is(tmp_path):
    folder = tmp_path / "br"
    folder.mkdir()
    cv2.imwrite(str(folder / "shot[1].png"), np.zeros((4, 4, 3), np.uint8))
    items, _ = expand_sources([str(folder / "shot[1].png")])
    assert [i.location for i in items] == [str(folder / "shot[1].png")]
    cv2.imwrite(str(folder / "shot1.png"), np.zeros((4, 4, 3), np.uint8))  # what the pattern would match
    items, _ = expand_sources([str(folder / "shot[1].png")])
    assert [i.location for i in items] == [str(folder / "shot[1].png")]
    assert [i.location for i in expand_sources([str(folder / "shot[0-9].png")])[0]] == [str(folder / "shot1.png")]


def test_running_again_on_a_folder_skips_stylecam_outputs(tmp_path, weights, caplog):
    caplog.set_level("INFO", logger="stylecam")
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "marker.png"), np.full((6, 6, 3), 50, np.uint8))
    cv2.imwrite(str(folder / "run_steps.png"), np.full((6, 6, 3), 50, np.uint8))  # the user's own file
    config = RunConfig(engine=engine(weights), sources=(str(folder),), save_steps=True, progress=False)
    for _ in range(2):
        code, summary = runner.run(config)
        assert code == 0
        assert sorted(Path(d["input"]).name for d in summary["done"]) == ["marker.png", "run_steps.png"]
    assert not list(folder.rglob("*_stylised_stylised*")) and not list(folder.rglob("*_steps_steps*"))
    assert "skipped 8 file(s) in" in caplog.text  # 2 results, 2 sheets, 2 x 2 steps
    caplog.clear()
    inside = RunConfig(engine=engine(weights), sources=(str(folder),), output=str(folder / "out"), progress=False)
    for _ in range(2):
        code, summary = runner.run(inside)
        assert code == 0 and len(summary["done"]) == 2
    assert sorted(p.name for p in (folder / "out").iterdir()) == ["marker.png", "run_steps.png"]
    assert "skipped 10 file(s) in" in caplog.text and "under -o" in caplog.text


@needs_ffmpeg
def test_truncated_video_warns_keeps_the_frames_and_exits_1(tmp_path, weights, caplog):
    whole = tmp_path / "whole.mp4"
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc=size=64x48:rate=10:duration=5", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    "-movflags", "+faststart", str(whole)], check=True)
    cut = tmp_path / "cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[:len(data) * 2 // 3])
    code, summary = runner.run(RunConfig(engine=engine(weights), sources=(str(cut),), progress=False))
    frames = summary["done"][0]["frames"]
    assert code == 1 and summary["incomplete"] == [str(cut)] and 0 < frames < 47
    assert count_frames(tmp_path / "cut_stylised.mp4") == frames
    assert f"decoded only {frames} of the 50 frames" in caplog.text
    code, summary = runner.run(RunConfig(engine=engine(weights), sources=(str(whole),), output=str(tmp_path / "f.mp4"),
                                         max_frames=10, progress=False))
    assert code == 0 and summary["incomplete"] == [] and summary["done"][0]["frames"] == 10


def test_a_small_frame_count_shortfall_is_not_reported():
    check = runner._check_complete
    assert check("a", 98, 100, None, Path("o"))["frames_missing"] == 0        # 2 frames: an estimate
    assert check("a", 985, 1000, None, Path("o"))["frames_missing"] == 0      # 1.5 %
    assert check("a", 97, 100, None, Path("o"))["frames_missing"] == 3
    assert check("a", 10, 100, 10, Path("o"))["frames_missing"] == 0          # --max-frames
    assert check("a", 10, None, None, Path("o"))["frames_missing"] == 0       # nothing announced


def test_images_with_unknown_extensions_are_images(tmp_path, weights):
    jpeg = cv2.imencode(".jpg", np.full((8, 10, 3), 100, np.uint8))[1].tobytes()
    (tmp_path / "pic.jfif").write_bytes(jpeg)
    (tmp_path / "photo").write_bytes(jpeg)
    (tmp_path / "logo.img").write_bytes(cv2.imencode(".png", np.full((8, 10, 3), 100, np.uint8))[1].tobytes())
    sources = tuple(str(tmp_path / n) for n in ("pic.jfif", "photo", "logo.img"))
    code, summary = runner.run(RunConfig(engine=engine(weights), sources=sources, progress=False))
    assert code == 0 and [d["kind"] for d in summary["done"]] == ["image"] * 3
    assert [Path(d["output"]).name for d in summary["done"]] == ["pic_stylised.jpg", "photo_stylised.jpg",
                                                                 "logo_stylised.png"]
    assert cv2.imread(str(tmp_path / "logo_stylised.png")).shape == (8, 10, 3)
    code, summary = runner.run(RunConfig(engine=engine(weights), sources=(str(tmp_path),),
                                         output=str(tmp_path / "out"), progress=False))
    assert code == 0 and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["logo.png", "photo.jpg", "pic.jpg"]


def test_a_glob_matching_no_images_or_videos_is_a_user_error(tmp_path):
    (tmp_path / "n1.txt").write_text("x")
    with pytest.raises(UserError, match="no images or videos among the 1 file") as err:
        expand_sources([str(tmp_path / "n*.txt")])
    assert err.value.exit_code == 2


def test_video_output_names_must_be_writable_containers():
    from stylecam.sources import SourceItem
    video = SourceItem("video", "b.mp4")
    for name in ("x.txt", "x.flv"):
        with pytest.raises(UserError, match=rf"cannot write video b.mp4 as \{name[1:]}.*\.mkv"):
            runner.check_outputs([(video, runner.output_for(video, name, False))])
    flv = SourceItem("video", "in/a.flv", root="in")
    assert runner.output_for(flv, "outdir", False) == Path("outdir/a.mp4")  # made-up names still go to .mp4


@needs_ffmpeg
@pytest.mark.parametrize("name", ["tune.m4a", "tune.mp4"])
def test_audio_only_file_says_it_has_no_video_stream(tmp_path, name):
    path = tmp_path / name
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=duration=0.5",
                    "-c:a", "aac", str(path)], check=True)
    with pytest.raises(SourceError, match="has no video stream \\(only audio\\)"):
        VideoFileSource(path)


def test_output_folder_equal_to_the_input_folder_is_still_refused_as_an_overwrite(tmp_path, weights):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(UserError, match="overwrite its input"):
        runner.run(RunConfig(engine=engine(weights), sources=(str(tmp_path),), output=str(tmp_path), progress=False))


def test_hud_flags_say_int8_only_when_a_model_really_runs_int8():
    state = live.LiveState(styles=("wave",), chain=("wave",))
    fp32 = types.SimpleNamespace(entries=[types.SimpleNamespace(precision="fp32")], int8=True)
    int8 = types.SimpleNamespace(entries=[types.SimpleNamespace(precision="fp32"), types.SimpleNamespace(precision="int8")])
    assert live.hud_flags(fp32, state) == []
    assert live.hud_flags(int8, state) == ["int8"]
    import dataclasses
    busy = dataclasses.replace(state, recording=True, paused=True)
    assert live.hud_flags(int8, busy) == ["int8", "REC", "PAUSED"]
    int8.size = 448
    assert live.hud_flags(int8, busy, auto=True) == ["int8", "size auto: 448 px", "REC", "PAUSED"]
    int8.size = None
    assert live.hud_flags(int8, state, auto=True) == ["int8", "size auto: native"]


def test_auto_size_ladder_and_steps_down_when_the_camera_is_faster():
    sizer = live.AutoSize(640, workers=2)
    assert sizer.sizes == [640, 544, 448, 384, 320, 256] and sizer.size is None
    assert not sizer.observe(5.0, 30.0)                               # the first frame (a new shape) is left out
    assert not any(sizer.observe(0.08, 30.0) for _ in range(14))   # capacity 25 FPS, but only 14 frames seen
    assert sizer.observe(0.08, 30.0) and sizer.size == 544            # the 15th: 25 < 1.05 x 30
    # 80 FPS at 544 px would afford the frame's own size, but that one is held back for 150 frames
    assert not any(sizer.observe(0.025, 30.0) for _ in range(40))
    sizer.reset()                                                     # e.g. another style: judge afresh
    assert not any(sizer.observe(0.025, 30.0) for _ in range(15))  # one left out, 14 seen
    assert sizer.observe(0.025, 30.0) and sizer.size is None


def settle(sizer, seconds_at, camera_fps: float, frames: int = 300) -> list:
    """Feed ``frames`` frames whose stylising takes seconds_at(long side); the sizes chosen, in order."""
    chosen = [sizer.size]
    for _ in range(frames):
        if sizer.observe(seconds_at(sizer.sizes[sizer.index]), camera_fps):
            chosen.append(sizer.size)
    return chosen


def test_auto_size_settles_on_the_largest_size_that_keeps_up_and_stays_there():
    cost = lambda side: 0.08 * (side / 640) ** 2            # time grows with the pixels
    sizer = live.AutoSize(640, workers=2)
    assert settle(sizer, cost, 30.0) == [None, 544]           # 544: 2 / 0.058 = 34.6 FPS >= 31.5; no flip back
    fast = live.AutoSize(640, workers=2)
    assert settle(fast, lambda side: 0.02, 30.0) == [None]   # 100 FPS at the frame's own size: nothing to do


def test_auto_size_goes_back_up_when_the_stylising_gets_faster():
    sizer = live.AutoSize(640, workers=1)
    assert settle(sizer, lambda side: 0.2 * (side / 640) ** 2, 30.0)[-1] == 256      # busy machine: the smallest
    assert settle(sizer, lambda side: 0.01 * (side / 640) ** 2, 30.0) == [256, 320, 384, 448, 544, None]


def test_auto_size_tries_a_size_it_had_to_leave_again_later_and_later():
    # 544 px looks affordable from 448 (its pixels alone), but the busier machine cannot keep up there
    cost = {640: 0.1, 544: 0.07, 448: 0.025, 384: 0.02, 320: 0.015, 256: 0.01}
    sizer = live.AutoSize(640, workers=2)
    chosen = settle(sizer, cost.get, 30.0, frames=600)
    assert chosen[:3] == [None, 544, 448] and set(chosen[3:]) <= {544, 448}
    assert len(chosen) == 7      # back to 544 after 150, then 300 frames: not every 30 frames


def test_auto_size_never_goes_under_its_smallest_side():
    assert live.AutoSize(120).sizes == [120, 102, 96] and live.AutoSize(64).sizes == [64]


class FastCapture(FakeCapture):
    """FakeCapture that says it delivers 100 frames a second (and does, about)."""

    def get(self, prop):
        return 100.0 if prop == cv2.CAP_PROP_FPS else 0.0


def test_live_auto_size_steps_down_for_a_slow_style_and_keeps_the_frame_size(weights, monkeypatch):
    original = Stylizer.stylize_batch
    seen = []

    def slow(self, frames):                      # 40 ms at the frame's own 320 px, less when smaller
        side = self.size or max(frames.shape[1:3])
        seen.append(self.size)
        time.sleep(0.04 * (side / 320) ** 2)
        return original(self, frames)

    monkeypatch.setattr(Stylizer, "stylize_batch", slow)
    camera = CameraSource(0, opener=lambda i: FastCapture(frames=1000, size=(240, 320), delay=0.01))
    window = FakeWindow([])
    summary = live.run_live(camera, Stylizer(["wave"], weights_dir=weights, device="cpu"),
                            live.initial_state(["wave"], ["wave"]), window, None, max_frames=35, auto_size=True)
    sizes = [entry["size"] for entry in summary["auto_size"]]
    assert sizes[:3] == [None, 272, 224] and summary["auto_size"][1]["from_frame"] == 17
    assert seen[:16] == [None] * 16 and seen[16] == 272                  # the first frame left out, then 15
    assert all(f.shape == (240, 320, 3) for f in window.shown)           # shown at the camera's size


def test_delivery_rate_follows_what_the_camera_really_delivers():
    rate = live.DeliveryRate(span=3.0, least=1.0)
    assert rate.rate(30.0) == 30.0                                    # nothing seen: the nominal fps
    for i in range(11):                                               # 15 frames a second for 0.5 s
        rate.add(100.0 + i / 20, 10 + i)
    assert rate.rate(30.0) == 30.0                                    # under a second: still nominal
    for i in range(11, 61):                                           # ... for 3 s
        rate.add(100.0 + i / 20, 10 + i)
    assert rate.rate(30.0) == pytest.approx(20.0) and rate.rate(12.0) == 12.0   # capped at the nominal fps
    for i in range(1, 81):                                            # then 10 a second for 8 s
        rate.add(103.0 + i / 10, 70 + i)
    assert rate.rate(30.0) == pytest.approx(10.0, abs=0.4)            # the last 3 s only


def test_live_auto_size_with_two_workers_never_goes_back_to_an_old_size_in_flight(weights, monkeypatch):
    original = Stylizer.stylize_batch
    seen = []

    def slow(self, frames):
        seen.append(self.size)
        time.sleep(0.08 * ((self.size or 320) / 320) ** 2)
        return original(self, frames)

    monkeypatch.setattr(Stylizer, "stylize_batch", slow)
    camera = CameraSource(0, opener=lambda i: FastCapture(frames=1000, size=(240, 320), delay=0.01))
    summary = live.run_live(camera, Stylizer(["wave"], weights_dir=weights, device="cpu", threads=1),
                            live.initial_state(["wave"], ["wave"]), FakeWindow([]), None, max_frames=40,
                            auto_size=True, workers=2)
    sizes = [entry["size"] for entry in summary["auto_size"]]
    assert sizes[:2] == [None, 272] and summary["workers"] == 2
    first_272 = seen.index(272)
    assert None not in seen[first_272:]                  # the frames in flight were shown before the change
    assert summary["auto_size"][1]["from_frame"] == first_272 + 1


def test_size_auto_is_for_the_camera(weights, tmp_path):
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(UserError, match="--size auto is for the camera"):
        runner.run(RunConfig(engine=engine(weights), sources=(str(photo),), auto_size=True, progress=False))


def test_a_glob_run_twice_skips_its_own_outputs(tmp_path, weights):
    shots = tmp_path / "shots"
    shots.mkdir()
    cv2.imwrite(str(shots / "a.png"), np.full((12, 12, 3), 100, np.uint8))
    config = RunConfig(engine=engine(weights), sources=(str(shots / "*.png"),), progress=False)
    for _ in range(2):
        code, summary = runner.run(config)
        assert code == 0 and [d["input"] for d in summary["done"]] == [str(shots / "a.png")]
    assert sorted(p.name for p in shots.iterdir()) == ["a.png", "a_stylised.png"]
    # asked for by name, an output is processed like any image
    code, summary = runner.run(RunConfig(engine=engine(weights), sources=(str(shots / "*_stylised.png"),),
                                         progress=False))
    assert code == 0 and (shots / "a_stylised_stylised.png").is_file()


@pytest.mark.parametrize("platform, expected", [
    ("linux", {"start_new_session": True}), ("darwin", {"start_new_session": True}),
    ("win32", {"creationflags": 0x200}),                       # CREATE_NEW_PROCESS_GROUP
])
def test_the_encoder_is_kept_apart_from_the_terminals_ctrl_c(platform, expected):
    assert sinks.apart_from_ctrl_c(platform) == expected


CTRL_C_CHECK = """
import os, signal, sys, time
import numpy as np
from stylecam import sinks
signal.signal(signal.SIGINT, lambda *a: None)               # this process lives on; the question is ffmpeg
writer = sinks.VideoWriter(sys.argv[1], 10, (32, 24))
writer.write(np.zeros((24, 32, 3), np.uint8))
os.killpg(os.getpgrp(), signal.SIGINT)                      # what a terminal's Ctrl-C does to its group
time.sleep(0.3)
alive = writer._proc.poll() is None
writer.write(np.zeros((24, 32, 3), np.uint8))
writer.close()
print("alive" if alive else "killed")
"""


@needs_ffmpeg
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")
def test_a_ctrl_c_sent_to_the_process_group_leaves_the_encoder_running(tmp_path):
    # in a process of its own session, so that the SIGINT reaches nothing else
    proc = subprocess.run([sys.executable, "-c", CTRL_C_CHECK, str(tmp_path / "x.mp4")], capture_output=True,
                          text=True, timeout=120, start_new_session=True, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "alive" and count_frames(tmp_path / "x.mp4") == 2
