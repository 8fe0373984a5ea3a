"""benchmarks/temporal_flicker.py on a generated clip and the tiny fake models with known effects."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks import temporal_flicker
from tests.fakes.onnx_models import make_weights_dir


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
    rc = temporal_flicker.main(
        ["--set", f"fake={weights}", "--input", str(clip), "--frames", "8", "--stabilize", "0.8", "-o", str(out)])
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
    from stylecam.errors import UserError
    with pytest.raises(UserError, match="cannot open"):
        temporal_flicker.read_frames(tmp_path / "missing.mp4", 5)
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(UserError, match="cannot"):
        temporal_flicker.read_frames(tmp_path / "junk.mp4", 5)
    with pytest.raises(UserError, match="gave 1 frame"):
        temporal_flicker.read_frames(write_clip(tmp_path / "one.avi", frames=1), 5)


@pytest.fixture
def flicker_setup(tmp_path):
    return make_weights_dir(tmp_path / "w", lite=True), write_clip(tmp_path / "clip.avi")


@pytest.mark.parametrize("case", ["missing input", "junk input", "unknown style", "missing set", "empty set",
                                  "folder out", "proc out", "no still pixel"])
def test_flicker_input_problems_are_one_error_line(tmp_path, flicker_setup, capsys, case):
    weights, clip = flicker_setup
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    out = tmp_path / "f.json"
    argv = {"missing input": ["--input", str(tmp_path / "nope.mp4")],
            "junk input": ["--input", str(tmp_path / "junk.mp4")],
            "unknown style": ["--styles", "nosuch"],
            "missing set": ["--set", f"x={tmp_path / 'nonexistent'}"],
            "empty set": ["--set", f"x={tmp_path / 'empty'}"],
            "folder out": ["-o", str(tmp_path)],
            "proc out": ["-o", "/proc/x.json"],
            "no still pixel": ["--threshold", "0", "--frames", "3"]}[case]
    defaults = {"--set": ["--set", f"fake={weights}"], "--input": ["--input", str(clip)], "-o": ["-o", str(out)]}
    for flag, value in defaults.items():
        if flag not in argv:
            argv = argv + value
    if case == "no still pixel":   # a clip whose every pixel changes between frames
        writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"FFV1"), 10, (64, 48))
        for i in range(3):
            writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
        writer.release()
    rc = temporal_flicker.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("temporal_flicker.py: error: "), err
    assert not out.exists()
    expected = {"missing input": "cannot open", "junk input": "cannot open", "unknown style": "unknown style 'nosuch'",
                "missing set": "no such folder", "empty set": "no style models", "folder out": "is a folder",
                "proc out": "cannot write -o /proc/x.json", "no still pixel": "stood still"}[case]
    assert expected in err[0]


@pytest.mark.parametrize("argv", [["--stabilize", "2"], ["--stabilise", "abc"], ["--stabilize", "nan"],
                                  ["--threshold", "-1"], ["--threshold", "nan"], ["--frames", "1"], ["--set", "x"]])
def test_flicker_refuses_bad_numbers_at_parse_time(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        temporal_flicker.main(argv + ["-o", "/nonexistent/never.json"])
    assert exit_.value.code == 2 and "error: argument" in capsys.readouterr().err


def test_flicker_json_is_strict(tmp_path, flicker_setup):
    """The JSON never holds NaN (allow_nan=False): it parses with a strict parser."""
    weights, clip = flicker_setup
    out = tmp_path / "f.json"
    assert temporal_flicker.main(
        ["--set", f"fake={weights}", "--input", str(clip), "--frames", "4", "--threshold", "0", "-o", str(out)]) == 0

    def refuse(name):
        raise ValueError(name)
    result = json.loads(out.read_text(), parse_constant=refuse)
    assert result["threshold"] == 0 and result["sets"]["fake"]["styles"]


def test_old_stabilise_spelling_still_parses_and_is_hidden_from_help():
    parser = temporal_flicker.build_parser()
    assert parser.parse_args(["--stabilise", "0.5,0.8"]).stabilize == [0.5, 0.8]
    assert parser.parse_args([]).stabilize == []
    assert "--stabilize A,B" in parser.format_help() and "stabilise" not in parser.format_help()
