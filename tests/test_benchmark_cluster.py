"""benchmarks/cluster_fps.py: bad arguments are refused before any work (one line, exit 2)."""
from __future__ import annotations

import pytest

from benchmarks import cluster_fps


@pytest.fixture(scope="module")
def bench():
    return cluster_fps


@pytest.mark.parametrize("argv, flag", [
    (["--frames", "60,1"], "--frames"), (["--frames", "a"], "--frames"), (["--gop", "1"], "--gop"),
    (["--segment-frames", "0"], "--segment-frames"), (["--rounds", "0"], "--rounds"),
    (["--stabilize", "2"], "--stabilize"), (["--stabilise", "2"], "--stabilise"),
])
def test_bad_values_are_refused_by_the_parser(bench, capsys, argv, flag):
    with pytest.raises(SystemExit) as exit_:
        bench.main(argv)
    assert exit_.value.code == 2
    assert f"argument {flag}" in capsys.readouterr().err


def test_an_output_that_is_no_json_file_is_one_line_before_any_work(bench, capsys, tmp_path):
    assert bench.main(["-o", str(tmp_path / "results.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cluster_fps.py: error: -o must name a .json file")
    assert list(tmp_path.iterdir()) == []


def test_frame_counts_reads_a_list_of_lengths(bench):
    assert bench.frame_counts("60, 90,300") == [60, 90, 300]


def test_old_stabilise_spelling_still_parses_and_is_hidden_from_help(bench):
    parser = bench.build_parser()
    assert parser.parse_args(["--stabilise", "0.5"]).stabilize == 0.5
    assert parser.parse_args([]).stabilize == 0.8
    assert "--stabilize" in parser.format_help() and "stabilise" not in parser.format_help()
