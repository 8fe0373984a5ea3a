"""benchmarks/runtime_fps.py runs end to end on the tiny fake models and writes the rows it promises."""
from __future__ import annotations

import json
import tempfile

from benchmark_scripts import load_benchmark


def test_runtime_benchmark_rows_per_batch_and_precision(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    out = tmp_path / "fps.json"
    rc = load_benchmark("runtime_fps").main([
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
    clip = load_benchmark("runtime_fps").make_clip(96, 64, 9, tmp_path)
    frames = list(VideoFileSource(clip))
    assert len(frames) == 9 and frames[0].shape == (64, 96, 3)
