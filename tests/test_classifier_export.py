"""ONNX export (parity, metadata) and the runtime side: load_classifier, top_k, overlay_labels."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from stylecam import contract
from stylecam.classify import Normalisation, load_classifier, overlay_labels, preprocess, softmax
from stylecam.errors import UserError
from tests.fakes.onnx_models import make_classifier_model, make_style_model
from trainer.nets.classifier import build_classifier
from trainer.classifier_outputs import export_onnx

RGB_NORM = {"height": 16, "width": 16, "channels": "RGB", "scale": 1 / 255,
            "mean": [0.5, 0.4, 0.3], "std": [0.25, 0.2, 0.3]}
GRAY_NORM = {"height": 12, "width": 12, "channels": "GRAY", "scale": 1 / 255, "mean": [0.1], "std": [0.3]}


@pytest.fixture(scope="module")
def rgb_model(tmp_path_factory):
    torch.manual_seed(0)
    model = build_classifier("conv8-bn-res-bn-pool-conv8-gap", 3, 4, 16, 16).eval()
    with torch.no_grad():                         # non-trivial batch-norm statistics
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    export_onnx(model, path, "tiny", ["cat", "dog", "owl", "eel"], RGB_NORM, 0.8765, {"epochs": 1})
    return model, path


def test_export_metadata_and_graph(rgb_model):
    _, path = rgb_model
    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert all(k in meta for k in contract.CLASSIFIER_REQUIRED_KEYS)
    assert meta[contract.KEY_KIND] == "classifier" and meta[contract.KEY_FORMAT] == contract.FORMAT_VERSION
    assert json.loads(meta[contract.KEY_CLASSES]) == ["cat", "dog", "owl", "eel"]
    assert json.loads(meta[contract.KEY_NORMALISATION]) == RGB_NORM
    assert json.loads(meta[contract.KEY_CONFIG])["arch"] == "conv8-bn-res-bn-pool-conv8-gap"
    assert meta[contract.KEY_ACCURACY] == "0.8765"
    assert [i.name for i in proto.graph.input] == [contract.CLASSIFIER_INPUT]
    assert [o.name for o in proto.graph.output] == [contract.CLASSIFIER_OUTPUT]
    assert not list(path.parent.glob(".*partial*"))


def test_export_parity_batch_of_five(rgb_model):
    model, path = rgb_model
    clf = load_classifier(str(path), device="cpu")
    x = torch.randn(5, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    got = clf.model.session.run(None, {"image": x.numpy()})[0]
    with torch.no_grad():
        expected = model(x).numpy()
    assert got.shape == (5, 4) and np.abs(got - expected).max() < 1e-4


def test_top_k_matches_torch_on_a_frame(rgb_model):
    model, path = rgb_model
    clf = load_classifier(str(path), device="cpu")
    assert clf.class_names == ["cat", "dog", "owl", "eel"] and clf.test_accuracy == pytest.approx(0.8765)
    frame = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    top = clf.top_k(frame, k=3)
    x = torch.from_numpy(preprocess(frame, clf.normalisation))
    with torch.no_grad():
        p = torch.softmax(model(x), 1)[0].numpy()
    order = np.argsort(-p)[:3]
    assert [name for name, _ in top] == [clf.class_names[i] for i in order]
    assert [q for _, q in top] == pytest.approx(p[order].tolist(), abs=1e-5)
    assert len(clf.top_k(frame, k=10)) == 4


def test_preprocess_rgb_values_and_centre_crop():
    norm = Normalisation.from_json(json.dumps(RGB_NORM))
    frame = np.zeros((20, 40, 3), np.uint8)
    frame[:, 10:30] = (0, 0, 255)                  # a red centre square, blue-black sides (BGR)
    x = preprocess(frame, norm)
    assert x.shape == (1, 3, 16, 16) and x.dtype == np.float32
    assert x[0, 0] == pytest.approx(np.full((16, 16), (1.0 - 0.5) / 0.25))      # R channel, crop kept only red
    assert x[0, 2] == pytest.approx(np.full((16, 16), (0.0 - 0.3) / 0.3))
    squashed = preprocess(frame, norm, crop=False)
    assert squashed[0, 0, 0, 0] == pytest.approx((0 - 0.5) / 0.25)


def test_preprocess_gray():
    norm = Normalisation.from_json(json.dumps(GRAY_NORM))
    x = preprocess(np.full((30, 30, 3), 255, np.uint8), norm)
    assert x.shape == (1, 1, 12, 12) and x[0, 0, 5, 5] == pytest.approx((1 - 0.1) / 0.3, abs=1e-5)


def test_softmax():
    p = softmax(np.array([[0.0, np.log(3.0)], [1000.0, 0.0]]))
    assert p[0] == pytest.approx([0.25, 0.75]) and p[1] == pytest.approx([1.0, 0.0])


def test_fake_classifier_with_size_and_range_normalisation(tmp_path):
    path = make_classifier_model(tmp_path / "colors.onnx", size=8)
    clf = load_classifier(str(path), device="cpu")
    green = np.zeros((20, 30, 3), np.uint8)
    green[:, :, 1] = 200
    assert clf.top_k(green, 1)[0][0] == "green"
    assert clf.normalisation.height == 8 and clf.normalisation.scale == pytest.approx(1 / 255)


def test_gray_export_and_top1(tmp_path):
    model = build_classifier("conv4-pool-fc8", 1, 3, 12, 12).eval()
    path = export_onnx(model, tmp_path / "g.onnx", "gray", ["a", "b", "c"], GRAY_NORM, None)
    clf = load_classifier(str(path), device="cpu")
    assert clf.test_accuracy is None
    assert sum(p for _, p in clf.top_k(np.zeros((12, 12, 3), np.uint8), 3)) == pytest.approx(1.0, abs=1e-5)


def test_style_model_is_refused(tmp_path):
    path = make_style_model(tmp_path / "wave.onnx", "wave")
    with pytest.raises(UserError, match="not a classifier"):
        load_classifier(str(path), device="cpu")


def test_bad_classifier_metadata(tmp_path):
    path = make_classifier_model(tmp_path / "c.onnx")
    proto = onnx.load(str(path))
    for p in proto.metadata_props:
        if p.key == contract.KEY_NORMALISATION:
            p.value = "{not json"
    onnx.save(proto, str(path))
    with pytest.raises(UserError, match="bad class or normalisation metadata"):
        load_classifier(str(path), device="cpu")


def test_classes_must_match_outputs(tmp_path):
    path = make_classifier_model(tmp_path / "c.onnx")
    proto = onnx.load(str(path))
    for p in proto.metadata_props:
        if p.key == contract.KEY_CLASSES:
            p.value = json.dumps(["a", "b"])
    onnx.save(proto, str(path))
    with pytest.raises(UserError, match="outputs 3 scores but names 2 classes"):
        load_classifier(str(path), device="cpu")


def test_missing_file():
    with pytest.raises(UserError, match="not found"):
        load_classifier("/nonexistent/model.onnx", device="cpu")


def test_overlay_labels_is_pure_and_draws_top_left():
    frame = np.full((240, 320, 3), 200, np.uint8)
    before = frame.copy()
    out = overlay_labels(frame, [("cat", 0.875), ("dog", 0.1)], "original")
    assert np.array_equal(frame, before) and out.shape == frame.shape and out.dtype == np.uint8
    assert (out[:60, :100] != 200).any()
    assert np.array_equal(out[150:, 200:], frame[150:, 200:])
    tiny = overlay_labels(np.zeros((10, 10, 3), np.uint8), [("a very long label", 1.0)], "t")
    assert tiny.shape == (10, 10, 3)


def test_labelled_pair_side_by_side(tmp_path):
    from stylecam.classify import labelled_pair

    clf = load_classifier(str(make_classifier_model(tmp_path / "c.onnx", size=8)), device="cpu")
    red = np.zeros((60, 80, 3), np.uint8)
    red[:, :, 2] = 255
    blue = np.zeros((60, 80, 3), np.uint8)
    blue[:, :, 0] = 255
    pair = labelled_pair(clf, red, blue)
    assert pair.shape == (60, 160, 3)
    assert np.array_equal(pair[50:, 70:80], red[50:, 70:80]) and np.array_equal(pair[50:, 150:], blue[50:, 70:])
    with pytest.raises(ValueError, match="heights differ"):
        labelled_pair(clf, red, blue[:30])
