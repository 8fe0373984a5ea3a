"""`stylecam-train export-vgg`: VGG-16 relu2_2 as ONNX, checked against PyTorch."""
from __future__ import annotations

import argparse

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from stylecam.errors import UserError  # noqa: E402
from trainer import export_vgg  # noqa: E402
from trainer.nets.vgg import random_vgg_standin  # noqa: E402

# torchvision vgg16().features conv shapes (index -> (out, in)); ReLUs and pools carry no weights
VGG16_CONVS = {0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128), 10: (256, 128), 12: (256, 256),
               14: (256, 256), 17: (512, 256), 19: (512, 512), 21: (512, 512), 24: (512, 512),
               26: (512, 512), 28: (512, 512)}


def test_export_features_matches_pytorch(tmp_path):
    net = random_vgg_standin(["relu2_2"], width=4)
    result = export_vgg.export_features(net, tmp_path / "f.onnx")
    assert result["max_abs_diff"] <= export_vgg.PARITY_TOLERANCE
    session = ort.InferenceSession(str(tmp_path / "f.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert [o.name for o in session.get_outputs()] == ["features"]
    x = np.random.default_rng(0).uniform(0, 255, (2, 3, 36, 44)).astype(np.float32)  # other size, batch 2
    got = session.run(["features"], {"image": x})[0]
    with torch.no_grad():
        expected = net(torch.from_numpy(x))["relu2_2"].numpy()
    assert got.shape == (2, 8, 18, 22)
    np.testing.assert_allclose(got, expected, atol=1e-3)
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["stylecam.layer"] == "relu2_2"
    assert not list(tmp_path.glob(".*"))  # no temporary left behind


@pytest.mark.slow
def test_export_vgg_from_local_weights_file(tmp_path):
    """The real VGG-16 topology from a (random) local state dict: 128 relu2_2 channels at half size."""
    g = torch.Generator().manual_seed(0)
    state = {}
    for i, (cout, cin) in VGG16_CONVS.items():
        state[f"{i}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * 0.05
        state[f"{i}.bias"] = torch.zeros(cout)
    torch.save(state, tmp_path / "vgg.pth")
    args = argparse.Namespace(output=str(tmp_path / "out" / "vgg.onnx"), vgg_weights=str(tmp_path / "vgg.pth"))
    assert export_vgg.run(args) == 0
    session = ort.InferenceSession(args.output, providers=["CPUExecutionProvider"])
    out = session.run(None, {"image": np.full((1, 3, 24, 32), 128.0, np.float32)})[0]
    assert out.shape == (1, 128, 12, 16) and out.min() >= 0.0


def test_export_vgg_missing_weights_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="VGG-16 weights file not found"):
        export_vgg.export_vgg(tmp_path / "x.onnx", tmp_path / "missing.pth")


def test_add_arguments_defaults():
    p = argparse.ArgumentParser()
    export_vgg.add_arguments(p)
    args = p.parse_args([])
    assert args.output.endswith("vgg16_relu2_2.onnx") and args.vgg_weights is None


def test_output_folder_or_blocked_path_fails_before_loading_weights(tmp_path):
    """-o naming a folder (once an IsADirectoryError traceback) or a path under a file: a UserError naming
    -o, raised before the VGG-16 weights are looked at (the weights path here does not exist)."""
    (tmp_path / "vgg").mkdir()
    (tmp_path / "regular").write_text("x")
    for target, words in ((tmp_path / "vgg", "is a folder"), (tmp_path / "regular" / "x.onnx", "regular")):
        with pytest.raises(UserError, match=words) as exc:
            export_vgg.export_vgg(target, tmp_path / "missing.pth")
        assert "-o" in exc.value.hint
    net = random_vgg_standin(["relu2_2"], width=4)
    with pytest.raises(UserError, match="is a folder"):
        export_vgg.export_features(net, tmp_path / "vgg")
    assert not list((tmp_path / "vgg").iterdir()) and not list(tmp_path.glob(".*"))


def test_help_says_each_default_once():
    from trainer.cli import DefaultsHelpFormatter
    p = argparse.ArgumentParser(formatter_class=DefaultsHelpFormatter)
    export_vgg.add_arguments(p)
    text = " ".join(p.format_help().split())
    assert f"(default: {export_vgg.DEFAULT_PATH}, where `stylecam study` looks for it)" in text
    assert "(default: $STYLECAM_VGG16, else torchvision's download)" in text
    assert text.count("default") == 2
