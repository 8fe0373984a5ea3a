"""export_network: a style network to a checked ONNX file, with float32 or float16-stored weights;
a file with float16-stored weights re-exports, teaches a distillation and starts a training run."""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import onnx
import pytest
import torch

from stylecam import contract
from stylecam.session import load_model
from trainer.distill import DistillConfig, distill, load_teacher
from trainer.export import KEY_WEIGHTS, TOLERANCE, export_network, export_style, fp16_rounded, onnx_parity
from trainer.metadata import KEY_PRECISION, style_metadata
from trainer.nets.transformer import CONFIGS, transformer_from_config
from trainer.nets.vgg import random_vgg_standin
from trainer.network_files import network_from_onnx
from trainer.onnx_weights import weights_dtype
from trainer.train_style import StyleTrainConfig, make_trainer


@pytest.fixture(scope="module")
def lite_net() -> torch.nn.Module:
    """A lite style network with random weights (seeded), float32, eval mode. Every tensor is made
    distinct, as training makes it: the exporter merges equal ones (e.g. fresh norms' ones and zeros)."""
    torch.manual_seed(0)
    net = transformer_from_config(CONFIGS["lite"]).eval()
    with torch.no_grad():
        for param in net.parameters():
            param.add_(torch.randn_like(param) * 0.01)
    return net


def tiny_metadata(net: torch.nn.Module) -> dict[str, str]:
    """The metadata `stylecam-train style` would write for ``net``, a style named "tiny"."""
    ckpt = {"config": asdict(StyleTrainConfig(name="tiny", style_image="painting.png", data="photos", variant="lite")),
            "network": net.config.to_dict(), "step": 0, "history": []}
    return style_metadata(ckpt, net.config.padding, "fp32")


