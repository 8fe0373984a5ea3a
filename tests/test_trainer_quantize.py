"""int8 copies of style models: quantization, its checks, and how the runtime picks them."""
from __future__ import annotations

import json
import logging

import numpy as np
import onnx
import pytest

from tests.fakes.onnx_models import make_style_model, make_weights_dir
from stylecam.errors import UserError
from stylecam.pipeline import Stylizer
from stylecam.styles import Registry, load_entry
from trainer import quantize


def images(n: int, height: int = 32, width: int = 48, seed: int = 0) -> list[np.ndarray]:
    """float32 (1, 3, H, W) RGB 0..255: gradients plus noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    out = []
    for i in range(n):
        base = np.stack([xx * 5 + 20 * i, yy * 7, (xx + yy) * 3]) % 256
        out.append(np.clip(base + rng.uniform(0, 30, base.shape), 0, 255)[None].astype(np.float32))
    return out


def test_psnr_of_known_differences():
    a = np.zeros((1, 3, 4, 4), np.float32)
    assert quantize.psnr(a, a) == float("inf")
    assert quantize.psnr(a, a + 1.0) == pytest.approx(20 * np.log10(255.0))
    assert quantize.psnr(a, a - 5.0) == float("inf")  # both clamped to 0..255 first


def test_photo_tensor_shape_range_and_channel_order(tmp_path):
    import cv2
    bgr = np.zeros((50, 70, 3), np.uint8)
    bgr[:, :, 2] = 200                                   # red in BGR
    cv2.imwrite(str(tmp_path / "red.png"), bgr)
    x = quantize.photo_tensor(tmp_path / "red.png", long_side=64)
    assert x.dtype == np.float32 and x.shape[:2] == (1, 3) and x.shape[3] == 64 and x.shape[2] % 4 == 0
    assert x[0, 0].mean() == pytest.approx(200) and x[0, 1:].max() == 0     # channel 0 is red


def test_quantize_writes_an_int8_copy_that_matches_float32(tmp_path):
    src = make_style_model(tmp_path / "blur.lite.onnx", "blur", effect="blur", variant="lite")
    out = tmp_path / "int8" / "blur.lite.int8.onnx"
    report = quantize.quantize_style(src, out, images(4), images(2, seed=1))
    assert out.is_file() and report["psnr_db"] > 35 and report["mean_abs_diff"] < 1.5
    model = onnx.load(str(out))
    ops = {n.op_type for n in model.graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    entry = load_entry(out)                               # still a valid style model
    assert entry.precision == "int8" and (entry.name, entry.variant) == ("blur", "lite")
    settings = json.loads(entry.metadata[quantize.KEY_QUANTIZATION])
    assert settings["calibration_images"] == 4 and settings["psnr_db"] == pytest.approx(report["psnr_db"], abs=1e-3)
    # measured again here, not taken from the report
    again = quantize.agreement(src, out, images(3, seed=2))
    assert again["psnr_db"] > 35


def test_common_crop_centres_every_image_on_the_smallest_shape():
    a = np.arange(3 * 10 * 14, dtype=np.float32).reshape(1, 3, 10, 14)
    b = np.zeros((1, 3, 9, 21), np.float32)
    ca, cb = quantize.common_crop([a, b])
    assert ca.shape == cb.shape == (1, 3, 8, 12)            # min 9 x 14, down to multiples of 4
    assert np.array_equal(ca, a[..., 1:9, 1:13])            # centred


@pytest.mark.parametrize("method", ["percentile", "entropy"])
def test_quantize_with_other_calibration_methods_on_photos_of_several_shapes(tmp_path, method):
    """Percentile / entropy calibration collect the activations of all images in one array: mixed
    photo shapes are cropped to one shape first; the copy records its method and still matches."""
    src = make_style_model(tmp_path / "blur.lite.onnx", "blur", effect="blur", variant="lite")
    out = tmp_path / f"{method}.onnx"
    calibration = images(2, 32, 48) + images(2, 40, 36, seed=3)
    report = quantize.quantize_style(src, out, calibration, images(2, seed=1), method=method)
    assert out.is_file() and report["psnr_db"] > 30
    settings = json.loads(load_entry(out).metadata[quantize.KEY_QUANTIZATION])
    assert method.capitalize() in settings["method"] and settings["calibration_size"] == [32, 36]
    with pytest.raises(UserError, match="unknown calibration method"):
        quantize.quantize_style(src, tmp_path / "x.onnx", calibration, images(1), method="median")


def test_quantize_percentile_is_recorded_and_checked(tmp_path):
    src = make_style_model(tmp_path / "blur.lite.onnx", "blur", effect="blur", variant="lite")
    out = tmp_path / "p.onnx"
    quantize.quantize_style(src, out, images(2), images(1), method="percentile", percentile=99.9)
    assert json.loads(load_entry(out).metadata[quantize.KEY_QUANTIZATION])["method"].endswith("Percentile 99.9 calibration")
    with pytest.raises(UserError, match="out of range"):
        quantize.quantize_style(src, tmp_path / "x.onnx", images(2), images(1), method="percentile", percentile=20)
    assert not (tmp_path / "x.onnx").exists()


def test_quantize_refuses_below_min_psnr_and_writes_nothing(tmp_path):
    src = make_style_model(tmp_path / "blur.onnx", "blur", effect="blur")
    out = tmp_path / "blur.int8.onnx"
    with pytest.raises(UserError, match="agrees with float32 at only"):
        quantize.quantize_style(src, out, images(2), images(1), min_psnr=200.0)
    assert not out.exists() and not list(tmp_path.glob("*.part"))


def test_the_worst_evaluation_photo_decides_not_the_mean(tmp_path, monkeypatch):
    """A copy whose mean PSNR passes but whose worst photo does not is refused, and the refusal says so."""
    src = make_style_model(tmp_path / "blur.lite.onnx", "blur", effect="blur", variant="lite")
    real = quantize.agreement
    measured = real(src, src, images(1))                          # only to have every key

    def one_bad_photo(reference, candidate, evaluation):
        return {**measured, "psnr_db": 33.0, "psnr_min_db": 29.9, "mean_abs_diff": 2.0, "max_abs_diff": 90.0}

    monkeypatch.setattr(quantize, "agreement", one_bad_photo)
    out = tmp_path / "int8.onnx"
    with pytest.raises(UserError, match=r"only 29\.9 dB on its worst evaluation photo \(< 30.0 dB; mean 33\.0 dB\)"):
        quantize.quantize_style(src, out, images(2), images(2))
    assert not out.exists()
    quantize.quantize_style(src, out, images(2), images(2), min_psnr=29.5)    # the same copy under a lower bar
    settings = json.loads(load_entry(out).metadata[quantize.KEY_QUANTIZATION])
    assert settings["gate"] == "PSNR against float32 at least 29.5 dB on every evaluation photo"
    assert (settings["psnr_db"], settings["psnr_min_db"]) == (33.0, 29.9)


def test_the_int8_copy_records_its_calibration_and_evaluation_photos(tmp_path, tiny_photos):
    from trainer.cli import main
    src = make_style_model(tmp_path / "w" / "blur.lite.onnx", "blur", effect="blur", variant="lite")
    assert main(["quantize", str(src), "--photos", str(tiny_photos), "--eval-photos", str(tiny_photos),
                 "--long-side", "48", "--calibration-images", "3"]) == 0
    settings = json.loads(load_entry(tmp_path / "w" / "int8" / "blur.lite.int8.onnx").metadata[quantize.KEY_QUANTIZATION])
    assert settings["calibration_photos"] == settings["evaluation_photos"] == "photos"   # outside the repo: the name
    assert settings["calibration_selection"] == "the first 3 image files by name" and settings["long_side"] == 48
    assert (settings["calibration_images"], settings["evaluation_images"]) == (3, 8)
    # measured again here: the recorded worst photo is the worst of the eight
    again = quantize.agreement(src, tmp_path / "w" / "int8" / "blur.lite.int8.onnx",
                               [quantize.photo_tensor(p, 48) for p in quantize.photo_paths(tiny_photos, 100)])
    assert settings["psnr_min_db"] == pytest.approx(again["psnr_min_db"], abs=1e-3)


def test_quantize_refuses_an_int8_model_and_a_non_style_file(tmp_path):
    src = make_style_model(tmp_path / "q.onnx", "q", effect="blur", metadata={"stylecam.precision": "int8"})
    with pytest.raises(UserError, match="int8 model"):
        quantize.quantize_style(src, tmp_path / "out.onnx", images(1), images(1))
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(UserError, match="cannot read ONNX"):
        quantize.quantize_style(tmp_path / "junk.onnx", tmp_path / "out.onnx", images(1), images(1))


def test_default_output_goes_to_the_int8_folder(tmp_path):
    assert quantize.default_output(tmp_path / "wave.lite.onnx") == tmp_path / "int8" / "wave.lite.int8.onnx"


def test_cli_quantize(tmp_path, tiny_photos):
    from trainer.cli import main
    src = make_style_model(tmp_path / "w" / "blur.lite.onnx", "blur", effect="blur", variant="lite")
    assert main(["quantize", str(src), "--photos", str(tiny_photos), "--eval-photos", str(tiny_photos),
                 "--long-side", "48"]) == 0
    assert (tmp_path / "w" / "int8" / "blur.lite.int8.onnx").is_file()
    assert main(["quantize", str(src), str(src), "-o", str(tmp_path / "x.onnx"), "--photos", str(tiny_photos),
                 "--eval-photos", str(tiny_photos)]) == 2
    assert main(["quantize", str(src), "--photos", str(tmp_path / "nowhere"), "--eval-photos", str(tiny_photos)]) == 2
    assert main(["quantize", str(src), "-o", str(tmp_path / "p.onnx"), "--photos", str(tiny_photos),
                 "--eval-photos", str(tiny_photos), "--long-side", "48", "--calibration-method", "percentile",
                 "--calibration-percentile", "99.99"]) == 0
    assert "Percentile 99.99 " in json.loads(load_entry(tmp_path / "p.onnx").metadata[quantize.KEY_QUANTIZATION])["method"]


@pytest.fixture
def weights_with_int8(tmp_path):
    """wave: fp32 +10 and an int8 copy +20 (distinguishable); muse: fp32 only."""
    root = make_weights_dir(tmp_path / "weights")
    make_style_model(root / "int8" / "wave.lite.int8.onnx", "wave", effect="shift", amount=20.0, variant="lite",
                     metadata={"stylecam.precision": "int8"})
    return root


def test_registry_prefers_float32_and_finds_the_int8_copy_when_asked(weights_with_int8):
    registry = Registry(weights_with_int8)
    assert registry.find("wave", variant="lite").precision == "fp32"
    int8 = registry.find("wave", variant="lite", precision="int8")
    assert int8.precision == "int8" and int8.path.parent.name == "int8"
    rows = [(r["name"], r["variant"], r["precision"]) for r in registry.table()]
    assert rows.count(("wave", "lite", "int8")) == 1 and rows.count(("wave", "lite", "fp32")) == 1


def test_stylizer_int8_runs_the_int8_copy_and_falls_back_with_a_warning(weights_with_int8, caplog):
    frame = np.full((8, 8, 3), 100, np.uint8)
    plain = Stylizer(["wave"], device="cpu", weights_dir=weights_with_int8)
    assert int(plain(frame)[0, 0, 0]) == 110
    fast = Stylizer(["wave"], device="cpu", weights_dir=weights_with_int8, int8=True)
    assert int(fast(frame)[0, 0, 0]) == 120
    assert fast.describe()["int8"] is True and fast.describe()["models"][0]["precision"] == "int8"
    with caplog.at_level(logging.WARNING, logger="stylecam"):
        muse = Stylizer(["muse"], device="cpu", weights_dir=weights_with_int8, int8=True)
    assert int(muse(frame)[0, 0, 0]) == 50 and "no int8 copy of muse" in caplog.text
    assert "stylecam-train quantize" in caplog.text


def test_cli_int8_flag_reaches_the_models(capsys, weights_with_int8, tmp_path):
    import cv2
    from stylecam.cli import main
    cv2.imwrite(str(tmp_path / "in.png"), np.full((12, 16, 3), 100, np.uint8))
    code = main([str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--int8", "--device", "cpu",
                 "--weights-dir", str(weights_with_int8), "--json", "--no-progress"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["stylecam"]["models"][0]["precision"] == "int8"
    assert int(cv2.imread(str(tmp_path / "out.png"))[0, 0, 0]) == 120
    assert main(["--list-styles", "--weights-dir", str(weights_with_int8)]) == 0
    assert [line.split()[-2] for line in capsys.readouterr().out.splitlines() if line.startswith("wave")] == \
        ["fp32", "fp32", "int8"]                          # full, lite, then lite's int8 copy


def test_cli_quantize_goes_on_after_a_failure_and_exits_1(tmp_path, tiny_photos, capsys):
    from trainer.cli import main
    good = make_style_model(tmp_path / "blur.lite.onnx", "blur", effect="blur", variant="lite")
    bad = make_style_model(tmp_path / "q.lite.onnx", "q", effect="blur", metadata={"stylecam.precision": "int8"})
    code = main(["quantize", str(bad), str(good), "--photos", str(tiny_photos), "--eval-photos", str(tiny_photos),
                 "--long-side", "48"])
    assert code == 1 and (tmp_path / "int8" / "blur.lite.int8.onnx").is_file()
    assert "1 of 2 models not quantized" in capsys.readouterr().err


def _quantize_argv(src, photos, *extra):
    return ["quantize", str(src), "--photos", str(photos), "--eval-photos", str(photos), "--long-side", "48", *extra]


@pytest.mark.parametrize("target", ["proc", "under_a_file", "folder"])
def test_cli_quantize_refuses_an_unwritable_output_before_any_work(tmp_path, tiny_photos, capsys, target):
    from trainer.cli import main
    src = make_style_model(tmp_path / "blur.lite.onnx", "blur", effect="blur", variant="lite")
    (tmp_path / "regular").write_text("x")
    (tmp_path / "existing").mkdir()
    out = {"proc": "/proc/x.onnx", "under_a_file": str(tmp_path / "regular" / "x.onnx"),
           "folder": str(tmp_path / "existing")}[target]
    assert main(_quantize_argv(src, tiny_photos, "-o", out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("stylecam-train: error:") and "Traceback" not in err[0]
    assert "-o" in err[0]
    assert list((tmp_path / "existing").iterdir()) == []
    assert not list(tmp_path.glob(".*partial*"))


def test_quantize_api_refuses_a_folder_as_output_and_leaves_no_part_file(tmp_path):
    src = make_style_model(tmp_path / "blur.lite.onnx", "blur", effect="blur", variant="lite")
    (tmp_path / "q").mkdir()
    with pytest.raises(UserError, match="is a folder"):
        quantize.quantize_style(src, tmp_path / "q", images(2), images(1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blur.lite.onnx", "q"]


@pytest.mark.parametrize("argv", [["--long-side", "0"], ["--long-side", "-5"], ["--long-side", "8"],
                                  ["--long-side", "99999"], ["--calibration-images", "0"],
                                  ["--calibration-images", "-1"], ["--min-psnr", "nan"], ["--min-psnr", "inf"],
                                  ["--calibration-percentile", "20"], ["--calibration-percentile", "nan"]])
def test_cli_quantize_rejects_bad_numbers_at_parse_time(tmp_path, tiny_photos, capsys, argv):
    from trainer.cli import main
    src = make_style_model(tmp_path / "blur.lite.onnx", "blur", effect="blur", variant="lite")
    with pytest.raises(SystemExit) as exc:
        main(_quantize_argv(src, tiny_photos, *argv))
    assert exc.value.code == 2
    assert f"argument {argv[0]}" in capsys.readouterr().err


def test_cli_quantize_smallest_long_side_and_a_very_wide_photo_work(tmp_path):
    """32 px (the minimum) on a 10:1 panorama: the short side is kept at contract.MIN_SIDE, not 4."""
    import cv2
    from trainer.cli import main
    photos = tmp_path / "pano"
    photos.mkdir()
    cv2.imwrite(str(photos / "a.png"), images(1, 20, 200)[0][0].transpose(1, 2, 0).astype(np.uint8))
    assert quantize.photo_tensor(photos / "a.png", 32).shape == (1, 3, 16, 32)
    src = make_style_model(tmp_path / "blur.lite.onnx", "blur", effect="blur", variant="lite")
    out = tmp_path / "q.onnx"
    assert main(["quantize", str(src), "--photos", str(photos), "--eval-photos", str(photos),
                 "--long-side", "32", "-o", str(out)]) == 0
    assert out.is_file()


def test_quantize_output_gets_the_usual_file_mode(tmp_path):
    import os
    src = make_style_model(tmp_path / "blur.lite.onnx", "blur", effect="blur", variant="lite")
    out = tmp_path / "q.onnx"
    quantize.quantize_style(src, out, images(2), images(1))
    mask = os.umask(0o022)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_quantize_refuses_a_classifier_with_a_hint_for_quantize(tmp_path, tiny_photos, capsys):
    from tests.fakes.onnx_models import make_classifier_model
    from trainer.cli import main
    clf = make_classifier_model(tmp_path / "colors.onnx")
    assert main(_quantize_argv(clf, tiny_photos, "-o", str(tmp_path / "x.onnx"))) == 2
    err = capsys.readouterr().err
    assert "is a classifier model, not a style" in err and "quantize takes float32 style models" in err
    assert "--classify" not in err and "--style" not in err
    assert not (tmp_path / "x.onnx").exists()
