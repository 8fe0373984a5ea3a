"""benchmarks/model_ab.py: interleaved inference times of the same models from two folders."""
from __future__ import annotations

import json

import pytest

from benchmarks import model_ab
from tests.fakes.onnx_models import make_style_model, make_weights_dir


def test_interleaved_ms_alternates_and_times_each_call():
    calls = []
    a, b = model_ab.interleaved_ms(lambda: calls.append("a"), lambda: calls.append("b"), warmup=2, steps=3)
    assert calls == ["a", "b"] * 5
    assert len(a) == len(b) == 3 and all(t >= 0 for t in a + b)


def test_pairs_match_files_by_relative_name(tmp_path):
    a = make_weights_dir(tmp_path / "a")
    b = make_weights_dir(tmp_path / "b", styles={"wave": {"effect": "shift", "amount": 3.0}})
    (b / "int8").mkdir()
    make_style_model(b / "int8" / "wave.lite.int8.onnx", "wave", variant="lite")
    names = [name for name, _, _ in model_ab.pairs(a, b, [])]
    assert names == ["wave.lite.onnx", "wave.onnx"]              # muse and int8/ are in one folder only
    with pytest.raises(model_ab.UserError, match="int8/wave.lite.int8.onnx is not in --a"):
        model_ab.pairs(a, b, ["int8/wave.lite.int8.onnx"])
    with pytest.raises(model_ab.UserError, match="no such folder"):
        model_ab.pairs(tmp_path / "nowhere", b, [])


def test_run_reports_medians_ratio_and_output_difference(tmp_path, capsys):
    a = make_weights_dir(tmp_path / "a", styles={"wave": {"effect": "shift", "amount": 10.0}}, lite=False)
    b = make_weights_dir(tmp_path / "b", styles={"wave": {"effect": "shift", "amount": 12.5}}, lite=False)
    out = tmp_path / "ab.json"
    assert model_ab.main(["--a", str(a), "--b", str(b), "--size", "64x48", "--threads", "1,2",
                          "--warmup", "1", "--steps", "5", "-o", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["size"] == [64, 48] and result["steps"] == 5
    assert [(row["file"], row["threads"]) for row in result["rows"]] == [("wave.onnx", 1), ("wave.onnx", 2)]
    for row in result["rows"]:
        assert row["max_abs_diff"] == pytest.approx(2.5, abs=1e-4)   # +12.5 against +10 grey levels
        assert row["b_over_a"] == pytest.approx(row["b"]["median_ms"] / row["a"]["median_ms"], abs=1e-3)
        assert row["a"]["q1_ms"] <= row["a"]["median_ms"] <= row["a"]["q3_ms"]
    assert "B/A" in capsys.readouterr().out


@pytest.mark.parametrize("argv,expected", [(["--size", "63x48"], "multiple of 4"), (["--threads", "0"], "1..64"),
                                           (["--steps", "0"], "--steps"), (["--size", "big"], "WIDTHxHEIGHT")])
def test_bad_values_are_refused_at_parse_time(tmp_path, argv, expected, capsys):
    with pytest.raises(SystemExit) as exit_:
        model_ab.main(["--a", str(tmp_path), "--b", str(tmp_path), *argv])
    assert exit_.value.code == 2 and expected in capsys.readouterr().err


def test_bad_output_is_one_error_line_before_any_work(tmp_path, capsys):
    weights = make_weights_dir(tmp_path / "w")
    assert model_ab.main(["--a", str(weights), "--b", str(weights), "-o", str(tmp_path / "ab.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("model_ab.py: error: -o must name a .json file")
