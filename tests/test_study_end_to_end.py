"""`stylecam study` end to end on tiny fake ONNX models: every promised file, exact expectations."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from stylecam import cli, study, study_measure, study_report
from tests.fakes.onnx_models import make_classifier_model, make_style_model, make_weights_dir

REPEAT = 3
MODES = ("reflect", "zero", "replicate", "prepad")


def make_fake_vgg(path: Path) -> Path:
    """ONNX "image" (N,3,H,W) -> "features" (N,4,H/2,W/2): a fixed stride-2 conv + ReLU."""
    w = np.random.default_rng(0).normal(0, 0.1, size=(4, 3, 3, 3)).astype(np.float32)
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 4, "h", "w"])
    nodes = [helper.make_node("Conv", ["image", "w"], ["c"], kernel_shape=[3, 3], strides=[2, 2],
                              pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["features"])]
    graph = helper.make_graph(nodes, "fake_vgg", [x], [y], initializer=[numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model.metadata_props.add(key="stylecam.kind", value="features")  # as trainer/export_vgg.py writes
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    weights = make_weights_dir(root / "weights", styles={
        "wave": {"effect": "blur"},                       # zero-padded blur: a dark border rim
        "muse": {"effect": "shift", "amount": [12.0, 0.0, -6.0]},
    }, lite=False, paddings=("zero", "replicate"))
    images = root / "images"
    images.mkdir()
    yy, xx = np.mgrid[0:40, 0:56]
    for i in range(2):
        img = np.stack([(xx * 3 + 40 * i) % 200 + 30, (yy * 4) % 200 + 30, np.full_like(xx, 90 + 30 * i)], -1)
        cv2.imwrite(str(images / f"img{i}.png"), img.astype(np.uint8))
    vgg = make_fake_vgg(root / "vgg.onnx")
    clf = make_classifier_model(root / "colors.onnx")
    return {"root": root, "weights": weights, "images": images, "vgg": vgg, "classifier": clf}


def run_study(argv: list[str]) -> int:
    """`stylecam study ARGV...`; its exit code."""
    return cli.main(["study", *map(str, argv)])


def _argv(setup, out, *extra):
    return [str(setup["images"]), "-o", str(out), "--weights-dir", str(setup["weights"]),
            "--styles", "wave,muse", "--repeat", str(REPEAT), "--size", "56", "--margin", "8", "--band", "4",
            "--prepad", "4", "--vgg-onnx", str(setup["vgg"]), "--device", "cpu", "--cell-width", "48",
            "--no-progress", *extra]


@pytest.fixture(scope="module")
def full_run(setup):
    out = setup["root"] / "out"
    rc = run_study(_argv(setup, out, "--padding", ",".join(MODES), "--chain-pairs",
                          "--classifier", str(setup["classifier"])))
    assert rc == 0
    return out


def _read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_writes_every_promised_file(full_run):
    out = full_run
    doc = json.loads((out / "metrics.json").read_text())
    expected = {"metrics.csv", "summary.csv", "chains.csv", "metrics.json", "plots/overview.png"}
    expected |= {f"sheets/{s}__img{i}.png" for s in ("wave", "muse") for i in range(2)}
    expected |= {f"sheets/{s}__img{i}__border.png" for s in ("wave", "muse") for i in range(2)}
    expected |= {f"chains/wave__muse__img{i}.png" for i in range(2)}
    expected |= {f"plots/{m}.png" for m in study_report.PLOTTED} | {"plots/border_profile.png"}
    assert expected <= set(doc["files"])
    for name in doc["files"]:
        assert (out / name).is_file(), name
        if name.endswith(".png"):
            assert cv2.imread(str(out / name)) is not None, name
    assert not list(out.rglob(".*partial*"))  # atomic writes left no temporaries
    # sheet: one row per padding mode, original + REPEAT passes per row
    sheet = cv2.imread(str(out / "sheets/wave__img0.png"))
    cell_h = round(40 * 48 / 56)
    assert sheet.shape[:2] == (4 * cell_h + 5 * 4, (REPEAT + 1) * 48 + (REPEAT + 2) * 4)


def test_metrics_tables_have_every_step(full_run):
    rows = _read_csv(full_run / "metrics.csv")
    assert len(rows) == 2 * 2 * len(MODES) * (REPEAT + 1)
    assert list(rows[0])[:5] == ["image", "style", "padding", "variant", "step"]
    summary = _read_csv(full_run / "summary.csv")
    assert len(summary) == 2 * len(MODES) * (REPEAT + 1)
    assert all(r["images"] == "2" for r in summary)
    doc = json.loads((full_run / "metrics.json").read_text())
    assert len(doc["steps"]) == len(rows) and doc["config"]["repeat"] == REPEAT
    assert {(m["style"], m["padding"]) for m in doc["models"]} == {(s, p) for s in ("wave", "muse") for p in MODES}
    assert doc["images"] == [{"name": "img0", "height": 40, "width": 56}, {"name": "img1", "height": 40, "width": 56}]


def _row(rows, style, padding, step, image="img0"):
    return next(r for r in rows if (r["style"], r["padding"], r["step"], r["image"]) == (style, padding, str(step), image))


def test_values_match_the_fake_effects(full_run):
    rows = _read_csv(full_run / "metrics.csv")
    # the blur zero-pads: a border rim in reflect/zero/replicate models, none when the runtime pre-pads
    for mode in ("reflect", "zero", "replicate"):
        r = _row(rows, "wave", mode, 1)
        assert float(r["border_index"]) > 100 and float(r["border_band"]) > 5
    pre = _row(rows, "wave", "prepad", 1)
    assert float(pre["border_band"]) < 0.01 and float(pre["border_band_cum"]) < 0.01
    # the shift is pointwise: no border effect, drift grows by |12| + |0| + |-6| / 3 = 6 per pass
    for n in range(1, REPEAT + 1):
        r = _row(rows, "muse", "reflect", n)
        assert float(r["border_band"]) == 0.0
        assert float(r["fixed_point_distance"] or 6.0) == pytest.approx(6.0, abs=0.02)
        assert float(r["mad_original"]) == pytest.approx(6.0 * n, abs=0.05)
    # classifier columns are filled; VGG distances exist
    r = _row(rows, "muse", "zero", 2)
    assert r["top1"] in ("red", "green", "blue") and r["agree"] in ("0", "1")
    assert float(_row(rows, "wave", "zero", 3)["vgg_original"]) > 0


def test_chain_table(full_run):
    rows = _read_csv(full_run / "chains.csv")
    assert len(rows) == 2 * len(study_measure.CHAIN_COMPARISONS)
    assert {r["comparison"] for r in rows} == {c[0] for c in study_measure.CHAIN_COMPARISONS}
    # a blur and a constant shift commute away from the border: A->B is close to B->A
    ab_ba = next(r for r in rows if r["comparison"] == "A->B vs B->A" and r["image"] == "img0")
    assert float(ab_ba["mad"]) < 1.0


def test_fixed_points_in_json(full_run):
    doc = json.loads((full_run / "metrics.json").read_text())
    fp = {(f["style"], f["padding"]): f for f in doc["fixed_points"]}
    assert fp[("muse", "reflect")]["fixed_point_step"] is None  # a shift never settles
    prof = {(p["style"], p["padding"]): p for p in doc["border_profiles"]}
    rim = prof[("wave", "zero")]["first"]
    assert len(rim) == study_measure.PROFILE_DEPTH and rim[0] > 10 and rim[1] == 0.0  # a 3x3 blur: 1-px rim only
    assert max(v for v in prof[("wave", "prepad")]["first"] if v is not None) < 0.01
    assert len(fp) == 2 * len(MODES)


def test_missing_padding_model_is_skipped_when_others_exist(setup, tmp_path, capsys):
    weights = make_weights_dir(tmp_path / "w", styles={"wave": {"effect": "blur"}}, lite=False)
    argv = _argv(setup, tmp_path / "o", "--padding", "reflect,zero", "--no-vgg", "--repeat", "1")
    argv[argv.index("--weights-dir") + 1] = str(weights)
    argv[argv.index("--styles") + 1] = "wave"
    assert run_study(argv) == 0
    assert "wave / zero skipped" in capsys.readouterr().err
    doc = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert [m["padding"] for m in doc["models"]] == ["reflect"] and doc["skipped"][0]["padding"] == "zero"


def test_style_given_as_onnx_path(setup, tmp_path):
    model = make_style_model(tmp_path / "solo.onnx", "solo", effect="identity")
    argv = _argv(setup, tmp_path / "o", "--no-vgg", "--repeat", "2")
    argv[argv.index("--styles") + 1] = str(model)
    assert run_study(argv) == 0
    rows = _read_csv(tmp_path / "o" / "metrics.csv")
    assert {r["style"] for r in rows} == {"solo"}
    assert all(float(r["mad_original"]) == 0.0 for r in rows)
    doc = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert doc["fixed_points"][0]["fixed_point_step"] == 1


@pytest.mark.parametrize("extra, message", [
    (("--padding", "mirror"), "unknown padding mode 'mirror'"),
    (("--repeat", "0"), "--repeat must be"),
    (("--margin", "6"), "--margin must be a positive multiple of 4"),
    (("--styles", "wavy"), "unknown style 'wavy'"),
    (("--padding", "zero", "--styles", "solo_missing"), "unknown style"),
    (("--vgg-onnx", "/nonexistent/vgg.onnx"), "VGG features model not found"),
    (("--size", "20"), "--size 20 is too small"),
    (("--cell-width", "8"), "--cell-width must be"),
    (("--prepad", "-1"), "--prepad must be"),
])
def test_bad_input_exits_2_with_one_line(setup, tmp_path, capsys, extra, message):
    argv = _argv(setup, tmp_path / "o", "--repeat", "1", *extra)  # the last value of a flag wins
    assert run_study(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("stylecam: error: ") and message in err[-1]


def test_missing_image_exits_2(setup, tmp_path, capsys):
    argv = _argv(setup, tmp_path / "o")
    argv[0] = str(tmp_path / "nope.jpg")
    assert run_study(argv) == 2
    assert "image not found" in capsys.readouterr().err


def test_only_padding_mode_missing_is_an_error(setup, tmp_path, capsys):
    weights = make_weights_dir(tmp_path / "w", styles={"wave": {"effect": "blur"}}, lite=False)
    argv = _argv(setup, tmp_path / "o", "--padding", "zero")
    argv[argv.index("--weights-dir") + 1] = str(weights)
    argv[argv.index("--styles") + 1] = "wave"
    assert run_study(argv) == 2
    assert "no 'zero'-padding model" in capsys.readouterr().err


def test_vgg_missing_is_one_error_naming_the_trainer_command(tmp_path, monkeypatch):
    monkeypatch.setattr(study_measure, "shipped_vgg_path", lambda: tmp_path / "features" / "none.onnx")
    monkeypatch.setattr(study_measure, "CACHED_VGG_PATH", tmp_path / "cache" / "none.onnx")
    monkeypatch.setitem(sys.modules, "torch", None)  # never needed: the runtime builds nothing
    with pytest.raises(study.UserError, match="no VGG features model at .*none.onnx") as err:
        study_measure.find_vgg_model(None)
    assert "stylecam-train export-vgg" in err.value.hint


def test_vgg_shipped_model_first_then_the_exported_one(tmp_path, monkeypatch):
    shipped, cached = tmp_path / "shipped.onnx", tmp_path / "cached.onnx"
    monkeypatch.setattr(study_measure, "shipped_vgg_path", lambda: shipped)
    monkeypatch.setattr(study_measure, "CACHED_VGG_PATH", cached)
    cached.write_bytes(b"x")
    assert study_measure.find_vgg_model(None) == cached
    shipped.write_bytes(b"x")
    assert study_measure.find_vgg_model(None) == shipped
    assert study_measure.find_vgg_model(str(cached)) == cached   # --vgg-onnx wins


def test_the_shipped_vgg_model_is_found_and_is_a_features_model():
    path = study_measure.find_vgg_model(None)
    assert path == study_measure.shipped_vgg_path() and path.parent.name == "features"
    features = study_measure.VggFeatures(path, device="cpu")
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 36, 52)).astype(np.float32)
    y = features(x)
    assert y.shape == (1, 128, 18, 26) and y.dtype == np.float32 and y.min() >= 0.0 and y.max() > 1.0


def test_images_are_found_as_stylecam_finds_its_inputs(tmp_path):
    """Folders recursively, without hidden files, earlier outputs or the -o folder; videos passed over;
    a file named on the command line is always taken (an unreadable one is reported later)."""
    root = tmp_path / "photos"
    for rel in ("b.png", "a.jpg", "sub/c.png", ".hidden/d.png", "out/sheet.png", "e_stylised.png"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / rel), np.full((8, 8, 3), 90, np.uint8))
    (root / "clip.mp4").write_bytes(b"not a video")
    assert study.find_images([str(root)], output=str(root / "out")) == [root / "a.jpg", root / "b.png",
                                                                        root / "sub" / "c.png"]
    named = [str(root / "clip.mp4"), str(root / "a.jpg"), str(root / "a.jpg")]
    assert study.find_images(named) == [root / "clip.mp4", root / "a.jpg"]
    assert study.find_images([str(root / "*.png")]) == [root / "b.png"]
    with pytest.raises(study.UserError, match="image not found: .*nope.png"):
        study.find_images([str(root / "nope.png")])
    with pytest.raises(study.UserError, match="no images found in"):
        study.find_images([str(root / "*.mp4")])


def test_stylecam_cli_dispatches_study(setup, tmp_path):
    from stylecam import cli

    model = make_style_model(tmp_path / "solo.onnx", "solo", effect="identity")
    argv = ["study", *_argv(setup, tmp_path / "o", "--no-vgg", "--repeat", "1")]
    argv[argv.index("--styles") + 1] = str(model)
    assert cli.main(argv) == 0
    assert (tmp_path / "o" / "metrics.json").is_file()


def test_padding_variant_of_another_model_variant_is_not_mixed_in(setup, tmp_path, capsys):
    weights = make_weights_dir(tmp_path / "w", styles={"wave": {"effect": "blur"}}, lite=False)
    make_style_model(weights / "padding" / "wave.lite.zero.onnx", "wave", effect="blur", variant="lite",
                     padding="zero")
    argv = _argv(setup, tmp_path / "o", "--padding", "reflect,zero", "--no-vgg", "--repeat", "1")
    argv[argv.index("--weights-dir") + 1] = str(weights)
    argv[argv.index("--styles") + 1] = "wave"
    assert run_study(argv) == 0
    assert "has no full zero-padding model" in capsys.readouterr().err
    doc = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert [(m["padding"], m["variant"]) for m in doc["models"]] == [("reflect", "full")]


def test_variant_falls_back_to_lite_quietly_unless_asked_for(setup, tmp_path, capsys):
    weights = tmp_path / "lite_only"
    make_style_model(weights / "wave.lite.onnx", "wave", effect="blur", variant="lite")
    argv = _argv(setup, tmp_path / "o", "--no-vgg", "--repeat", "1")
    argv[argv.index("--weights-dir") + 1] = str(weights)
    argv[argv.index("--styles") + 1] = "wave"
    assert run_study(argv) == 0
    assert "warning" not in capsys.readouterr().err
    doc = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert [m["variant"] for m in doc["models"]] == ["lite"]
    assert run_study(argv + ["--variant", "full"]) == 0
    assert "wave has no full model; studying its lite variant" in capsys.readouterr().err


def _one_style(setup, out, style, *extra):
    argv = _argv(setup, out, "--no-vgg", "--repeat", "1", *extra)
    argv[argv.index("--styles") + 1] = str(style)
    return argv


def test_style_file_is_used_as_is_and_other_paddings_are_skipped(setup, tmp_path, capsys):
    """A model file is never swapped for the weights folder's model of another padding mode."""
    model = make_style_model(tmp_path / "m" / "wave.onnx", "wave", effect="identity")  # reflect padding
    assert run_study(_one_style(setup, tmp_path / "o", model, "--padding", "reflect,zero,prepad")) == 0
    err = capsys.readouterr().err
    assert f"{model} / zero skipped: {model} is a reflect-padding model; a model file is used as is" in err
    doc = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert [(m["padding"], m["path"]) for m in doc["models"]] == [("reflect", str(model)), ("prepad", str(model))]
    assert doc["skipped"] == [{"style": str(model), "padding": "zero", "reason": f"{model} is a reflect-padding "
                               "model; a model file is used as is"}]


