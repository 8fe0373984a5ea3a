"""Distillation: loss and PSNR against hand computations, a tiny end-to-end run, resume, errors."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from stylecam import contract
from stylecam.session import load_model
from trainer.cli import main as train_main
from trainer.distill import DistillConfig, distill, distill_loss, learning_rate, psnr
from trainer.export import export_style
from trainer.metadata import init_provenance
from trainer.nets.vgg import random_vgg_standin
from trainer.train_style import StyleTrainConfig, train_style


@pytest.fixture
def teacher_onnx(tiny_photos, tiny_painting, tmp_path) -> Path:
    """A lite-fr style model trained for 4 steps with a VGG stand-in, exported to ONNX."""
    cfg = StyleTrainConfig(name="tiny", style_image=str(tiny_painting), data=str(tiny_photos), variant="lite-fr",
                           size=32, batch_size=2, iterations=4, style_size=48, holdout=2, checkpoint_every=4,
                           out=str(tmp_path / "teacher_run"), weights_dir=str(tmp_path / "teacher"), device="cpu")
    train_style(cfg, loss_net=random_vgg_standin(["relu1_2", "relu2_2", "relu3_3", "relu4_3"]), progress=False)
    return tmp_path / "teacher" / "tiny.lite.onnx"


def tiny_distill(teacher: Path, photos: Path, out: Path, **over) -> DistillConfig:
    values = dict(teacher=str(teacher), data=str(photos), size=32, batch_size=2, iterations=12, holdout=2,
                  checkpoint_every=6, log_every=1, out=str(out / "run"), output=str(out / "tiny.lite.onnx"),
                  device="cpu", lr=5e-3)
    values.update(over)
    return DistillConfig(**values)


def test_distill_loss_by_hand():
    a = torch.zeros(1, 3, 4, 4)
    assert float(distill_loss(a, a)["total"]) == 0.0
    shifted = distill_loss(a + 25.5, a)           # a constant shift: pixel error, no edge error
    assert float(shifted["pixel"]) == pytest.approx(0.1)
    assert float(shifted["edge"]) == pytest.approx(0.0)
    ramp = torch.arange(4.0).repeat(1, 3, 4, 1) * 51  # x-ramp 0, 51, 102, 153 -> dx = 0.2, dy = 0
    terms = distill_loss(ramp, a, edge_weight=2.0)
    assert float(terms["edge"]) == pytest.approx((0.2 + 0.0) / 2)
    assert float(terms["total"]) == pytest.approx(float(terms["pixel"]) + 2.0 * 0.1)


def test_psnr_and_learning_rate_by_hand():
    a = torch.zeros(2, 2)
    assert psnr(a, a) == math.inf
    assert psnr(a, a + 1) == pytest.approx(20 * math.log10(255.0))
    cfg = DistillConfig(teacher="", data="", lr=1.0, iterations=100)
    assert learning_rate(0, cfg) == pytest.approx(1.0)
    assert learning_rate(50, cfg) == pytest.approx(0.525)
    assert learning_rate(100, cfg) == pytest.approx(0.05)


def test_distill_learns_the_teacher_and_exports_a_style_model(teacher_onnx, tiny_photos, tmp_path):
    summary = distill(tiny_distill(teacher_onnx, tiny_photos, tmp_path, iterations=40, checkpoint_every=20),
                      progress=False)
    ckpt = torch.load(summary["checkpoint"], weights_only=True)
    pixel = [h["pixel"] for h in ckpt["history"]]
    assert np.mean(pixel[-5:]) < 0.7 * np.mean(pixel[:5])
    assert summary["psnr_vs_teacher_db"] > 10
    model = load_model(summary["onnx"], device="cpu")
    meta = model.metadata
    teacher_meta = load_model(str(teacher_onnx), device="cpu").metadata
    assert meta[contract.KEY_VARIANT] == "lite" and meta[contract.KEY_NAME] == "tiny"
    assert meta[contract.KEY_PAINTING] == teacher_meta[contract.KEY_PAINTING]
    assert json.loads(meta[contract.KEY_CONFIG])["half_res_ends"] is True
    training = json.loads(meta[contract.KEY_TRAINING])
    assert training["method"] == "distillation" and training["teacher"] == "tiny.lite.onnx"
    assert training["steps_trained"] == 40 and training["psnr_vs_teacher_db"] == summary["psnr_vs_teacher_db"]
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 36, 52)).astype(np.float32)
    assert model.run(x).shape == x.shape
    run = Path(summary["run_dir"])
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_000020.png", "step_000040.png"]
    assert (run / "loss_curve.png").stat().st_size > 1000
    # a distilled file re-exports (e.g. with another padding) like any shipped model
    again = export_style(summary["onnx"], tmp_path / "zero.onnx", padding="zero")
    assert again["padding"] == "zero" and again["max_abs_diff"] <= again["tolerance"]


def test_ctrl_c_then_resume_reaches_the_same_weights(teacher_onnx, tiny_photos, tmp_path, monkeypatch):
    straight = distill(tiny_distill(teacher_onnx, tiny_photos, tmp_path / "a"), export=False, progress=False)
    from trainer import distill as module
    real_step = module.Distiller.step

    def interrupted_step(self):
        if self.step_index == 5:
            raise KeyboardInterrupt
        return real_step(self)

    monkeypatch.setattr(module.Distiller, "step", interrupted_step)
    cfg = tiny_distill(teacher_onnx, tiny_photos, tmp_path / "b")
    with pytest.raises(KeyboardInterrupt):
        distill(cfg, progress=False)
    checkpoint = tmp_path / "b" / "run" / "checkpoint.pt"
    assert torch.load(checkpoint, weights_only=True)["step"] == 5
    assert not (tmp_path / "b" / "tiny.lite.onnx").exists()
    monkeypatch.setattr(module.Distiller, "step", real_step)
    resumed = distill(cfg, resume=str(checkpoint), export=False, progress=False)
    a = torch.load(straight["checkpoint"], weights_only=True)["model"]
    b = torch.load(resumed["checkpoint"], weights_only=True)["model"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


@pytest.mark.parametrize("argv,message", [
    (["distill", "missing.onnx", "--data", "."], "teacher model not found"),
    (["distill", "{teacher}", "--data", "{photos}", "--size", "30"], "not a multiple of 4"),
    (["distill", "{teacher}", "--data", "{tmp}/nowhere"], "photo folder not found"),
    (["distill", "{notstyle}", "--data", "{photos}"], "not a readable ONNX file"),
])
def test_bad_inputs_give_one_line_errors(argv, message, teacher_onnx, tiny_photos, tmp_path, capsys):
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    fill = {"teacher": teacher_onnx, "photos": tiny_photos, "tmp": tmp_path, "notstyle": tmp_path / "junk.onnx"}
    argv = [a.format(**fill) for a in argv] + ["--out", str(tmp_path / "r"), "-o", str(tmp_path / "x.onnx")]
    assert train_main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") <= 2


def test_style_training_can_start_from_distilled_weights(teacher_onnx, tiny_photos, tiny_painting, tmp_path):
    from stylecam.errors import UserError
    from trainer.train_style import make_trainer
    student = distill(tiny_distill(teacher_onnx, tiny_photos, tmp_path, iterations=2), export=False, progress=False)
    standin = random_vgg_standin(["relu1_2", "relu2_2", "relu3_3", "relu4_3"])
    base = dict(name="tiny", style_image=str(tiny_painting), data=str(tiny_photos), size=32, batch_size=2,
                style_size=48, holdout=2, device="cpu", out=str(tmp_path / "ft"))
    trainer = make_trainer(StyleTrainConfig(**base, variant="lite", init=student["checkpoint"]), loss_net=standin)
    source = torch.load(student["checkpoint"], weights_only=True)["model"]
    assert all(torch.equal(trainer.net.state_dict()[k], source[k]) for k in source)
    provenance = init_provenance(student["checkpoint"])
    assert provenance["init_training"]["method"] == "distillation"
    assert provenance["init_training"]["teacher"] == "tiny.lite.onnx"
    assert provenance["init_training"]["teacher_network"]["channels"] == [8, 16, 32]
    with pytest.raises(UserError, match="different network"):
        make_trainer(StyleTrainConfig(**base, variant="lite-fr", init=student["checkpoint"]), loss_net=standin)
    with pytest.raises(UserError, match="different network"):
        make_trainer(StyleTrainConfig(**base, variant="lite", init=str(teacher_onnx)), loss_net=standin)


# ---- QA fixes: refused values, outputs, precision, modes, hints -----------------------------------

INT8_MODEL = Path(__file__).resolve().parents[1] / "weights" / "int8" / "wave.lite.int8.onnx"


def distill_argv(teacher, photos, tmp_path, *extra):
    return ["distill", str(teacher), "--data", str(photos), "--size", "32", "--batch-size", "2", "--iterations", "2",
            "--holdout", "1", "--device", "cpu", "--out", str(tmp_path / "r"), "-o", str(tmp_path / "x.onnx"), *extra]


@pytest.mark.parametrize("extra", [["--edge-weight", "nan"], ["--edge-weight", "-1"], ["--lr", "nan"], ["--lr", "0"],
                                   ["--lr", "inf"], ["--checkpoint-every", "0"], ["--log-every", "0"],
                                   ["--batch-size", "0"], ["--iterations", "0"], ["--size", "8"], ["--holdout", "-1"]])
def test_distill_refuses_bad_numbers_at_parse_time(extra, tiny_photos, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        train_main(distill_argv(tmp_path / "teacher.onnx", tiny_photos, tmp_path, *extra))
    err = capsys.readouterr().err
    assert exc.value.code == 2 and extra[0] in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_distill_output_that_is_a_folder_fails_before_training(teacher_onnx, tiny_photos, tmp_path, capsys):
    (tmp_path / "dist").mkdir()
    argv = distill_argv(teacher_onnx, tiny_photos, tmp_path)
    argv[argv.index("-o") + 1] = str(tmp_path / "dist")
    assert train_main(argv) == 2
    err = capsys.readouterr().err
    assert "is a folder" in err and "-o" in err and "--out" not in err and "Traceback" not in err
    assert not (tmp_path / "r").exists() and not list((tmp_path / "dist").iterdir())


def test_distill_from_an_int8_model_names_its_precision(tiny_photos, tmp_path, capsys):
    if not INT8_MODEL.is_file():
        pytest.skip("shipped int8 model not present")
    assert train_main(distill_argv(INT8_MODEL, tiny_photos, tmp_path)) == 2
    err = capsys.readouterr().err
    assert "int8" in err and "fp32" in err and "fp16" not in err


def test_distill_stops_when_the_loss_becomes_non_finite(teacher_onnx, tiny_photos, tmp_path, monkeypatch):
    from stylecam.errors import UserError
    from trainer import distill as module
    real = module.distill_loss

    def nan_loss(student, teacher, edge_weight=1.0):
        terms = real(student, teacher, edge_weight)
        return {**terms, "total": terms["total"] * float("nan")}

    monkeypatch.setattr(module, "distill_loss", nan_loss)
    with pytest.raises(UserError, match="diverged"):
        distill(tiny_distill(teacher_onnx, tiny_photos, tmp_path), progress=False)
    assert not (tmp_path / "tiny.lite.onnx").exists()


def test_distilled_files_are_readable_and_the_hint_names_the_file(teacher_onnx, tiny_photos, tmp_path, capsys):
    old = os.umask(0o022)
    try:
        argv = distill_argv(teacher_onnx, tiny_photos, tmp_path)
        argv[argv.index("-o") + 1] = str(tmp_path / "dist" / "wave.onnx")
        assert train_main(argv) == 0
    finally:
        os.umask(old)
    out = capsys.readouterr().out
    assert f"try: stylecam --style {tmp_path / 'dist' / 'wave.onnx'} photo.jpg" in out
    for path in (tmp_path / "dist" / "wave.onnx", tmp_path / "r" / "checkpoint.pt"):
        assert path.stat().st_mode & 0o777 == 0o644, path


def test_distill_hint_for_a_bare_file_name_is_still_a_file():
    from trainer.distill import try_command
    assert try_command("mystyle") == "stylecam --style ./mystyle photo.jpg"
    assert try_command("w.onnx") == "stylecam --style w.onnx photo.jpg"