def metadata_of(path: str | Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


@pytest.fixture(scope="module")
def fp16_weights_file(lite_net, tmp_path_factory) -> Path:
    """tiny.lite.onnx of ``lite_net`` with its weights stored as float16."""
    path = tmp_path_factory.mktemp("fp16w") / "tiny.lite.onnx"
    export_network(lite_net, tiny_metadata(lite_net), path, weights_fp16=True)
    return path


def assert_same_weights(net: torch.nn.Module, expected: torch.nn.Module) -> None:
    got, want = net.state_dict(), expected.state_dict()
    assert got.keys() == want.keys()
    for key in want:
        assert torch.equal(got[key], want[key]), key


def test_export_network_writes_the_metadata_and_the_weights(lite_net, tmp_path):
    meta = tiny_metadata(lite_net)
    report = export_network(lite_net, meta, tmp_path / "out" / "tiny.lite.onnx")
    assert report["path"] == str(tmp_path / "out" / "tiny.lite.onnx")
    assert report["precision"] == "fp32" and report["weights"] == "fp32"
    assert report["tolerance"] == TOLERANCE["fp32"] and 0 <= report["max_abs_diff"] <= report["tolerance"]
    assert metadata_of(report["path"]) == meta            # as given, nothing added for fp32 weights
    assert weights_dtype(onnx.load(report["path"])) == "fp32"
    back, back_meta = network_from_onnx(report["path"])
    assert back_meta == meta
    assert_same_weights(back, lite_net)
    assert [p.name for p in tmp_path.joinpath("out").iterdir()] == ["tiny.lite.onnx"]   # no temporary left


def test_weights_fp16_halve_the_file_and_are_compared_with_the_rounded_network(lite_net, fp16_weights_file, tmp_path):
    full = export_network(lite_net, tiny_metadata(lite_net), tmp_path / "fp32.onnx")
    assert fp16_weights_file.stat().st_size < 0.7 * Path(full["path"]).stat().st_size
    model = onnx.load(str(fp16_weights_file))
    onnx.checker.check_model(model, full_check=True)
    assert weights_dtype(model) == "fp16"
    meta = metadata_of(fp16_weights_file)
    assert meta[KEY_WEIGHTS] == "fp16" and meta[KEY_PRECISION] == "fp32"
    assert {k: v for k, v in meta.items() if k != KEY_WEIGHTS} == tiny_metadata(lite_net)
    # the gate compares with the network that holds the stored (rounded) weights: close to that one,
    # while the unrounded network differs by far more than the fp32 tolerance
    rounded = fp16_rounded(lite_net)
    assert onnx_parity(fp16_weights_file, rounded) <= 0.01
    assert onnx_parity(fp16_weights_file, lite_net) > 3 * TOLERANCE["fp32"]
    again = export_network(lite_net, tiny_metadata(lite_net), tmp_path / "again.onnx", weights_fp16=True)
    assert again["weights"] == "fp16" and again["precision"] == "fp32"
    assert again["max_abs_diff"] == onnx_parity(again["path"], rounded) and again["tolerance"] == TOLERANCE["fp32"]
    # the runtime loads it like any float32 style model
    loaded = load_model(str(fp16_weights_file), device="cpu")
    x = torch.rand(1, 3, 36, 52).numpy() * 255
    assert loaded.run(x).shape == x.shape


def test_fp16_rounded_rounds_what_the_file_stores_and_nothing_else(lite_net):
    rounded = fp16_rounded(lite_net)
    changed = 0
    for key, value in lite_net.state_dict().items():
        expected = value.half().float() if value.is_floating_point() and value.numel() >= 16 else value
        assert torch.equal(rounded.state_dict()[key], expected), key
        changed += not torch.equal(expected, value)
    assert changed > 5                                    # the convolutions' weights
    assert rounded is not lite_net and next(lite_net.parameters()).data_ptr() != next(rounded.parameters()).data_ptr()


def test_network_from_onnx_reads_fp16_weights_as_the_rounded_float32_ones(lite_net, fp16_weights_file):
    net, meta = network_from_onnx(fp16_weights_file)
    assert meta[contract.KEY_NAME] == "tiny"
    assert all(p.dtype == torch.float32 for p in net.parameters())
    assert_same_weights(net, fp16_rounded(lite_net))


def test_re_export_of_fp16_weights_is_an_ordinary_fp32_file(lite_net, fp16_weights_file, tmp_path):
    report = export_style(fp16_weights_file, tmp_path / "plain.onnx", padding="zero")
    assert report["precision"] == "fp32" and report["padding"] == "zero"
    meta = metadata_of(report["path"])
    assert KEY_WEIGHTS not in meta and meta[KEY_PRECISION] == "fp32" and meta[contract.KEY_PADDING] == "zero"
    assert weights_dtype(onnx.load(report["path"])) == "fp32"
    net, _ = network_from_onnx(report["path"])
    assert_same_weights(net, fp16_rounded(lite_net))


def test_fp16_compute_and_fp16_weights_exclude_each_other(lite_net, tmp_path):
    with pytest.raises(ValueError, match="weights_fp16"):
        export_network(lite_net, tiny_metadata(lite_net), tmp_path / "x.onnx", fp16=True, weights_fp16=True)
    assert not (tmp_path / "x.onnx").exists()


def test_distill_takes_a_teacher_with_fp16_weights(lite_net, fp16_weights_file, tiny_photos, tmp_path):
    teacher, meta = load_teacher(str(fp16_weights_file))
    assert_same_weights(teacher, fp16_rounded(lite_net))
    assert meta[KEY_WEIGHTS] == "fp16"
    cfg = DistillConfig(teacher=str(fp16_weights_file), data=str(tiny_photos), size=32, batch_size=2, iterations=2,
                        holdout=2, out=str(tmp_path / "run"), output=str(tmp_path / "student.lite.onnx"), device="cpu")
    summary = distill(cfg, progress=False)
    student = metadata_of(summary["onnx"])
    assert student[contract.KEY_NAME] == "tiny" and student[KEY_PRECISION] == "fp32"
    assert KEY_WEIGHTS not in student                     # how the teacher was stored says nothing of the student


def test_style_training_starts_from_fp16_weights(lite_net, fp16_weights_file, tiny_photos, tiny_painting, tmp_path):
    cfg = StyleTrainConfig(name="tiny", style_image=str(tiny_painting), data=str(tiny_photos), variant="lite",
                           size=32, batch_size=2, style_size=48, holdout=2, device="cpu", out=str(tmp_path / "ft"),
                           init=str(fp16_weights_file))
    trainer = make_trainer(cfg, loss_net=random_vgg_standin(["relu1_2", "relu2_2", "relu3_3", "relu4_3"]))
    assert_same_weights(trainer.net, fp16_rounded(lite_net))