def test_zero_padded_style_file_is_studied_only_in_its_own_mode(setup, tmp_path, capsys):
    model = make_style_model(tmp_path / "m" / "wave.zero.onnx", "wave", effect="identity", padding="zero")
    assert run_study(_one_style(setup, tmp_path / "o", model, "--padding", "reflect")) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("stylecam: error: ") and "is a zero-padding model" in err and "--padding zero" in err
    assert run_study(_one_style(setup, tmp_path / "z", model, "--padding", "zero")) == 0
    doc = json.loads((tmp_path / "z" / "metrics.json").read_text())
    assert [(m["padding"], m["path"]) for m in doc["models"]] == [("zero", str(model))]


@pytest.mark.parametrize("kind", ["style", "classifier", "plain"])
def test_vgg_onnx_that_is_not_a_features_model_is_refused(setup, tmp_path, capsys, kind):
    from tests.fakes.onnx_models import make_plain_model
    path = tmp_path / f"{kind}.onnx"
    {"style": lambda: make_style_model(path, "wave", variant="lite"),
     "classifier": lambda: make_classifier_model(path, name="cifar"),
     "plain": lambda: make_plain_model(path)}[kind]()
    argv = _argv(setup, tmp_path / "o", "--repeat", "1")
    argv[argv.index("--vgg-onnx") + 1] = str(path)
    assert run_study(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    expected = {"style": "is a style model (wave, lite, reflect padding)", "classifier": "is a classifier model (cifar)",
                "plain": "is an ONNX model without stylecam.kind metadata"}[kind]
    assert err.startswith(f"stylecam: error: {path} {expected}, not a VGG features model"), err
    assert not (tmp_path / "o" / "metrics.csv").exists()


def test_repeated_styles_and_paddings_are_studied_once(setup, tmp_path, capsys):
    argv = _argv(setup, tmp_path / "o", "--no-vgg", "--repeat", "1", "--padding", "reflect,zero,reflect")
    argv[argv.index("--styles") + 1] = "wave,muse,wave"
    assert run_study(argv) == 0
    err = capsys.readouterr().err
    assert "note: --styles lists wave more than once; each is studied once" in err
    assert "note: --padding lists reflect more than once; each is studied once" in err
    rows = _read_csv(tmp_path / "o" / "metrics.csv")
    keys = [(r["image"], r["style"], r["padding"], r["step"]) for r in rows]
    assert len(keys) == len(set(keys)) == 2 * 2 * 2 * 2
    doc = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert doc["config"]["styles"] == ["wave", "muse"] and doc["config"]["paddings"] == ["reflect", "zero"]


def test_unreadable_image_is_skipped_and_exits_1(setup, tmp_path, capsys):
    bad = tmp_path / "x.jpg"
    bad.write_text("not an image")
    argv = _argv(setup, tmp_path / "o", "--no-vgg", "--repeat", "1")
    argv[0:1] = [str(bad), str(setup["images"] / "img0.png")]
    assert run_study(argv) == 1
    err = capsys.readouterr().err
    assert f"cannot read image {bad}, skipped" in err and "stylecam: 1 of 2 images could not be read" in err
    doc = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert doc["unreadable"] == [str(bad)] and [i["name"] for i in doc["images"]] == ["img0"]
    assert {r["image"] for r in _read_csv(tmp_path / "o" / "metrics.csv")} == {"img0"}


def test_help_documents_the_exit_codes(capsys):
    from stylecam import cli
    assert cli.main(["study", "--help"]) == 0
    assert "1 some images could not be read" in capsys.readouterr().out


def test_chain_pairs_with_one_style_warns(setup, tmp_path, capsys):
    argv = _argv(setup, tmp_path / "o", "--no-vgg", "--repeat", "1", "--chain-pairs")
    argv[argv.index("--styles") + 1] = "wave"
    assert run_study(argv) == 0
    assert "--chain-pairs needs at least two styles" in capsys.readouterr().err
    assert _read_csv(tmp_path / "o" / "chains.csv") == []


@pytest.mark.parametrize("extra, message", [
    (("--fixed-point-tol", "300"), "argument --fixed-point-tol: expected a number within 0..255, got '300'"),
    (("--fixed-point-tol", "nan"), "argument --fixed-point-tol: expected a number within 0..255, got 'nan'"),
    (("--fixed-point-tol", "-1"), "argument --fixed-point-tol: expected a number within 0..255"),
    (("--size", "100000"), "argument --size: expected a long side of at most 8192 pixels, got '100000'"),
])
def test_bad_values_are_refused_when_parsing(setup, tmp_path, capsys, monkeypatch, extra, message):
    from stylecam import cli
    monkeypatch.setattr(study, "run_study", lambda cfg: pytest.fail("parsed"))  # never build a huge study
    assert cli.main(["study", *_argv(setup, tmp_path / "o", "--repeat", "1", *extra)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("field, value, message", [
    ("size", 100000, "--size must be ≤ 8192"),
    ("fixed_point_tol", 300.0, "--fixed-point-tol must be within 0..255"),
    ("fixed_point_tol", float("nan"), "--fixed-point-tol must be within 0..255"),
    ("cell_width", 100000, "--cell-width must be within 32..1024"),
])
def test_config_check_refuses_huge_or_invalid_values(field, value, message):
    with pytest.raises(study.UserError, match=message):
        study.StudyConfig(images=("x.png",), **{field: value}).check()


def test_variant_with_a_style_file_says_the_file_is_used_as_is(setup, tmp_path, capsys):
    model = make_style_model(tmp_path / "m" / "wave.lite.onnx", "wave", effect="identity", variant="lite")
    assert run_study(_one_style(setup, tmp_path / "o", model, "--variant", "full")) == 0
    assert f"--variant applies to styles given by name; {model} (lite) is used as is" in capsys.readouterr().err


def test_chain_pair_without_a_run_in_the_chain_padding_is_reported(setup, tmp_path, capsys):
    weights = make_weights_dir(tmp_path / "w", styles={"wave": {"effect": "blur"}, "muse": {"effect": "identity"}},
                               lite=False)
    make_style_model(weights / "padding" / "wave.full.zero.onnx", "wave", effect="blur", padding="zero")
    argv = _argv(setup, tmp_path / "o", "--no-vgg", "--repeat", "1", "--padding", "zero,reflect", "--chain-pairs")
    argv[argv.index("--weights-dir") + 1] = str(weights)
    assert run_study(argv) == 0
    assert "chain wave / muse skipped: muse has no zero run" in capsys.readouterr().err
    assert _read_csv(tmp_path / "o" / "chains.csv") == []
