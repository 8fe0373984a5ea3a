"""No command writes over one of its inputs: same path, through '..', a symlink or a hard link.

Every trainer verb that writes a file, and the runtime, refuse with one line and exit 2 before any
work; the input stays byte-identical and no temporary file is left.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from stylecam import cli as runtime_cli
from tests.fakes.onnx_models import make_style_model, make_weights_dir
from trainer.cli import main as train_main

REPO = Path(__file__).resolve().parents[1]
KINDS = ("same", "dotdot", "symlink", "hardlink")


def other_name(kind: str, target: Path) -> str:
    """A name of the existing file ``target``: itself, through '..', a symlink or a hard link beside it."""
    if kind == "same":
        return str(target)
    if kind == "dotdot":
        (target.parent / "sub").mkdir(exist_ok=True)
        return str(target.parent / "sub" / ".." / target.name)
    link = target.with_name(f"{kind}-{target.name}")
    if kind == "symlink":
        link.symlink_to(target)
    else:
        os.link(target, link)
    return str(link)


def image_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 256, (40, 52, 3), dtype=np.uint8))
    return path


def data_file(path: Path, content: bytes = b"input that must survive") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def trainer_case(verb: str, kind: str, d: Path, photos: Path, painting: Path) -> tuple[list[str], Path]:
    """(argv of ``verb`` whose output is its input reached as ``kind``, that input file)."""
    style = ["style", "--style-image", str(painting), "--data", str(photos), "--name", "t", "--config", "lite",
             "--size", "32", "--iterations", "2", "--batch-size", "2", "--device", "cpu", "--holdout", "1"]
    if verb == "export":
        src = data_file(d / "ck.pt")
        return ["export", str(src), "-o", other_name(kind, src)], src
    if verb == "quantize":
        src = make_style_model(d / "m.lite.onnx", "m", variant="lite")
        return ["quantize", str(src), "--photos", str(photos), "--eval-photos", str(photos),
                "-o", other_name(kind, src)], src
    if verb == "gatys":
        src = image_file(d / "photo.png")
        return ["gatys", "--content", str(src), "--style", str(painting), "--out", other_name(kind, src),
                "--steps", "1"], src
    if verb == "export-vgg":
        src = data_file(d / "vgg.pth")
        return ["export-vgg", "-o", other_name(kind, src), "--vgg-weights", str(src)], src
    if verb == "style --init model":
        src = data_file(d / "w" / "t.lite.onnx")
        return [*style, "--weights-dir", str(d / "w"), "--out", str(d / "run"), "--init", other_name(kind, src)], src
    if verb == "style --init checkpoint":
        src = data_file(d / "run" / "checkpoint.pt")
        return [*style, "--weights-dir", str(d / "w"), "--out", str(d / "run"), "--init", other_name(kind, src)], src
    if verb == "distill":
        src = data_file(d / "teacher.onnx")
        return ["distill", str(src), "--data", str(photos), "-o", other_name(kind, src), "--out", str(d / "drun")], src
    if verb == "classifier":
        src = data_file(d / "cifar.zip")
        return ["classifier", "--dataset", "cifar10", "--data", str(src), "--out", str(d / "o"),
                "--onnx", other_name(kind, src)], src
    if verb == "sweep":
        src = data_file(d / "out" / "results.json")
        return ["sweep", "--dataset", "cifar10", "--data", other_name(kind, src), "--out", str(d / "out")], src
    if verb == "report":
        src = image_file(d / "rep" / "sheet.jpg")
        weights = make_weights_dir(d / "weights")
        return ["report", "wave", "--style-image", other_name(kind, src), "--photos", str(photos),
                "--out", str(d / "rep"), "--weights-dir", str(weights), "--gatys-steps", "0"], src
    if verb == "visualize":
        src = image_file(d / "vis" / "filters.png")
        return ["visualize", other_name(kind, src), "--model", "vgg16", "--layer", "relu1_1",
                "--out", str(d / "vis")], src
    if verb == "convert-checkpoint":
        src = data_file(d / "old.pt")
        return ["convert-checkpoint", str(src), other_name(kind, src)], src
    raise AssertionError(verb)


TRAINER_VERBS = ("export", "quantize", "gatys", "export-vgg", "style --init model", "style --init checkpoint",
                 "distill", "classifier", "sweep", "report", "visualize", "convert-checkpoint")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("verb", TRAINER_VERBS)
def test_trainer_verbs_refuse_to_write_over_an_input(verb, kind, tmp_path, tiny_photos, tiny_painting, capsys):
    argv, src = trainer_case(verb, kind, tmp_path / "case", tiny_photos, tiny_painting)
    before = src.read_bytes()
    code = train_main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("stylecam-train: error: output ") and "Traceback" not in err, err
    assert "would overwrite" in lines[0] and "choose another" in lines[0], err
    assert src.read_bytes() == before
    assert not list(tmp_path.rglob(".*partial*"))


def test_distill_refuses_a_default_output_that_is_the_teacher(tmp_path, tiny_photos, monkeypatch, capsys):
    """`distill weights/wave.lite.onnx --config lite` would write weights/wave.lite.onnx: the teacher itself."""
    teacher = tmp_path / "weights" / "wave.lite.onnx"
    teacher.parent.mkdir()
    shutil.copy(REPO / "weights" / "wave.lite.onnx", teacher)
    before = teacher.read_bytes()
    monkeypatch.chdir(tmp_path)
    code = train_main(["distill", "weights/wave.lite.onnx", "--data", str(tiny_photos), "--config", "lite",
                       "--size", "32", "--iterations", "1", "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "would overwrite the input weights/wave.lite.onnx (given as TEACHER)" in err[0] and "-o" in err[0]
    assert teacher.read_bytes() == before and not (tmp_path / "runs").exists()


def test_style_may_resume_into_its_own_checkpoint(tmp_path, tiny_photos, tiny_painting):
    """Continuing a run rewrites the run's checkpoint by design: --resume is not refused."""
    from trainer.train_style import StyleTrainConfig, check_not_overwriting_inputs
    cfg = StyleTrainConfig(name="t", style_image=str(tiny_painting), data=str(tiny_photos), variant="lite",
                           out=str(tmp_path / "run"), weights_dir=str(tmp_path / "w"))
    data_file(tmp_path / "run" / "checkpoint.pt")
    check_not_overwriting_inputs(cfg, str(tmp_path / "run" / "checkpoint.pt"), export=True)   # no error


@pytest.mark.parametrize("kind", KINDS)
def test_runtime_refuses_to_write_over_its_input(kind, tmp_path, capsys):
    weights = make_weights_dir(tmp_path / "weights")
    photo = image_file(tmp_path / "photo.png")
    before = photo.read_bytes()
    output = other_name(kind, photo)
    code = runtime_cli.main([str(photo), "-o", output, "--weights-dir", str(weights), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and f"output {output} would overwrite" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "choose another -o" in err
    assert photo.read_bytes() == before and not list(tmp_path.glob(".*partial*"))
