"""Every shipped model in weights/ loads in the runtime, carries its metadata and honours its contract."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from stylecam import contract
from stylecam.pipeline import Stylizer
from stylecam.session import load_model
from stylecam.styles import Registry

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
STYLE_FILES = sorted(p for p in WEIGHTS.rglob("*.onnx") if "classifiers" not in p.parts)
CLASSIFIER_FILES = sorted((WEIGHTS / "classifiers").glob("*.onnx"))


def test_weights_folder_ships_models():
    assert CLASSIFIER_FILES, "no classifier models shipped"
    assert STYLE_FILES, "no style models shipped"


def photo_like(height: int, width: int) -> np.ndarray:
    """uint8 BGR (H, W, 3): smooth gradients with some edges, like a photo."""
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.stack([xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1),
                    ((xx // 7 + yy // 5) % 2) * 200 + 20], -1)
    return img.astype(np.uint8)


@pytest.mark.parametrize("path", STYLE_FILES, ids=lambda p: p.relative_to(WEIGHTS).as_posix())
def test_style_model_contract(path):
    meta = load_model(str(path), device="cpu").metadata
    assert contract.contract_problems(meta) == []
    assert json.loads(meta[contract.KEY_TRAINING])["steps_trained"] > 0
    assert meta[contract.KEY_ARTIST] and meta[contract.KEY_LICENCE]
    stylizer = Stylizer(styles=[str(path)], device="cpu")
    for height, width in ((37, 53), (64, 48)):
        frame = photo_like(height, width)
        out = stylizer(frame)
        assert out.shape == frame.shape and out.dtype == np.uint8
        # a style that returns its input is broken
        assert np.abs(out.astype(float) - frame.astype(float)).mean() > 8.0
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 36, 44)).astype(np.float32)
    y = stylizer.run_float(x)
    assert y.shape == x.shape and y.min() >= 0.0 and y.max() <= 255.0


def test_registry_finds_every_shipped_style():
    registry = Registry(WEIGHTS)
    names = {load_model(str(p), device="cpu").metadata[contract.KEY_NAME] for p in STYLE_FILES}
    assert names <= set(registry.names())


@pytest.mark.parametrize("path", CLASSIFIER_FILES, ids=lambda p: p.name)
def test_classifier_model_metadata(path):
    meta = load_model(str(path), device="cpu").metadata
    assert [k for k in contract.CLASSIFIER_REQUIRED_KEYS if k not in meta] == []
    assert len(json.loads(meta[contract.KEY_CLASSES])) == 10
    assert 0.9 <= float(meta[contract.KEY_ACCURACY]) <= 1.0 or path.stem.startswith("cifar")



LITE_FILES = [p for p in STYLE_FILES if ".lite." in p.name]


@pytest.mark.parametrize("path", LITE_FILES, ids=lambda p: p.relative_to(WEIGHTS).as_posix())
def test_shipped_lite_models_use_a_known_lite_network(path):
    from trainer.nets.transformer import LITE, LITE_FR, TransformerConfig
    config = TransformerConfig.from_dict(json.loads(load_model(str(path), device="cpu").metadata[contract.KEY_CONFIG]))
    assert replace(config, padding="reflect") in (LITE, LITE_FR)


def test_the_default_style_runs_on_the_half_resolution_lite_network():
    from stylecam.config import DEFAULT_STYLE
    from trainer.nets.transformer import LITE
    from trainer.nets.transformer import TransformerConfig
    meta = load_model(str(WEIGHTS / f"{DEFAULT_STYLE}.lite.onnx"), device="cpu").metadata
    assert TransformerConfig.from_dict(json.loads(meta[contract.KEY_CONFIG])) == LITE
    described = Stylizer(styles=[DEFAULT_STYLE], device="cpu", weights_dir=WEIGHTS).describe()["models"]
    assert [m["network"] for m in described] == ["lite"]


@pytest.mark.parametrize("path", sorted(WEIGHTS.glob("*.lite.onnx")), ids=lambda p: p.name)
def test_every_shipped_style_has_a_quality_report_without_a_dot_pattern(path):
    """weights/reports/NAME/quality.json: measured on held-out photos; grid strength < 1 grey level is invisible."""
    name = path.name.split(".")[0]
    report = json.loads((WEIGHTS / "reports" / name / "quality.json").read_text())
    assert report["style"] == name and len(report["photos"]) >= 5
    for photo in report["photos"]:
        assert photo["lite"]["grid_2"] < 1.0 and photo["lite"]["grid_4"] < 1.0


@pytest.mark.parametrize("path", sorted(WEIGHTS.glob("*.lite.onnx")), ids=lambda p: p.name)
def test_every_shipped_lite_style_has_a_checked_int8_copy(path):
    """weights/int8/NAME.lite.int8.onnx: same model in int8, agreeing with float32 (PSNR measured here too)."""
    from trainer.quantize import KEY_QUANTIZATION, psnr
    int8_path = WEIGHTS / "int8" / path.name.replace(".lite.onnx", ".lite.int8.onnx")
    fp32, int8 = load_model(str(path), device="cpu"), load_model(str(int8_path), device="cpu")
    assert int8.metadata["stylecam.precision"] == "int8"
    for key in (contract.KEY_NAME, contract.KEY_VARIANT, contract.KEY_PADDING, contract.KEY_CONFIG):
        assert int8.metadata[key] == fp32.metadata[key]
    settings = json.loads(int8.metadata[KEY_QUANTIZATION])
    assert settings["psnr_db"] >= 30.0 and settings["int8_convs"] >= 6 and settings["float32_convs"] == 2
    x = photo_like(96, 128)[None, :, :, ::-1].transpose(0, 3, 1, 2).astype(np.float32)
    assert psnr(fp32.run(x), int8.run(x)) >= 25.0
    entry = Registry(WEIGHTS).find(fp32.metadata[contract.KEY_NAME], variant="lite", precision="int8")
    assert entry.path == int8_path
