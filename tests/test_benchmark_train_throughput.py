"""benchmarks/train_throughput.py: every arm computes the same loss, arms alternate, VGG copies stay apart."""
from __future__ import annotations

import copy
import json

import pytest
import torch

from benchmarks import train_throughput as bench
from trainer.losses import LossWeights, PerceptualLoss
from trainer.nets.transformer import build_transformer
from trainer.nets.vgg import random_vgg_standin

LAYERS = ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]


def tiny_inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    batch = torch.rand(2, 3, 32, 32, generator=g) * 255
    style = torch.rand(1, 3, 40, 40, generator=g) * 255
    return batch, style


def test_the_plain_loss_is_stylecams_loss_written_plainly():
    """pytorch/examples' loss (photos through all of VGG) and trainer.losses' (photos only to relu2_2)
    give the same terms for the same output and batch."""
    batch, style = tiny_inputs()
    vgg, weights = random_vgg_standin(LAYERS), LossWeights()
    with torch.no_grad():
        output = build_transformer("lite")(batch)
    plain = bench.plain_terms(vgg, bench.painting_grams(vgg, style, weights), output, batch, weights)
    ours = PerceptualLoss(vgg, style, weights).terms(output, batch)
    for key in ("content", "style", "tv", "total"):
        assert float(plain[key]) == pytest.approx(float(ours[key]), rel=1e-5), key
    assert float(plain["style"]) > 0 and float(plain["content"]) > 0


def test_every_arm_computes_the_same_loss_on_the_same_batch():
    batch, style = tiny_inputs()
    vgg, weights = random_vgg_standin(LAYERS), LossWeights()
    torch.manual_seed(0)
    model = build_transformer("lite")
    first = {key: bench.make_step(arm, copy.deepcopy(model), copy.deepcopy(vgg), style, batch, weights,
                                  torch.device("cpu"))()
             for key, arm in bench.ARMS.items()}
    assert first["plain"] > 0
    for key in ("relu2_2", "grams"):                  # fp32 arms: the same numbers
        assert first[key] == pytest.approx(first["plain"], rel=1e-5), key
    for key in ("bf16", "channels_last"):             # bf16: the same up to its rounding
        assert first[key] == pytest.approx(first["plain"], rel=3e-2), key


def test_a_step_trains_the_network():
    batch, style = tiny_inputs()
    torch.manual_seed(0)
    step = bench.make_step(bench.ARMS["plain"], build_transformer("lite"), random_vgg_standin(LAYERS), style, batch,
                           LossWeights(), torch.device("cpu"))
    losses = [step() for _ in range(6)]
    assert losses[-1] < losses[0]


def test_arms_alternate_step_by_step_after_the_warmup():
    calls = []
    steps = {name: (lambda name=name: calls.append(name) or 1.0) for name in ("a", "b", "c")}
    seconds, first = bench.alternate(steps, warmup=2, timed=3, sync=lambda: None)
    assert calls == ["a", "b", "c"] * 5                 # 2 untimed rounds (the first gives the loss), 3 timed
    assert first == {"a": 1.0, "b": 1.0, "c": 1.0}
    assert {k: len(v) for k, v in seconds.items()} == {"a": 3, "b": 3, "c": 3}


def test_the_channels_last_arm_leaves_the_shared_vgg_as_it_was(tmp_path):
    """Each arm gets its own VGG copy: the reference arm never runs on channels-last weights."""
    vgg = random_vgg_standin(LAYERS)
    args = bench.build_parser().parse_args(["--variants", "lite", "--size", "32", "--style-size", "32",
                                            "--batch-size", "2", "--warmup", "1", "--steps", "1",
                                            "--arms", "channels_last,plain", "--out", str(tmp_path / "t.json")])
    bench.bench_variant("lite", args.arms, args, vgg, torch.device("cpu"))
    conv = vgg.features[0].weight
    assert conv.is_contiguous() and not conv.is_contiguous(memory_format=torch.channels_last)


def test_run_writes_one_row_per_arm_with_a_median_and_the_speedup(tmp_path, capsys):
    out = tmp_path / "t.json"
    args = bench.build_parser().parse_args(["--variants", "lite", "--size", "32", "--style-size", "32",
                                            "--batch-size", "2", "--warmup", "1", "--steps", "3", "--threads", "1",
                                            "--out", str(out)])
    assert bench.run(args, vgg=random_vgg_standin(LAYERS)) == 0
    report = json.loads(out.read_text())
    rows = report["results"][0]["rows"]
    assert [r["arm"] for r in rows] == ["plain", "relu2_2", "bf16", "channels_last"]
    assert [(r["content_upto_relu2_2"], r["bf16"], r["channels_last"]) for r in rows] == [
        (False, False, False), (True, False, False), (True, True, False), (True, True, True)]
    for r in rows:
        assert r["steps"] == 3 and r["q1_s"] <= r["median_s"] <= r["q3_s"]
        assert r["images_per_s"] == pytest.approx(2 / r["median_s"], rel=1e-2)
        assert r["speedup_vs_first"] == pytest.approx(rows[0]["median_s"] / r["median_s"], rel=1e-2)
    assert rows[0]["speedup_vs_first"] == 1.0
    assert report["steps"] == 3 and report["warmup_steps"] == 1 and len(report["load_average_start"]) == 3
    table = out.with_suffix(".md").read_text()
    assert table.count("\n| lite |") == 4 and "| + channels-last |" in table
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("text", ["foo", "plain,plain", "plain,"])
def test_bad_arm_lists_are_refused_at_parse_time(text, capsys):
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--arms", text, "--out", "/nonexistent/x.json"])
    assert exit_.value.code == 2 and "argument --arms" in capsys.readouterr().err
