"""The measurement scripts (benchmarks/*.py, docs/make_gallery.py) refuse bad arguments with one
error line and exit 2, before any work: no tracebacks, no silent nonsense, no stray files."""
from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks import cifar_challenge, runtime_fps, train_throughput
from tests.fakes.onnx_models import make_weights_dir

REPO = Path(__file__).resolve().parents[1]


def load_gallery():
    spec = importlib.util.spec_from_file_location("make_gallery", REPO / "docs" / "make_gallery.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_error(main, argv, capsys) -> str:
    """argparse's refusal: SystemExit 2 and an 'error: argument ...' line."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    return err.strip().splitlines()[-1]


def one_line_error(main, argv, capsys, prog: str) -> str:
    """A UserError caught in main: exit 2 and exactly one 'PROG: error: ...' line on stderr."""
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith(f"{prog}: error: "), err
    return err[0]


def test_every_benchmark_imports_as_a_module_of_the_package_without_touching_sys_path():
    scripts = sorted((REPO / "benchmarks").glob("*.py"))
    assert len(scripts) >= 9
    for path in scripts:
        tree = ast.parse(path.read_text())
        patched = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == "path"
                   and isinstance(node.value, ast.Name) and node.value.id == "sys"]
        assert patched == [], f"benchmarks/{path.name} uses sys.path (lines {patched})"
        module = importlib.import_module(f"benchmarks.{path.stem}")
        assert module.__file__ == str(path)


# ----- runtime_fps ------------------------------------------------------------------------------

RUNTIME_BAD = [
    (["--frames", "0"], "--frames"), (["--frames", "-1"], "--frames"), (["--e2e-frames", "0"], "--e2e-frames"),
    (["--warmup", "-1"], "--warmup"), (["--workers", "0"], "--workers"), (["--threads", "0"], "--threads"),
    (["--sizes", "abc"], "WIDTHxHEIGHT"), (["--sizes", "0x0"], "too small"), (["--sizes", "63x47"], "odd side"),
    (["--sizes", "64x48,"], "comma-separated"), (["--configs", "foo"], "--configs"),
    (["--infer-sizes", "4"], "--infer-sizes"), (["--device", "foo"], "--device"), (["--batch", "0"], "--batch"),
    (["--batch", "-2"], "--batch"), (["--precisions", "foo"], "--precisions"), (["--variants", "huge"], "--variants"),
]


@pytest.mark.parametrize("argv,expected", RUNTIME_BAD, ids=[" ".join(a) for a, _ in RUNTIME_BAD])
def test_runtime_fps_refuses_bad_values_at_parse_time(argv, expected, capsys):
    line = parse_error(runtime_fps.main, argv + ["-o", "/nonexistent/never.json"], capsys)
    assert line.startswith("runtime_fps.py: error: argument") and expected in line


def test_runtime_fps_odd_size_hint_names_an_even_size(capsys):
    line = parse_error(runtime_fps.main, ["--sizes", "63x47"], capsys)
    assert "64x48" in line


@pytest.mark.parametrize("case", ["markdown out", "folder out", "proc out", "missing weights", "unknown style"])
def test_runtime_fps_user_errors_are_one_line_before_any_work(case, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    out = str(tmp_path / "r.json")
    argv = {"markdown out": ["-o", str(tmp_path / "r.md")], "folder out": ["-o", str(tmp_path)],
            "proc out": ["-o", "/proc/x.json"],
            "missing weights": ["--weights-dir", str(tmp_path / "nonexistent"), "-o", out],
            "unknown style": ["--models", "fake", "--single-style", "nosuch", "-o", out]}[case]
    line = one_line_error(runtime_fps.main, argv + ["--sizes", "64x48", "--no-peer"], capsys,
                          "runtime_fps.py")
    assert {"markdown out": "must name a .json file", "folder out": "is a folder", "proc out": "cannot write -o",
            "missing weights": "no such weights folder", "unknown style": "unknown style 'nosuch'"}[case] in line
    assert not list((tmp_path / "tmp").glob("stylecam-bench/clip_*"))     # no clip made
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp"]          # nothing written beside


def test_runtime_fps_script_prints_no_traceback(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.runtime_fps", "--weights-dir",
                           str(tmp_path / "nonexistent"), "-o", str(tmp_path / "x.json")],
                          capture_output=True, text=True, env=env, timeout=120, cwd=REPO)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "runtime_fps.py: error: no such weights" \
        in proc.stderr


# ----- train_throughput -------------------------------------------------------------------------

THROUGHPUT_BAD = [["--steps", "0"], ["--steps", "-1"], ["--warmup", "-1"], ["--size", "0"], ["--size", "3"],
                  ["--size", "18"], ["--style-size", "8"], ["--batch-size", "0"], ["--variants", "foo"],
                  ["--device", "foo"], ["--threads", "-1"], ["--threads", "0"]]


@pytest.mark.parametrize("argv", THROUGHPUT_BAD, ids=[" ".join(a) for a in THROUGHPUT_BAD])
def test_train_throughput_refuses_bad_values_at_parse_time(argv, capsys):
    line = parse_error(train_throughput.main, argv + ["--out", "/nonexistent/x.json"], capsys)
    assert line.startswith("train_throughput.py: error: argument " + argv[0])


@pytest.mark.parametrize("case", ["missing vgg", "folder out", "text out", "cuda"])
def test_train_throughput_user_errors_are_one_line(case, tmp_path, capsys):
    import torch
    if case == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    argv = {"missing vgg": ["--vgg-weights", str(tmp_path / "none.pth"), "--out", str(tmp_path / "t.json")],
            "folder out": ["--out", str(tmp_path)], "text out": ["--out", str(tmp_path / "t.txt")],
            "cuda": ["--device", "cuda", "--out", str(tmp_path / "t.json")]}[case]
    line = one_line_error(train_throughput.main, argv, capsys, "train_throughput.py")
    assert {"missing vgg": "VGG-16 weights file not found", "folder out": "is a folder",
            "text out": "must name a .json file", "cuda": "no CUDA GPU"}[case] in line
    assert not list(tmp_path.iterdir())


# ----- cifar_challenge --------------------------------------------------------------------------

CIFAR_BAD = [(["--budgets", "0"], "positive"), (["--budgets", "-1"], "positive"), (["--budgets", "nan"], "positive"),
             (["--budgets", "inf"], "positive"), (["--budgets", "abc"], "positive"), (["--budgets", ""], "comma"),
             (["--budgets", "60,"], "comma"), (["--optimizer", "foo"], "--optimizer"), (["--lr", "-1"], "--lr"),
             (["--lr", "nan"], "--lr"), (["--batch-size", "0"], "--batch-size"), (["--threads", "-1"], "--threads")]


@pytest.mark.parametrize("argv,expected", CIFAR_BAD, ids=[" ".join(a) for a, _ in CIFAR_BAD])
def test_cifar_challenge_refuses_bad_values_at_parse_time(argv, expected, capsys):
    line = parse_error(cifar_challenge.main, argv + ["--out", "/nonexistent/x.json"], capsys)
    assert line.startswith("cifar_challenge.py: error: argument") and expected in line


@pytest.mark.parametrize("case", ["unknown arch", "missing data", "plot-only missing json", "plot-only bad json",
                                  "plot svg", "folder out"])
def test_cifar_challenge_user_errors_are_one_line(case, tmp_path, capsys):
    (tmp_path / "bad.json").write_text('{"x": 1}')
    out = ["--out", str(tmp_path / "c.json")]
    argv = {"unknown arch": ["--arch", "foo", "--data", str(tmp_path / "none"), *out],
            "missing data": ["--data", str(tmp_path / "none"), *out],
            "plot-only missing json": ["--plot-only", "--plot", str(tmp_path / "p.png"), *out],
            "plot-only bad json": ["--plot-only", "--plot", str(tmp_path / "p.png"), "--out", str(tmp_path / "bad.json")],
            "plot svg": ["--plot", str(tmp_path / "p.svg"), *out],
            "folder out": ["--out", str(tmp_path)]}[case]
    line = one_line_error(cifar_challenge.main, argv, capsys, "cifar_challenge.py")
    assert {"unknown arch": "bad token 'foo'", "missing data": "cifar10 not found", "plot-only missing json":
            "no results file", "plot-only bad json": "not a cifar_challenge results file", "plot svg": "must name a .png",
            "folder out": "is a folder"}[case] in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]


def test_cifar_challenge_plot_only_redraws_from_the_json(tmp_path, monkeypatch):
    """The plot holds the JSON's budgets and accuracies, labelled, with the goals, in a 400 x 240 PNG."""
    import matplotlib.pyplot as plt
    result = {"machine": {"cores": 2, "threads_used": 2}, "settings": {"arch": "cifar-fast"},
              "results": [{"budget_s": 60.0, "test_accuracy": 0.61}, {"budget_s": 600.0, "test_accuracy": 0.8}]}
    (tmp_path / "c.json").write_text(json.dumps(result))
    png = tmp_path / "plots" / "c.png"
    axes, real_subplots = [], plt.subplots
    monkeypatch.setattr(plt, "subplots", lambda *a, **k: (lambda fa: axes.append(fa[1]) or fa)(real_subplots(*a, **k)))
    rc = cifar_challenge.main(["--plot-only", "--plot", str(png), "--out", str(tmp_path / "c.json")])
    assert rc == 0 and cv2.imread(str(png)).shape == (240, 400, 3)
    ax = axes[0]
    curve, *goals = ax.lines
    assert list(curve.get_xdata()) == [60.0, 600.0] and list(curve.get_ydata()) == [0.61, 0.8]
    assert curve.get_label() == "cifar-fast"
    assert [(list(g.get_xdata()), list(g.get_ydata())) for g in goals] == [([60], [0.6]), ([600], [0.8])]
    assert [t.get_text() for t in ax.texts] == ["61.0%", "80.0%"]
    assert ax.get_title() == "2-core CPU, 2 thread(s), shared"


# ----- docs/make_gallery.py ---------------------------------------------------------------------

@pytest.fixture
def gallery_photo(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("STYLECAM_WEIGHTS", str(make_weights_dir(tmp_path / "w", lite=False)))   # full models only
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.random.default_rng(0).integers(0, 255, (60, 80, 3)).astype(np.uint8))
    return photo


@pytest.mark.parametrize("argv", [["--size", "0"], ["--size", "-5"], ["--size", "3"], ["--columns", "0"],
                                  ["--columns", "-1"]])
def test_make_gallery_refuses_bad_numbers(argv, capsys):
    line = parse_error(load_gallery().main, ["photo.jpg", *argv, "-o", "/nonexistent/g.jpg"], capsys)
    assert line.startswith("make_gallery.py: error: argument " + argv[0])


@pytest.mark.parametrize("case", ["xyz out", "folder out", "no such variant", "missing photo", "unwritable"])
def test_make_gallery_user_errors_are_one_line(case, tmp_path, gallery_photo, capsys):
    argv = {"xyz out": ["-o", str(tmp_path / "g.xyz")], "folder out": ["-o", str(tmp_path)],
            "no such variant": ["--variant", "lite", "-o", str(tmp_path / "g.jpg")],
            "missing photo": ["-o", str(tmp_path / "g.jpg")],
            "unwritable": ["--variant", "full", "-o", "/proc/g.jpg"]}[case]
    photo = str(tmp_path / "nope.jpg") if case == "missing photo" else str(gallery_photo)
    line = one_line_error(load_gallery().main, [photo, *argv], capsys, "make_gallery.py")
    assert {"xyz out": "must name a .jpg", "folder out": "is a folder", "no such variant": "no lite style models",
            "missing photo": "cannot read", "unwritable": "cannot write /proc/g.jpg"}[case] in line
    assert not (tmp_path / "g.jpg").exists()


def test_make_gallery_creates_the_output_folder(tmp_path, gallery_photo, capsys):
    out = tmp_path / "new" / "folder" / "g.jpg"
    rc = load_gallery().main([str(gallery_photo), "--variant", "full", "--size", "64", "--columns", "2",
                              "-o", str(out)])
    sheet = cv2.imread(str(out))
    assert rc == 0 and sheet is not None and sheet.shape[1] == 2 * 240 + 3 * 4   # 2 columns of 240 px
    assert "(2 styles)" in capsys.readouterr().out
