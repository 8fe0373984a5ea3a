"""`stylecam-train report`: losses of lite / full / Gatys on held-out photos, ratios, sheet, cache."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakes.training import LAYERS
from trainer.cli import main as train_main
from trainer.nets.vgg import random_vgg_standin
from trainer.report import build_report, list_photos, summarise
from trainer.train_style import StyleTrainConfig, train_style


def test_summarise_means_and_ratios_by_hand():
    rows = [{"lite": {"content": 1, "style": 3, "total": 4}, "gatys": {"content": 1, "style": 1, "total": 2}},
            {"lite": {"content": 3, "style": 5, "total": 8}, "gatys": {"content": 1, "style": 3, "total": 4}}]
    s = summarise(rows, ["lite", "gatys"])
    assert s["mean"]["lite"] == {"content": 2.0, "style": 4.0, "total": 6.0}
    assert s["ratio_to_gatys"] == {"lite": 2.0}
    assert s["goals"]["lite"] == {"goal": 2.0, "ratio": 2.0, "met": True}


@pytest.fixture
def shipped_tiny(tiny_photos, tiny_painting, tmp_path) -> Path:
    cfg = StyleTrainConfig(name="tiny", style_image=str(tiny_painting), data=str(tiny_photos), variant="lite",
                           size=32, batch_size=2, iterations=2, style_size=48, holdout=2, checkpoint_every=10,
                           out=str(tmp_path / "run"), weights_dir=str(tmp_path / "weights"), device="cpu")
    train_style(cfg, loss_net=random_vgg_standin(LAYERS), export=True, progress=False)
    return tmp_path / "weights"


def test_report_writes_losses_ratios_sheet_and_reuses_gatys(shipped_tiny, tiny_photos, tiny_painting, tmp_path):
    out = tmp_path / "report"
    photos = list_photos(tiny_photos, limit=2)
    report = build_report("tiny", str(tiny_painting), photos, out, size=40, gatys_steps=3,
                          weights_dir=str(shipped_tiny), loss_net=random_vgg_standin(LAYERS), progress=False)
    assert [r["photo"] for r in report["photos"]] == [p.name for p in photos]
    assert set(report["mean"]) == {"lite", "gatys", "original"}
    lite, ref = report["mean"]["lite"]["total"], report["mean"]["gatys"]["total"]
    assert lite > 0 and ref > 0 and report["ratio_to_gatys"]["lite"] == pytest.approx(lite / ref)
    saved = json.loads((out / "quality.json").read_text())
    assert saved["ratio_to_gatys"] == report["ratio_to_gatys"]
    assert (out / "sheet.jpg").stat().st_size > 0
    cached = sorted((out / "gatys").glob("*.png"))
    assert len(cached) == 2
    stamps = [p.stat().st_mtime_ns for p in cached]
    again = build_report("tiny", str(tiny_painting), photos, out, size=40, gatys_steps=3,
                         weights_dir=str(shipped_tiny), loss_net=random_vgg_standin(LAYERS), progress=False)
    assert [p.stat().st_mtime_ns for p in cached] == stamps
    assert again["mean"]["gatys"]["total"] == pytest.approx(ref, rel=1e-3)


def test_report_measures_the_mean_luma_of_photos_and_outputs(shipped_tiny, tiny_photos, tiny_painting, tmp_path):
    """A style that darkens photos shows as an output luma far below the photos' ("original")."""
    import numpy as np
    import torch
    from trainer.report import mean_luma
    grey = torch.full((1, 3, 8, 8), 100.0)
    assert mean_luma(grey) == pytest.approx(100.0)
    assert mean_luma(torch.full((1, 3, 8, 8), 300.0)) == pytest.approx(255.0)  # clamped as the runtime does
    red = torch.zeros((1, 3, 4, 4)); red[:, 0] = 200.0
    assert mean_luma(red) == pytest.approx(0.299 * 200.0, abs=0.01)  # BT.601, channel 0 is R
    photos = list_photos(tiny_photos, limit=2)
    report = build_report("tiny", str(tiny_painting), photos, tmp_path / "r", size=40, gatys_steps=0,
                          weights_dir=str(shipped_tiny), loss_net=random_vgg_standin(LAYERS), progress=False)
    lumas = [r["original"]["luma"] for r in report["photos"]]
    assert all(0 < v < 255 for v in lumas) and len(set(lumas)) == 2
    assert report["mean"]["original"]["luma"] == pytest.approx(np.mean(lumas))
    assert 0 <= report["mean"]["lite"]["luma"] <= 255
    assert report["mean"]["lite"]["luma"] == pytest.approx(np.mean([r["lite"]["luma"] for r in report["photos"]]))


