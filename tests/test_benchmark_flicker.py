"""benchmarks/temporal_flicker.py on a generated clip and the tiny fake models with known effects."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmark_scripts import load_benchmark
from onnx_fakes import make_weights_dir


def write_clip(path: Path, frames: int = 8) -> Path:
    """A still dark scene with +-1 grey-level noise and a bright square moving across it (lossless FFV1)."""
    rng = np.random.default_rng(0)
    scene = rng.integers(40, 120, (48, 64, 3)).astype(np.int16)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 10, (64, 48))
    for i in range(frames):
        frame = np.clip(scene + rng.integers(-1, 2, scene.shape), 0, 255).astype(np.uint8)
        frame[10:22, 4 + 6 * i:16 + 6 * i] = 230
        writer.write(frame)
    writer.release()
    return path


def test_flicker_of_pointwise_models_follows_the_input(tmp_path):
    weights = make_weights_dir(tmp_path / "w", lite=True)          # wave: +10, muse: x0.5
    clip = write_clip(tmp_path / "clip.avi")
    out = tmp_path / "flicker.json"
    rc = load_benchmark("temporal_flicker").main(
        ["--set", f"fake={weights}", "--input", str(clip), "--frames", "8", "--stabilise", "0.8", "-o", str(out)])
    assert rc == 0
    result = json.loads(out.read_text())
    assert result["frames"] == 8 and result["size"] == [48, 64]
    assert 0.5 < result["static_fraction"] < 1.0 and result["input_flicker"] > 0
    rows = {r["style"]: r for r in result["sets"]["fake"]["styles"]}
    assert set(rows) == {"muse", "wave"}
    # a shift repaints a still pixel exactly as the input changed; halving it halves the change (+- rounding)
    assert rows["wave"]["flicker"] == pytest.approx(result["input_flicker"], rel=1e-6)
    assert rows["muse"]["flicker"] == pytest.approx(result["input_flicker"] / 2, abs=0.3)
    assert rows["muse"]["flicker"] < rows["wave"]["flicker"]
    # holding the previous output on still pixels cuts the flicker that the shift passes through
    assert rows["wave"]["flicker_stabilised"]["0.8"] < 0.6 * rows["wave"]["flicker"]


def test_flicker_benchmark_refuses_a_clip_without_two_frames(tmp_path):
    bench = load_benchmark("temporal_flicker")
    with pytest.raises(SystemExit):
        bench.read_frames(tmp_path / "missing.mp4", 5)
