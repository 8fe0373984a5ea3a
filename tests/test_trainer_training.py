"""Style training, resume, export, Gatys and the trainer's bad-input errors (CPU, tiny data)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from stylecam import contract
from stylecam.session import load_model
from trainer.cli import main as train_main
from trainer.export import export_style
from trainer.gatys import gatys
from trainer.losses import LossWeights
from trainer.nets.vgg import random_vgg_standin
from trainer.train_style import StyleTrainConfig, train_style

LAYERS = ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]


def tiny_config(photos: Path, painting: Path, out: Path, **over) -> StyleTrainConfig:
    values = dict(name="tiny", style_image=str(painting), data=str(photos), variant="lite", size=32, batch_size=2,
                  iterations=20, style_size=48, holdout=2, checkpoint_every=10, log_every=1, out=str(out / "run"),
                  weights_dir=str(out / "weights"), device="cpu", seed=3)
    values.update(over)
    return StyleTrainConfig(**values)


def early_late(history: list[dict], key: str = "total") -> tuple[float, float]:
    values = [h[key] for h in history]
    return float(np.mean(values[:3])), float(np.mean(values[-3:]))


def test_loss_decreases_over_20_steps_with_standin(tiny_photos, tiny_painting, tmp_path):
    cfg = tiny_config(tiny_photos, tiny_painting, tmp_path, holdout=4)  # 4 training photos
    summary = train_style(cfg, loss_net=random_vgg_standin(LAYERS), export=False, progress=False)
    ckpt = torch.load(summary["checkpoint"], weights_only=True)
    early, late = early_late(ckpt["history"])
    assert late < 0.8 * early
    run = Path(summary["run_dir"])
    assert (run / "loss_curve.png").stat().st_size > 1000
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_000010.png", "step_000020.png"]
    assert not list(run.glob(".*partial*"))
    assert ckpt["config"]["iterations"] == 20 and ckpt["step"] == 20


def test_loss_decreases_with_real_vgg(tiny_photos, tiny_painting, tmp_path, vgg_weights_path):
    if vgg_weights_path is None:
        pytest.skip("STYLECAM_VGG16 not set")
    cfg = tiny_config(tiny_photos, tiny_painting, tmp_path, vgg_weights=vgg_weights_path)
    summary = train_style(cfg, export=False, progress=False)
    early, late = early_late(torch.load(summary["checkpoint"], weights_only=True)["history"])
    assert late < 0.8 * early


def test_ctrl_c_keeps_a_resumable_checkpoint(tiny_photos, tiny_painting, tmp_path, monkeypatch):
    from trainer import train_style as module
    real_step = module.Trainer.step

    def interrupted_step(self):
        if self.step_index == 3:
            raise KeyboardInterrupt
        return real_step(self)

    monkeypatch.setattr(module.Trainer, "step", interrupted_step)
    cfg = tiny_config(tiny_photos, tiny_painting, tmp_path, iterations=8, checkpoint_every=2)
    with pytest.raises(KeyboardInterrupt):
        train_style(cfg, loss_net=random_vgg_standin(LAYERS), progress=False)
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 3
    assert not (tmp_path / "weights").exists() or not list((tmp_path / "weights").iterdir())
    assert not list((tmp_path / "run").glob(".*partial*"))


@pytest.mark.gpu
def test_training_step_on_gpu(tiny_photos, tiny_painting, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    cfg = tiny_config(tiny_photos, tiny_painting, tmp_path, iterations=3, device="cuda")
    summary = train_style(cfg, loss_net=random_vgg_standin(LAYERS), export=True, progress=False)
    assert summary["steps"] == 3 and Path(summary["onnx"]).is_file()


def test_resume_is_bit_exact(tiny_photos, tiny_painting, tmp_path):
    straight = tiny_config(tiny_photos, tiny_painting, tmp_path / "a", iterations=6, checkpoint_every=3)
    train_style(straight, loss_net=random_vgg_standin(LAYERS), export=False, progress=False)
    first = tiny_config(tiny_photos, tiny_painting, tmp_path / "b", iterations=3, checkpoint_every=3)
    half = train_style(first, loss_net=random_vgg_standin(LAYERS), export=False, progress=False)
    second = tiny_config(tiny_photos, tiny_painting, tmp_path / "b", iterations=6, checkpoint_every=3)
    train_style(second, loss_net=random_vgg_standin(LAYERS), resume=half["checkpoint"], export=False, progress=False)
    a = torch.load(tmp_path / "a" / "run" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "run" / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == 6
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert [h["total"] for h in a["history"]] == [h["total"] for h in b["history"]]


@pytest.fixture
def trained_checkpoint(tiny_photos, tiny_painting, tmp_path) -> Path:
    cfg = tiny_config(tiny_photos, tiny_painting, tmp_path, iterations=2)
    return Path(train_style(cfg, loss_net=random_vgg_standin(LAYERS), export=False, progress=False)["checkpoint"])


def test_export_parity_and_metadata_round_trip(trained_checkpoint, tmp_path):
    report = export_style(trained_checkpoint, tmp_path / "tiny.lite.onnx")
    assert report["max_abs_diff"] <= 0.05
    loaded = load_model(report["path"], device="cpu")
    meta = loaded.metadata
    assert contract.contract_problems(meta) == []
    assert meta[contract.KEY_NAME] == "tiny" and meta[contract.KEY_VARIANT] == "lite"
    assert meta[contract.KEY_PADDING] == "reflect"
    assert json.loads(meta[contract.KEY_CONFIG])["channels"] == [0, 16, 32]
    assert json.loads(meta[contract.KEY_TRAINING])["steps_trained"] == 2
    assert (loaded.input_name, loaded.output_name) == (contract.STYLE_INPUT, contract.STYLE_OUTPUT)
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 36, 44)).astype(np.float32)
    assert loaded.session.run(None, {"image": x})[0].shape == (1, 3, 36, 44)


def test_export_with_other_padding_and_fp16(trained_checkpoint, tmp_path):
    zero = export_style(trained_checkpoint, tmp_path / "zero.onnx", padding="zero")
    half = export_style(trained_checkpoint, tmp_path / "half.onnx", fp16=True)
    assert load_model(zero["path"], "cpu").metadata[contract.KEY_PADDING] == "zero"
    assert load_model(half["path"], "cpu").metadata["stylecam.precision"] == "fp16"
    assert half["max_abs_diff"] <= 4.0
    assert os.path.getsize(half["path"]) < os.path.getsize(zero["path"])


def test_reexport_from_onnx_equals_export_from_checkpoint(trained_checkpoint, tmp_path):
    """A shipped ONNX file re-exported with zero padding == the checkpoint exported with zero padding."""
    reflect = export_style(trained_checkpoint, tmp_path / "reflect.onnx")
    direct = export_style(trained_checkpoint, tmp_path / "direct.onnx", padding="zero")
    via_onnx = export_style(reflect["path"], tmp_path / "via.onnx", padding="zero")
    a, b = load_model(direct["path"], "cpu"), load_model(via_onnx["path"], "cpu")
    x = np.random.default_rng(1).uniform(0, 255, (1, 3, 40, 52)).astype(np.float32)
    np.testing.assert_allclose(a.session.run(None, {"image": x})[0], b.session.run(None, {"image": x})[0], atol=1e-3)
    assert b.metadata[contract.KEY_PADDING] == "zero"
    for key in (contract.KEY_NAME, contract.KEY_VARIANT, contract.KEY_CONFIG, contract.KEY_TRAINING):
        assert b.metadata[key] == a.metadata[key]
    r = load_model(reflect["path"], "cpu").session.run(None, {"image": x})[0]
    assert np.abs(r - b.session.run(None, {"image": x})[0]).max() > 1e-3  # padding really changed


def test_reexport_rejects_an_onnx_that_is_not_a_style(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    code, err = run_cli(["export", str(bad), "-o", str(tmp_path / "x.onnx"), "--padding", "zero"], capsys)
    assert_one_line_error(code, err, "bad.onnx")


def test_gatys_reduces_its_loss():
    torch.manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    content = torch.stack([xx * 8, yy * 8, (xx + yy) * 4])[None]
    style = (torch.rand(1, 3, 32, 32) > 0.5).float() * 255
    for optimizer in ("lbfgs", "adam"):
        image, history = gatys(content, style, LossWeights(), steps=15, optimizer=optimizer,
                               loss_net=random_vgg_standin(LAYERS), progress=False)
        assert image.shape == (3, 32, 32) and image.dtype == torch.uint8
        assert history[-1]["total"] < 0.7 * history[0]["total"]


# ---- bad input: one line, exit code 2, no traceback -------------------------------------------

def run_cli(argv, capsys) -> tuple[int, str]:
    code = train_main(argv)
    err = capsys.readouterr().err
    return code, err


def style_argv(photos, painting, tmp_path, *extra):
    return ["style", "--style-image", str(painting), "--data", str(photos), "--name", "t", "--config", "lite",
            "--size", "32", "--iterations", "2", "--batch-size", "2", "--out", str(tmp_path / "run"),
            "--weights-dir", str(tmp_path / "w"), "--device", "cpu", "--holdout", "1", *extra]


def assert_one_line_error(code, err, *words):
    assert code == 2
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("stylecam-train: error:")]
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], lines[0]


def test_missing_style_image(tiny_photos, tmp_path, capsys):
    code, err = run_cli(style_argv(tiny_photos, tmp_path / "nope.jpg", tmp_path), capsys)
    assert_one_line_error(code, err, "nope.jpg")


def test_unreadable_style_image(tiny_photos, tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image at all")
    code, err = run_cli(style_argv(tiny_photos, bad, tmp_path), capsys)
    assert_one_line_error(code, err, "bad.jpg")


def test_photo_folder_without_images(tiny_painting, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("hello")
    code, err = run_cli(style_argv(empty, tiny_painting, tmp_path), capsys)
    assert_one_line_error(code, err, str(empty))


def test_wrong_vgg_weights_file(tiny_photos, tiny_painting, tmp_path, capsys):
    wrong = tmp_path / "wrong.pth"
    torch.save({"0.weight": torch.zeros(8, 3, 3, 3)}, wrong)
    code, err = run_cli(style_argv(tiny_photos, tiny_painting, tmp_path, "--vgg-weights", str(wrong)), capsys)
    assert_one_line_error(code, err, "wrong.pth", "0.weight")


def test_resume_from_incompatible_checkpoint(tiny_photos, tiny_painting, tmp_path, capsys):
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": [1, 2, 3]}, foreign)
    code, err = run_cli(style_argv(tiny_photos, tiny_painting, tmp_path, "--resume", str(foreign)), capsys)
    assert_one_line_error(code, err, "foreign.pt")


def test_resume_with_other_network_size(trained_checkpoint, tiny_photos, tiny_painting, tmp_path, capsys):
    argv = style_argv(tiny_photos, tiny_painting, tmp_path, "--resume", str(trained_checkpoint))
    argv[argv.index("lite")] = "full"
    code, err = run_cli(argv, capsys)
    assert_one_line_error(code, err, "lite")


def test_unwritable_output(tiny_photos, tiny_painting, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    argv = style_argv(tiny_photos, tiny_painting, tmp_path)
    argv[argv.index("--out") + 1] = str(blocker / "run")
    code, err = run_cli(argv, capsys)
    assert_one_line_error(code, err, "file")


def test_export_of_missing_checkpoint(tmp_path, capsys):
    code, err = run_cli(["export", str(tmp_path / "none.pt"), "-o", str(tmp_path / "x.onnx")], capsys)
    assert_one_line_error(code, err, "none.pt")


def test_non_images_are_skipped_with_a_count(tiny_photos, tiny_painting, tmp_path, vgg_weights_path, capsys):
    if vgg_weights_path is None:
        pytest.skip("STYLECAM_VGG16 not set (the CLI needs VGG weights)")
    (tiny_photos / "readme.txt").write_text("not a photo")
    (tiny_photos / "broken.jpg").write_bytes(b"\xff\xd8 broken")
    code = train_main(style_argv(tiny_photos, tiny_painting, tmp_path, "--vgg-weights", vgg_weights_path))
    out = capsys.readouterr().out
    assert code == 0
    assert "skipped 2 file(s)" in out
    assert (tmp_path / "w" / "t.lite.onnx").is_file()


def test_torchrun_two_cpu_processes_match_one(tiny_photos, tiny_painting, tmp_path, vgg_weights_path):
    """DDP over 2 gloo processes gives the same weights as one process on the same global batch."""
    if vgg_weights_path is None:
        pytest.skip("STYLECAM_VGG16 not set (the CLI needs VGG weights)")
    common = ["--style-image", str(tiny_painting), "--data", str(tiny_photos), "--name", "t", "--config", "lite",
              "--size", "32", "--iterations", "3", "--batch-size", "4", "--device", "cpu", "--holdout", "1",
              "--no-export", "--vgg-weights", vgg_weights_path]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
                          "-m", "trainer.cli", "style", *common, "--out", str(tmp_path / "ddp")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    assert train_main(["style", *common, "--out", str(tmp_path / "one")]) == 0
    half_batch = [a if a != "4" else "2" for a in common]
    assert train_main(["style", *half_batch, "--out", str(tmp_path / "half")]) == 0
    ddp_w, one_w, half_w = (torch.load(tmp_path / run / "checkpoint.pt", weights_only=True)
                            for run in ("ddp", "one", "half"))
    assert ddp_w["step"] == one_w["step"] == 3

    def distance(x, y):
        return sum(float((x["model"][k] - y["model"][k]).abs().sum()) for k in x["model"])

    # Adam amplifies float-order differences, so exact equality is not expected; but synchronised
    # gradients over the global batch must land far closer to the one-process run than an unsynchronised
    # run on half the batch does.
    assert distance(ddp_w, one_w) < 0.5 * distance(half_w, one_w)


@pytest.mark.parametrize("config,variant,file_name", [("full", "full", "w.onnx"), ("lite", "lite", "w.lite.onnx"),
                                                      ("lite-fr", "lite", "w.lite.onnx"), ("lite-v1", "lite", "w.lite.onnx")])
def test_every_lite_config_exports_as_the_lite_variant(config, variant, file_name, tmp_path):
    """The runtime knows two variants (full, lite); which lite network a file holds is in its config metadata."""
    from trainer.metadata import style_metadata
    from trainer.nets.transformer import CONFIGS, runtime_variant
    assert runtime_variant(config) == variant
    cfg = StyleTrainConfig(style_image="p.jpg", data="photos", name="w", variant=config, weights_dir=str(tmp_path))
    assert cfg.onnx_path() == tmp_path / file_name
    ckpt = {"config": {"style_image": "p.jpg", "data": "photos", "name": "w", "variant": config}, "step": 1, "history": [], "network": CONFIGS[config].to_dict()}
    meta = style_metadata(ckpt, "reflect", "fp32")
    assert meta["stylecam.variant"] == variant


def test_sensor_noise_is_clamped_sized_and_repeatable_per_step():
    from trainer.train_style import add_sensor_noise
    batch = torch.full((2, 3, 64, 64), 128.0)
    batch[0, :, :8] = 0.0
    noisy = add_sensor_noise(batch, 2.0, seed=1, step=5)
    assert noisy.shape == batch.shape and noisy.min() >= 0 and noisy.max() <= 255
    assert (noisy - batch)[1].std().item() == pytest.approx(2.0, rel=0.05)
    assert torch.equal(noisy, add_sensor_noise(batch, 2.0, seed=1, step=5))       # same draw on resume
    assert not torch.equal(noisy, add_sensor_noise(batch, 2.0, seed=1, step=6))
    assert torch.equal(add_sensor_noise(batch, 0.0, seed=1, step=5), batch)


def test_stability_loss_by_hand():
    from trainer.train_style import stability_loss
    a = torch.zeros((1, 3, 2, 2))
    b = a.clone()
    b[0, 0, 0, 0] = 6.0                                   # one of 12 values differs by 6
    assert stability_loss(a, b).item() == pytest.approx(36.0 / 12)


def test_stability_term_is_logged_resumes_exactly_and_steadies_the_output(tiny_photos, tiny_painting, tmp_path):
    """--stability-weight: the term joins the total, resumes bit-exactly, and a network trained with it
    changes its output less under the same noise than one trained without."""
    from trainer.train_style import add_sensor_noise
    kw = dict(holdout=4, stability_noise=4.0, lr=1e-2)
    plain = train_style(tiny_config(tiny_photos, tiny_painting, tmp_path / "plain", **kw),
                        loss_net=random_vgg_standin(LAYERS), export=False, progress=False)
    steady = train_style(tiny_config(tiny_photos, tiny_painting, tmp_path / "steady", stability_weight=50.0, **kw),
                         loss_net=random_vgg_standin(LAYERS), export=False, progress=False)
    history = torch.load(steady["checkpoint"], weights_only=True)["history"]
    for h in history:
        assert h["stability"] > 0
        assert h["total"] == pytest.approx(h["content"] + h["style"] + h["tv"] + h["stability"], rel=1e-5)
    assert "stability" not in torch.load(plain["checkpoint"], weights_only=True)["history"][0]

    from trainer.train_style import make_trainer
    def noise_change(run) -> float:
        ckpt = torch.load(run["checkpoint"], weights_only=True)
        cfg = StyleTrainConfig(**ckpt["config"])
        net = make_trainer(cfg, loss_net=random_vgg_standin(LAYERS)).net
        net.load_state_dict(ckpt["model"])
        net.eval()
        from trainer.photos import load_rgb
        x = torch.stack([load_rgb(f)[:, :32, :32].float() for f in sorted(tiny_photos.iterdir())[:2]])
        with torch.no_grad():
            return (net(x) - net(add_sensor_noise(x, 4.0, seed=9, step=0))).abs().mean().item()
    assert noise_change(steady) < 0.8 * noise_change(plain)

    a = tiny_config(tiny_photos, tiny_painting, tmp_path / "a", iterations=4, checkpoint_every=2, stability_weight=1.0)
    train_style(a, loss_net=random_vgg_standin(LAYERS), export=False, progress=False)
    first = tiny_config(tiny_photos, tiny_painting, tmp_path / "b", iterations=2, checkpoint_every=2, stability_weight=1.0)
    half = train_style(first, loss_net=random_vgg_standin(LAYERS), export=False, progress=False)
    second = replace(first, iterations=4)
    train_style(second, loss_net=random_vgg_standin(LAYERS), resume=half["checkpoint"], export=False, progress=False)
    ca = torch.load(tmp_path / "a" / "run" / "checkpoint.pt", weights_only=True)
    cb = torch.load(tmp_path / "b" / "run" / "checkpoint.pt", weights_only=True)
    assert [h["stability"] for h in ca["history"]] == [h["stability"] for h in cb["history"]]
    for key, value in ca["model"].items():
        assert torch.equal(value, cb["model"][key]), key


# ---- QA fixes: refused values, outputs, precision, names, modes, hints, help, Gatys -----------

REPO_ROOT = Path(__file__).resolve().parents[1]
INT8_MODEL = REPO_ROOT / "weights" / "int8" / "wave.lite.int8.onnx"


def parse_error(argv, capsys) -> str:
    """argparse refuses argv: exit code 2, no traceback; returns stderr."""
    with pytest.raises(SystemExit) as exc:
        train_main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "Traceback" not in err
    return err


def gatys_argv(photo, painting, out, *extra):
    return ["gatys", "--content", str(photo), "--style", str(painting), "--out", str(out), "--steps", "2",
            "--size", "32", "--device", "cpu", *extra]


@pytest.mark.parametrize("extra", [["--style-weight", "nan"], ["--content-weight", "-1"], ["--tv-weight", "inf"],
                                   ["--stability-weight", "nan"], ["--stability-noise", "-2"], ["--lr", "nan"],
                                   ["--lr", "0"], ["--lr", "-1e-3"]])
def test_style_refuses_nan_inf_and_negative_numbers(extra, tiny_photos, tiny_painting, tmp_path, capsys):
    err = parse_error(style_argv(tiny_photos, tiny_painting, tmp_path, *extra), capsys)
    assert extra[0] in err and "expected" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("extra", [["--style-weight", "nan"], ["--tv-weight", "-1"], ["--content-weight", "inf"],
                                   ["--style-weight-ratio", "1"], ["--style-weight-ratio", "nan"]])
def test_gatys_refuses_nan_inf_and_negative_numbers(extra, tiny_painting, tmp_path, capsys):
    err = parse_error(gatys_argv(tiny_painting, tiny_painting, tmp_path / "g.png", *extra), capsys)
    assert extra[0] in err
    assert not (tmp_path / "g.png").exists()


@pytest.mark.parametrize("extra", [["--tolerance", "nan"], ["--tolerance", "-1"], ["--opset", "5"], ["--opset", "999"],
                                   ["--opset", "10"], ["--opset", "24"]])
def test_export_refuses_bad_tolerance_and_opsets_torch_or_the_runtime_cannot_handle(extra, tmp_path, capsys):
    err = parse_error(["export", str(tmp_path / "c.pt"), "-o", str(tmp_path / "x.onnx"), *extra], capsys)
    assert extra[0] in err and "graph" not in capsys.readouterr().out


def test_export_opsets_at_both_ends_of_the_range_work(trained_checkpoint, tmp_path):
    from stylecam.errors import UserError
    from trainer.export import OPSETS
    for opset in OPSETS:
        assert export_style(trained_checkpoint, tmp_path / f"o{opset}.onnx", opset=opset)["max_abs_diff"] <= 0.05
    with pytest.raises(UserError, match="--opset 5"):
        export_style(trained_checkpoint, tmp_path / "bad.onnx", opset=5)
    assert not (tmp_path / "bad.onnx").exists()


def test_export_refuses_a_network_that_outputs_nan(trained_checkpoint, tmp_path, capsys):
    """NaN weights once exported an all-black model reporting "max abs diff 0" (max() dropped the NaN)."""
    ckpt = torch.load(trained_checkpoint, weights_only=True)
    first = next(iter(ckpt["model"]))
    ckpt["model"][first] = torch.full_like(ckpt["model"][first], float("nan"))
    torch.save(ckpt, tmp_path / "nan.pt")
    code, err = run_cli(["export", str(tmp_path / "nan.pt"), "-o", str(tmp_path / "out" / "nan.onnx")], capsys)
    assert_one_line_error(code, err, "NaN")
    assert not (tmp_path / "out").exists()       # neither the model nor a temporary, nor the folder made for them


def test_onnx_parity_returns_nan_instead_of_dropping_it(trained_checkpoint, tmp_path, monkeypatch):
    import math

    from trainer import export as module
    from trainer.network_files import network_from_checkpoint
    path = export_style(trained_checkpoint, tmp_path / "ok.onnx")["path"]
    net = network_from_checkpoint(torch.load(trained_checkpoint, weights_only=True))
    real_abs = module.np.abs

    def nan_abs(a):                     # the runtime side of the comparison turns NaN
        out = real_abs(a)
        out.flat[0] = np.nan
        return out

    monkeypatch.setattr(module.np, "abs", nan_abs)
    assert math.isnan(module.onnx_parity(path, net))


def test_training_stops_when_the_loss_becomes_non_finite(tiny_photos, tiny_painting, tmp_path):
    from stylecam.errors import UserError
    cfg = tiny_config(tiny_photos, tiny_painting, tmp_path, iterations=6, lr=1e30)
    with pytest.raises(UserError, match="diverged") as exc:
        train_style(cfg, loss_net=random_vgg_standin(LAYERS), progress=False)
    assert "--lr" in exc.value.hint
    assert not (tmp_path / "weights").exists() or not list((tmp_path / "weights").iterdir())


def test_outputs_that_are_folders_or_unwritable_are_one_line_errors(trained_checkpoint, tiny_painting, tmp_path, capsys):
    folder = tmp_path / "exp"
    folder.mkdir()
    blocker = tmp_path / "regular"
    blocker.write_text("x")
    for target, word in ((folder, "folder"), (blocker / "x.onnx", "regular")):
        code, err = run_cli(["export", str(trained_checkpoint), "-o", str(target)], capsys)
        assert_one_line_error(code, err, word, "-o")
        assert "--out" not in err
    code, err = run_cli(gatys_argv(tiny_painting, tiny_painting, folder), capsys)
    assert_one_line_error(code, err, "folder", "--out")
    code, err = run_cli(gatys_argv(tiny_painting, tiny_painting, blocker / "g.png"), capsys)
    assert_one_line_error(code, err, "regular", "--out")
    assert not list(folder.iterdir()) and not list(tmp_path.glob(".*"))


@pytest.mark.parametrize("extra", [["--size", "0"], ["--size", "4"], ["--size", "-5"], ["--style-size", "-3"],
                                   ["--style-size", "8"], ["--size", "100000"]])
def test_style_refuses_sizes_vgg_cannot_use(extra, tiny_photos, tiny_painting, tmp_path, capsys):
    assert extra[0] in parse_error(style_argv(tiny_photos, tiny_painting, tmp_path, *extra), capsys)


@pytest.mark.parametrize("extra", [["--size", "-5"], ["--size", "4"], ["--size", "100000"], ["--style-size", "-3"],
                                   ["--style-size", "15"]])
def test_gatys_refuses_sizes_vgg_cannot_use(extra, tiny_painting, tmp_path, capsys):
    assert extra[0] in parse_error(gatys_argv(tiny_painting, tiny_painting, tmp_path / "g.png", *extra), capsys)


def test_gatys_refuses_a_size_that_leaves_a_side_too_small(tiny_photos, tiny_painting, tmp_path, capsys):
    """52x40 photo at --size 16 is 16x12: within the range, but too small for VGG-16 on its short side."""
    photo = sorted(tiny_photos.iterdir())[0]
    code, err = run_cli(gatys_argv(photo, tiny_painting, tmp_path / "g.png", "--size", "16"), capsys)
    assert_one_line_error(code, err, "--size 16", "16x12")
    assert not (tmp_path / "g.png").exists()


def test_style_size_of_a_multiple_of_4_below_16_is_a_user_error(tiny_photos, tiny_painting, tmp_path):
    from stylecam.errors import UserError
    from trainer.train_style import make_trainer
    with pytest.raises(UserError, match="--size 12"):
        make_trainer(tiny_config(tiny_photos, tiny_painting, tmp_path, size=12), loss_net=random_vgg_standin(LAYERS))


@pytest.mark.parametrize("extra", [["--checkpoint-every", "0"], ["--log-every", "0"], ["--batch-size", "0"],
                                   ["--iterations", "0"], ["--iterations", "-1"], ["--holdout", "-1"]])
def test_style_refuses_zero_counts(extra, tiny_photos, tiny_painting, tmp_path, capsys):
    assert extra[0] in parse_error(style_argv(tiny_photos, tiny_painting, tmp_path, *extra, "--no-export"), capsys)
    assert not (tmp_path / "run").exists()


def test_int8_and_fp16_models_are_named_by_their_precision(trained_checkpoint, tiny_photos, tiny_painting, tmp_path,
                                                            capsys):
    half = export_style(trained_checkpoint, tmp_path / "half.onnx", fp16=True)["path"]
    code, err = run_cli(["export", half, "-o", str(tmp_path / "x.onnx")], capsys)
    assert_one_line_error(code, err, "fp16", "fp32")
    if not INT8_MODEL.is_file():
        pytest.skip("shipped int8 model not present")
    code, err = run_cli(["export", str(INT8_MODEL), "-o", str(tmp_path / "x.onnx")], capsys)
    assert_one_line_error(code, err, "int8", "fp32", "wave.lite.onnx")
    assert "fp16" not in err
    code, err = run_cli(style_argv(tiny_photos, tiny_painting, tmp_path, "--init", str(INT8_MODEL)), capsys)
    assert_one_line_error(code, err, "int8")


@pytest.mark.parametrize("name", ["../evil", "a/b", "", ".hidden", "/abs"])
def test_style_name_must_be_a_plain_file_name(name, tiny_photos, tiny_painting, tmp_path, capsys):
    argv = style_argv(tiny_photos, tiny_painting, tmp_path)
    argv[argv.index("--name") + 1] = name
    assert "--name" in parse_error(argv, capsys)
    assert not (tmp_path / "run").exists() and not (tmp_path / "evil.lite.onnx").exists()


@pytest.fixture
def standin_vgg(monkeypatch):
    """CLI runs load this stand-in instead of the real VGG-16."""
    from trainer import gatys as gatys_module
    from trainer import train_style as style_module

    def load(layers, weights=None):
        return random_vgg_standin(list(layers))
    monkeypatch.setattr(style_module, "load_vgg16", load)
    monkeypatch.setattr(gatys_module, "load_vgg16", load)


@pytest.fixture
def usual_umask():
    old = os.umask(0o022)
    yield 0o644
    os.umask(old)


def test_written_files_have_the_usual_mode(trained_checkpoint, tiny_photos, tiny_painting, tmp_path, capsys,
                                           standin_vgg, usual_umask):
    """mkstemp files are 0600; what the trainer hands over must be readable like any other file."""
    code, _ = run_cli(["export", str(trained_checkpoint), "-o", str(tmp_path / "e.onnx")], capsys)
    assert code == 0
    assert train_main(style_argv(tiny_photos, tiny_painting, tmp_path)) == 0
    assert train_main(gatys_argv(tiny_painting, tiny_painting, tmp_path / "g.png")) == 0
    for path in (tmp_path / "e.onnx", tmp_path / "run" / "checkpoint.pt", tmp_path / "w" / "t.lite.onnx",
                 tmp_path / "g.png", tmp_path / "run" / "loss_curve.png"):
        assert path.stat().st_mode & 0o777 == usual_umask, path


def test_style_hint_names_a_weights_dir_the_runtime_does_not_search(tiny_photos, tiny_painting, tmp_path, capsys,
                                                                     standin_vgg, monkeypatch):
    assert train_main(style_argv(tiny_photos, tiny_painting, tmp_path)) == 0
    out = capsys.readouterr().out
    assert f"try: stylecam --weights-dir {tmp_path / 'w'} --style t photo.jpg" in out
    from trainer.train_style import try_command
    monkeypatch.setenv("STYLECAM_WEIGHTS", str(tmp_path / "w"))
    assert try_command(tmp_path / "w", "t") == "stylecam --style t photo.jpg"


def test_gatys_writes_the_format_of_the_suffix(tiny_painting, tmp_path, capsys, standin_vgg):
    from PIL import Image
    for suffix, fmt in ((".jpg", "JPEG"), (".png", "PNG"), (".webp", "WEBP")):
        out = tmp_path / f"g{suffix}"
        assert train_main(gatys_argv(tiny_painting, tiny_painting, out)) == 0
        with Image.open(out) as img:
            assert img.format == fmt and img.size == (32, 32)
    for bad in ("g.xyz", "g"):
        code, err = run_cli(gatys_argv(tiny_painting, tiny_painting, tmp_path / bad), capsys)
        assert_one_line_error(code, err, "--out", ".png")
        assert not (tmp_path / bad).exists()
    assert not list(tmp_path.glob(".*"))


def test_gatys_reports_the_loss_of_the_image_it_returns(tiny_painting):
    from trainer.losses import PerceptualLoss
    from trainer.photos import load_rgb
    content = load_rgb(tiny_painting)[None].float()
    style = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 255
    net = random_vgg_standin(LAYERS)
    image, history = gatys(content, style, LossWeights(), steps=2, loss_net=net, progress=False)
    assert [h["step"] for h in history] == [0, 1, 2]
    loss = PerceptualLoss(net, style, LossWeights())
    with torch.no_grad():
        start = loss.terms(content, content)
        final = loss.terms(image[None].float(), content)
    assert history[0]["total"] == pytest.approx(float(start["total"]), rel=1e-4)
    assert history[0]["content"] == pytest.approx(0.0, abs=1e-3)            # step 0 is the photo itself
    assert history[-1]["total"] == pytest.approx(float(final["total"]), rel=1e-4)
    assert history[-1]["content"] > history[0]["content"]                    # the returned image moved


def test_gatys_cli_prints_the_final_loss(tiny_photos, tiny_painting, tmp_path, capsys, standin_vgg):
    """One Adam step moves the photo by grey levels: the loss printed last is that of the image written,
    not the loss of the photo evaluated before the step (which once printed "a -> a (content 0)")."""
    photo = sorted(tiny_photos.iterdir())[0]
    argv = gatys_argv(photo, tiny_painting, tmp_path / "g.png", "--optimizer", "adam")
    argv[argv.index("--steps") + 1] = "1"
    assert train_main(argv) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    first, final = (float(v) for v in line.split("loss ")[1].split(" (")[0].split(" -> "))
    content = float(line.split("(content ")[1].split(",")[0])
    assert final != first and content > 0 and line.endswith("in 1 step")


def test_help_texts_are_complete_and_say_each_default_once():
    from trainer.cli import DefaultsHelpFormatter, build_parser
    sub = next(a for a in build_parser()._actions if isinstance(a, __import__("argparse")._SubParsersAction))
    for command in ("style", "distill", "export", "export-vgg", "gatys"):
        parser = sub.choices[command]
        formatter = DefaultsHelpFormatter(command)
        for action in parser._actions:
            assert action.help, f"{command} {action.option_strings or action.dest} has no help"
            text = formatter._get_help_string(action) % {"default": action.default, "prog": command}
            assert text.lower().count("default") <= 1, f"{command}: {text}"
            assert "(default: None)" not in text
        helptext = parser.format_help()
        assert "of the painting of" not in helptext and "painting of the painting" not in helptext


def test_style_output_folders_in_the_way_fail_before_training_and_name_their_option(tiny_photos, tiny_painting,
                                                                                     tmp_path, capsys):
    (tmp_path / "w" / "t.lite.onnx").mkdir(parents=True)
    code, err = run_cli(style_argv(tiny_photos, tiny_painting, tmp_path), capsys)
    assert_one_line_error(code, err, "t.lite.onnx", "is a folder", "--weights-dir")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    argv = style_argv(tiny_photos, tiny_painting, tmp_path)
    argv[argv.index("--out") + 1] = str(blocker / "run")
    code, err = run_cli(argv, capsys)
    assert_one_line_error(code, err, "file", "choose another --out folder")