def test_report_of_unknown_style_and_missing_photos(shipped_tiny, tiny_painting, tmp_path, capsys):
    code = train_main(["report", "nosuch", "--style-image", str(tiny_painting), "--photos", str(tmp_path / "none"),
                       "--weights-dir", str(shipped_tiny)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "none" in err[0]
    code = train_main(["report", "nosuch", "--style-image", str(tiny_painting), "--photos", str(tmp_path / "photos"),
                       "--weights-dir", str(shipped_tiny), "--gatys-steps", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "nosuch" in err[0]


def test_report_compares_another_model_and_measures_it_like_the_others(shipped_tiny, tiny_photos, tiny_painting,
                                                                        tmp_path):
    """Every figure of the report is what the model gives, measured again here from its own output."""
    import hashlib

    import numpy as np
    import torch
    from stylecam.metrics import grid_pattern
    from stylecam.session import load_model
    from trainer.losses import PerceptualLoss
    from trainer.photos import load_rgb
    from trainer.report import load_photo, parse_compare
    photos = list_photos(tiny_photos, limit=2)
    same = str(shipped_tiny / "tiny.lite.onnx")
    loss_net = random_vgg_standin(LAYERS)
    report = build_report("tiny", str(tiny_painting), photos, tmp_path / "r", size=40, gatys_steps=0,
                          weights_dir=str(shipped_tiny), loss_net=loss_net, progress=False,
                          compare={"copy": same})
    assert set(report["mean"]) == {"lite", "copy", "original"} and report["goals"] == {}
    assert report["mean"]["copy"] == pytest.approx(report["mean"]["lite"])  # the same file measures the same
    assert report["models"] == {"lite": "tiny.lite.onnx", "copy": "tiny.lite.onnx"}
    digest = hashlib.sha256(Path(same).read_bytes()).hexdigest()
    assert report["sha256"] == {"lite": digest, "copy": digest}
    model = load_model(same, device="cpu", clamp=(0.0, 255.0))
    style = load_rgb(str(tiny_painting), long_side=report["style_size"])[None].float()
    from trainer.losses import LossWeights
    loss = PerceptualLoss(loss_net, style, LossWeights(**report["loss_weights"]))
    for photo, row in zip(photos, report["photos"]):
        content = load_photo(photo, 40)[None].float()
        output = model.run(content.numpy())
        with torch.no_grad():
            terms = {k: float(v) for k, v in loss.terms(torch.from_numpy(output), content).items()}
        rgb = np.clip(output[0], 0, 255).transpose(1, 2, 0)
        assert row["lite"]["total"] == pytest.approx(row["lite"]["content"] + row["lite"]["style"] + row["lite"]["tv"])
        for key in ("content", "style", "tv", "total"):
            assert row["lite"][key] == pytest.approx(terms[key], rel=1e-5), key
        assert row["lite"]["grid_2"] == pytest.approx(grid_pattern(rgb, 2), abs=1e-6)
        assert row["lite"]["grid_4"] == pytest.approx(grid_pattern(rgb, 4), abs=1e-6)
    for key in ("content", "style", "tv", "total", "grid_2", "grid_4", "luma"):
        assert report["mean"]["lite"][key] == pytest.approx(np.mean([r["lite"][key] for r in report["photos"]]))
    assert parse_compare(["lite-v1=a/b.onnx"]) == {"lite-v1": "a/b.onnx"}
    code = train_main(["report", "tiny", "--style-image", str(tiny_painting), "--photos", str(tiny_photos),
                       "--weights-dir", str(shipped_tiny), "--compare", "nolabel", "--gatys-steps", "0"])
    assert code == 2


def test_report_losses_at_another_style_weight_and_painting_size(shipped_tiny, tiny_photos, tiny_painting, tmp_path):
    photos = list_photos(tiny_photos, limit=1)
    kw = dict(size=40, gatys_steps=0, weights_dir=str(shipped_tiny), loss_net=random_vgg_standin(LAYERS),
              progress=False)
    base = build_report("tiny", str(tiny_painting), photos, tmp_path / "a", **kw)
    double = build_report("tiny", str(tiny_painting), photos, tmp_path / "b",
                          style_weight=2 * base["loss_weights"]["style"], **kw)
    assert double["loss_weights"]["style"] == 2 * base["loss_weights"]["style"]
    assert double["mean"]["lite"]["style"] == pytest.approx(2 * base["mean"]["lite"]["style"], rel=1e-4)
    assert double["mean"]["lite"]["content"] == pytest.approx(base["mean"]["lite"]["content"])
    small = build_report("tiny", str(tiny_painting), photos, tmp_path / "c", style_size=16, **kw)
    assert small["style_size"] == 16 and small["mean"]["lite"]["style"] != pytest.approx(base["mean"]["lite"]["style"])


@pytest.mark.parametrize("argv", [["--size", "4"], ["--size", "0"], ["--size", "100000"], ["--limit", "0"],
                                  ["--gatys-steps", "-1"], ["--style-weight", "nan"], ["--style-size", "2"]])
def test_report_rejects_bad_numbers_at_parse_time(tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as exc:
        train_main(["report", "tiny", "--style-image", "p.png", "--photos", str(tmp_path), *argv])
    assert exc.value.code == 2 and f"argument {argv[0]}" in capsys.readouterr().err


def test_report_at_the_smallest_size_on_a_panorama(shipped_tiny, tiny_painting, tmp_path):
    """--size 32 on a 10:1 photo: the short side is scaled up to contract.MIN_SIDE, the lite net runs."""
    import os

    import numpy as np
    from PIL import Image
    from trainer.report import load_photo
    folder = tmp_path / "pano"
    folder.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 200, 3), dtype=np.uint8)).save(folder / "a.png")
    assert min(load_photo(folder / "a.png", 32).shape[1:]) >= 16
    out = tmp_path / "r"
    report = build_report("tiny", str(tiny_painting), list_photos(folder, 1), out, size=32, gatys_steps=0,
                          weights_dir=str(shipped_tiny), loss_net=random_vgg_standin(LAYERS), progress=False)
    assert load_photo(folder / "a.png", 32).shape == (3, 16, 160)          # short side up to 16, x4 crop
    lite = report["photos"][0]["lite"]
    assert lite["content"] > 0 and lite["style"] > 0 and lite["tv"] > 0
    assert lite["total"] == pytest.approx(lite["content"] + lite["style"] + lite["tv"])
    assert 0 < lite["luma"] < 255 and report["mean"]["lite"] == pytest.approx(lite)
    mask = os.umask(0o022)
    os.umask(mask)
    assert (out / "quality.json").stat().st_mode & 0o777 == 0o666 & ~mask


def test_report_refuses_a_classifier_to_compare_before_any_work(shipped_tiny, tiny_photos, tiny_painting, tmp_path,
                                                               capsys):
    from tests.fakes.onnx_models import make_classifier_model
    clf = make_classifier_model(tmp_path / "mnist.onnx")
    code = train_main(["report", "tiny", "--style-image", str(tiny_painting), "--photos", str(tiny_photos),
                       "--weights-dir", str(shipped_tiny), "--gatys-steps", "0", "--out", str(tmp_path / "r"),
                       "--vgg-weights", str(tmp_path / "never-read.pth"), "--compare", f"x={clf}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "is a classifier model, not a style" in err[0]
    assert "--classify" not in err[0] and "compare style models" in err[0]
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("target", ["proc", "file"])
def test_report_refuses_an_unwritable_out(shipped_tiny, tiny_photos, tiny_painting, tmp_path, capsys, target):
    (tmp_path / "regular").write_text("x")
    out = "/proc/x" if target == "proc" else str(tmp_path / "regular")
    code = train_main(["report", "tiny", "--style-image", str(tiny_painting), "--photos", str(tiny_photos),
                       "--weights-dir", str(shipped_tiny), "--gatys-steps", "0", "--out", out,
                       "--vgg-weights", str(tmp_path / "never-read.pth")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("stylecam-train: error: cannot write to")


def test_report_uses_gatys_jpegs_made_elsewhere_and_refuses_a_wrong_size(shipped_tiny, tiny_photos, tiny_painting,
                                                                         tmp_path):
    """A zoo run's gatys.tar unpacked as gatys/NN.jpg is used as the reference, not recomputed."""
    import cv2
    import numpy as np
    from stylecam.errors import UserError
    out = tmp_path / "report"
    (out / "gatys").mkdir(parents=True)
    photos = list_photos(tiny_photos, limit=2)
    grey = np.full((40, 52, 3), 128, np.uint8)          # the 40x52 photos at --size 52
    for i in range(2):
        cv2.imwrite(str(out / "gatys" / f"{i:02d}.jpg"), grey)
    report = build_report("tiny", str(tiny_painting), photos, out, size=52, gatys_steps=3,
                          weights_dir=str(shipped_tiny), loss_net=random_vgg_standin(LAYERS), progress=False)
    assert report["mean"]["gatys"]["luma"] == pytest.approx(128, abs=1)     # the grey images, not an optimisation
    assert not list((out / "gatys").glob("*.png"))
    with pytest.raises(UserError, match="remove the cached Gatys images"):
        build_report("tiny", str(tiny_painting), photos, out, size=40, gatys_steps=3,
                     weights_dir=str(shipped_tiny), loss_net=random_vgg_standin(LAYERS), progress=False)
