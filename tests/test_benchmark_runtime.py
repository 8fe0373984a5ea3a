"""benchmarks/runtime_fps.py runs end to end on the tiny fake models and writes the rows it promises."""
from __future__ import annotations

import json
import tempfile

import pytest

from benchmarks import runtime_fps


def test_runtime_benchmark_rows_per_batch_and_precision(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    out = tmp_path / "fps.json"
    rc = runtime_fps.main([
        "--models", "fake", "--sizes", "160x120", "--variants", "lite", "--precisions", "fp32,fp16",
        "--batch", "1,3", "--configs", "single,chain_x3", "--frames", "2", "--warmup", "1",
        "--e2e-frames", "7", "--workers", "1", "--no-peer", "--device", "cpu", "-o", str(out)])
    assert rc == 0
    result = json.loads(out.read_text())
    runs = result["runs"]
    # fp16 needs a GPU: skipped on the CPU, so 2 configs x 2 batch sizes of fp32 rows
    assert [(r["config"], r["batch"], r["precision"]) for r in runs] == [
        ("single", 1, "fp32"), ("single", 3, "fp32"), ("chain_x3", 1, "fp32"), ("chain_x3", 3, "fp32")]
    assert [r["passes"] for r in runs] == [1, 1, 6, 6]
    for r in runs:
        assert r["end_to_end"]["frames"] == 7 and r["end_to_end"]["fps"] > 0
        assert set(r["stages_ms"]) == {"decode", "pre", "inference", "post", "encode"}
        assert r["providers"] == ["CPUExecutionProvider"] and r["workers"] == 1
    assert "gpu" not in result["machine"]
    table = out.with_suffix(".md").read_text().splitlines()
    assert "| provider | workers x threads | batch |" in table[2]
    rows = [line for line in table if line.startswith("| 160x120")]
    assert len(rows) == 4 and all("| CPU | 1 x default |" in row for row in rows)


def test_benchmark_clip_without_ffmpeg(tmp_path, monkeypatch):
    """Machines without ffmpeg still get a clip of the asked size and length (OpenCV's writer)."""
    from stylecam.sources import VideoFileSource
    monkeypatch.setenv("STYLECAM_NO_FFMPEG", "1")
    clip = runtime_fps.make_clip(96, 64, 9, tmp_path)
    frames = list(VideoFileSource(clip))
    assert len(frames) == 9 and frames[0].shape == (64, 96, 3)


def _tiny_run(out, *extra) -> list[str]:
    return ["--sizes", "64x48", "--configs", "single", "--frames", "1", "--warmup", "0", "--e2e-frames", "3",
            "--workers", "1", "--no-peer", "-o", str(out), *extra]


def test_end_to_end_fps_includes_the_encoder_flush_and_uses_warmup(tmp_path, monkeypatch):
    """The timed span covers process_video's writer.close() (which its own clock leaves out);
    the warm-up run takes --warmup frames (at least two per worker; none for 0)."""
    import time
    calls = []

    def fake_process_video(path, out, stylizer, batch=1, progress=True, workers=1, max_frames=None):
        calls.append(max_frames)
        t0 = time.perf_counter()
        time.sleep(0.01)                      # the loop, as process_video times it
        loop = time.perf_counter() - t0
        time.sleep(0.2)                       # writer.close(): the encoder flush, after its clock stopped
        return {"frames": 10, "seconds": round(loop, 3), "fps": round(10 / loop, 2)}

    monkeypatch.setattr(runtime_fps, "process_video", fake_process_video)
    row = runtime_fps.end_to_end(None, tmp_path / "clip.mp4", tmp_path, workers=1, warmup=3)
    assert calls == [3, None]
    assert row["seconds"] >= 0.2 and row["fps"] <= 10 / 0.2 and row["loop_seconds"] < 0.2
    calls.clear()
    runtime_fps.end_to_end(None, tmp_path / "clip.mp4", tmp_path, workers=2, warmup=1)
    assert calls == [4, None]
    calls.clear()
    runtime_fps.end_to_end(None, tmp_path / "clip.mp4", tmp_path, workers=1, warmup=0)
    assert calls == [None]


def test_runtime_json_marks_flush_timing_and_passes_warmup(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    real, warmups = runtime_fps.process_video, []

    def recording(*args, max_frames=None, **kwargs):
        warmups.append(max_frames)
        return real(*args, max_frames=max_frames, **kwargs)

    monkeypatch.setattr(runtime_fps, "process_video", recording)
    out = tmp_path / "fps.json"
    assert runtime_fps.main(_tiny_run(out, "--models", "fake", "--variants", "lite", "--warmup", "3")) == 0
    result = json.loads(out.read_text())
    assert result["e2e_includes_flush"] is True and result["e2e_warmup_frames"] == 3
    assert warmups == [3, None]
    e2e = result["runs"][0]["end_to_end"]
    assert e2e["seconds"] >= e2e["loop_seconds"]
    assert e2e["fps"] == pytest.approx(e2e["frames"] / e2e["seconds"], rel=0.02)


def test_missing_variant_or_int8_copy_is_skipped_not_mislabelled(tmp_path, monkeypatch, capsys):
    from tests.fakes.onnx_models import make_weights_dir
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    weights = make_weights_dir(tmp_path / "w", lite=False)          # full models only, no int8 copies
    out = tmp_path / "fps.json"
    rc = runtime_fps.main(_tiny_run(out, "--models", "shipped", "--weights-dir", str(weights),
                              "--variants", "lite,full", "--precisions", "fp32,int8"))
    assert rc == 0
    result = json.loads(out.read_text())
    assert [(r["variant"], r["precision"]) for r in result["runs"]] == [("full", "fp32")]
    assert {(k["variant"], k["precision"]) for k in result["skipped"]} == {("lite", "fp32"), ("lite", "int8"),
                                                                            ("full", "int8")}
    assert "skipped lite fp32: no lite model of wave" in out.with_suffix(".md").read_text()
    assert "skipping lite fp32" in capsys.readouterr().err
    # nothing left to measure: an error, no file
    rc = runtime_fps.main(_tiny_run(tmp_path / "none.json", "--models", "shipped", "--weights-dir", str(weights),
                              "--variants", "lite"))
    assert rc == 2 and not (tmp_path / "none.json").exists()
    assert "nothing was measured: no lite model of wave" in capsys.readouterr().err


def test_clip_cache_rebuilds_empty_or_unreadable_clips(tmp_path):
    from stylecam.sources import VideoFileSource
    for junk in (b"", b"not a video"):
        cached = tmp_path / "clip_64x48_5.mp4"
        cached.write_bytes(junk)
        clip = runtime_fps.make_clip(64, 48, 5, tmp_path)
        assert clip == cached and len(list(VideoFileSource(clip))) == 5
    stamp = cached.stat().st_mtime_ns
    assert runtime_fps.make_clip(64, 48, 5, tmp_path) == cached and cached.stat().st_mtime_ns == stamp   # reused
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip_64x48_5.mp4"]                   # no temp files


def test_failed_clip_encoder_leaves_no_clip_behind(tmp_path, monkeypatch):
    import shutil

    from stylecam.errors import UserError
    monkeypatch.setattr(runtime_fps, "ffmpeg_exe", lambda: shutil.which("false"))   # an "ffmpeg" that fails
    with pytest.raises(UserError, match="could not make the 64x48 benchmark clip"):
        runtime_fps.make_clip(64, 48, 5, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_container_option_writes_that_container(tmp_path, monkeypatch):
    """--container webm: the encode stage and the end-to-end runs write .webm files (VP9)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    real, outputs = runtime_fps.process_video, []

    def recording(clip, out, *args, **kwargs):
        outputs.append(str(out))
        return real(clip, out, *args, **kwargs)

    monkeypatch.setattr(runtime_fps, "process_video", recording)
    out = tmp_path / "fps.json"
    assert runtime_fps.main(_tiny_run(out, "--models", "fake", "--variants", "lite", "--container", "webm")) == 0
    result = json.loads(out.read_text())
    assert result["container"] == "webm" and result["runs"]
    assert outputs and all(path.endswith("e2e.webm") for path in outputs)
    assert "output container: webm" in out.with_suffix(".md").read_text().splitlines()[0]
