"""--classify: classifier labels beside the stylized frame (stylecam.overlay), with a stand-in
stylecam.classify and with the real one."""
from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

from stylecam import runner
from stylecam import overlay as overlay_module
from stylecam.config import RunConfig
from stylecam.errors import UserError
from tests.fakes.engine import engine
from tests.fakes.modules import stub_classify_module
from tests.fakes.onnx_models import make_classifier_model


def test_classify_overlay_side_by_side_with_stub(tmp_path, weights, monkeypatch):
    module = stub_classify_module()
    monkeypatch.setitem(sys.modules, "stylecam.classify", module)
    model = make_classifier_model(tmp_path / "clf.onnx")
    overlay = overlay_module.LabelOverlay(str(model))
    original = np.zeros((20, 30, 3), np.uint8)
    original[..., 2] = 200
    stylized = np.zeros((20, 30, 3), np.uint8)
    stylized[..., 0] = 200
    out = overlay.compose(original, stylized)
    assert out.shape == (20, 60, 3)
    image = tmp_path / "red.png"
    cv2.imwrite(str(image), original)
    code, summary = runner.run(RunConfig(engine=engine(weights), sources=(str(image),), classify=str(model),
                                         progress=False))
    assert code == 0 and cv2.imread(str(tmp_path / "red_stylised.png")).shape == (20, 60, 3)


def test_classify_missing_file(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "stylecam.classify", stub_classify_module())
    with pytest.raises(UserError, match="classifier model not found"):
        overlay_module.LabelOverlay(str(tmp_path / "x.onnx"))


def test_classify_by_shipped_name(tmp_path, weights, monkeypatch):
    module = stub_classify_module()
    loaded = []
    module.load_classifier = lambda path, device="auto": loaded.append(path) or object()
    monkeypatch.setitem(sys.modules, "stylecam.classify", module)
    model = make_classifier_model(weights / "classifiers" / "colors.onnx")
    overlay_module.LabelOverlay("colors", weights_dir=str(weights))
    assert loaded == [str(model)]
    with pytest.raises(UserError, match="classifier model not found: color .*shipped name: colors"):
        overlay_module.LabelOverlay("color", weights_dir=str(weights))
    with pytest.raises(UserError, match="not found: colors.onnx"):  # a path is never looked up by name
        overlay_module.LabelOverlay("colors.onnx", weights_dir=str(weights))


def test_classify_with_the_real_module(tmp_path):
    from stylecam import classify
    model = make_classifier_model(tmp_path / "clf.onnx")
    overlay = overlay_module.LabelOverlay(str(model), device="cpu")
    red = np.zeros((32, 32, 3), np.uint8)
    red[..., 2] = 255
    assert isinstance(overlay.classifier, classify.Classifier)        # the real one, not a stand-in
    labels = overlay.classifier.top_k(red, k=3)
    assert labels[0][0] == "red" and len(labels) == 3 and labels[0][1] > labels[1][1]
    assert overlay.compose(red, red).shape == (32, 64, 3)
