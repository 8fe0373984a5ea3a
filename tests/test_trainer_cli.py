"""The trainer's command line: bad input is one line on stderr and exit code 2 with no traceback;
refused values, outputs in the way, precision and names of models, modes of written files, help
texts, the Gatys command; the network configurations --config no longer offers."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from stylecam.session import load_model
from tests.fakes.training import LAYERS, tiny_config
from trainer.cli import main as train_main
from trainer.export import export_style
from trainer.gatys import gatys
from trainer.losses import LossWeights
from trainer.nets.vgg import random_vgg_standin
from trainer.train_style import train_style


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


def test_reexport_rejects_an_onnx_that_is_not_a_style(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    code, err = run_cli(["export", str(bad), "-o", str(tmp_path / "x.onnx"), "--padding", "zero"], capsys)
    assert_one_line_error(code, err, "bad.onnx")


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


EARLIER_DESIGNS = {
    "lite-v1": {"channels": [8, 16, 32], "residual_blocks": 3, "end_kernel": 3, "separable": False,
                "padding": "reflect"},
    "lite-shuffle": {"channels": [0, 16, 32], "residual_blocks": 3, "end_kernel": 3, "separable": False,
                     "padding": "reflect", "half_res_ends": True},
}


@pytest.mark.parametrize("design", sorted(EARLIER_DESIGNS))
def test_checkpoints_of_earlier_lite_designs_still_export_but_train_no_more(design, tmp_path, capsys):
    """lite-v1 and lite-shuffle are no --config any more; their checkpoints carry their own network."""
    from stylecam.styles import network_name
    from trainer.nets.transformer import TransformerConfig, transformer_from_config
    torch.manual_seed(0)
    net = transformer_from_config(TransformerConfig.from_dict(EARLIER_DESIGNS[design])).eval()
    ckpt = tmp_path / "old.pt"
    torch.save({"config": {"style_image": "p.jpg", "data": "photos", "name": "old", "variant": design}, "step": 1,
                "history": [], "network": EARLIER_DESIGNS[design], "model": net.state_dict()}, ckpt)
    report = export_style(ckpt, tmp_path / "old.lite.onnx")
    model = load_model(report["path"], device="cpu")
    assert model.metadata["stylecam.variant"] == "lite"
    assert network_name(model.metadata["stylecam.config"]) == design
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 32, 48)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.run(x), expected, atol=1e-2)
    err = parse_error(["style", "--style-image", "p.jpg", "--data", "photos", "--name", "t", "--config", design],
                      capsys)
    assert f"invalid choice: '{design}'" in err and "'lite-fr'" in err


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
    path = export_style(trained_checkpoint, tmp_path / "ok.onnx")["path"]
    net = module.network_from_checkpoint(torch.load(trained_checkpoint, weights_only=True))
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
