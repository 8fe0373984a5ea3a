"""`stylecam-train zoo-export`: a zoo bundle's styles to checked ONNX files the runtime uses, and its Gatys images."""
from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from stylecam import contract
from stylecam.pipeline import Stylizer
from stylecam.styles import Registry
from tests.fakes.training import LAYERS
from tests.test_trainer_zoo import make_two_styles, small_config
from trainer import zoo as zoo_module
from trainer.cli import main as train_main
from trainer.nets.transformer import TransformerConfig, transformer_from_config
from trainer.nets.vgg import random_vgg_standin
from trainer.onnx_weights import weights_dtype
from trainer.zoo import train_zoo
from trainer.zoo_bundle import load_bundle, weights_for_training
from trainer.zoo_export import bundle_sha256, unpack_gatys


@pytest.fixture
def zoo_run(tiny_photos, tmp_path, monkeypatch) -> Path:
    two_styles = make_two_styles(tmp_path)
    net = random_vgg_standin(LAYERS)
    monkeypatch.setattr(zoo_module, "load_vgg16", lambda layers, path=None: net)
    cfg = small_config(two_styles, str(tiny_photos), steps=2, out=str(tmp_path / "zoo"), split_mib=0.05,
                       gatys_photos=str(tiny_photos), gatys_steps=2, gatys_size=32)
    train_zoo(cfg, progress=False, log=lambda m: None)
    return tmp_path / "zoo"


def test_every_style_becomes_a_model_the_runtime_runs_as_the_bundle_network(zoo_run, tmp_path, capsys):
    weights = tmp_path / "weights"
    assert list(zoo_run.glob("zoo.pt.part*")) and not (zoo_run / "zoo.pt").exists()   # a split bundle
    code = train_main(["zoo-export", str(zoo_run / "zoo.pt"), "--weights-dir", str(weights),
                       "--data-as", "../shared/data/train", "--paintings-as", "../shared/data/styles",
                       "--gatys-tar", str(zoo_run / "gatys.tar")])
    assert code == 0, capsys.readouterr().err
    bundle = load_bundle(zoo_run / "zoo.pt")
    found = {e.name: e for e in Registry(weights).entries}
    assert set(found) == {"stripes", "noise"}
    x = (torch.rand(1, 3, 36, 44) * 255).round()
    for name in ("stripes", "noise"):
        path = weights / f"{name}.lite.onnx"
        model = onnx.load(path)
        assert weights_dtype(model) == "fp16"
        meta = {p.key: p.value for p in model.metadata_props}
        assert meta["stylecam.weights"] == "fp16" and meta["stylecam.precision"] == "fp32"
        training = json.loads(meta[contract.KEY_TRAINING])
        assert training["crops_seen"] == 4 and training["bundle_sha256"] == bundle_sha256(zoo_run / "zoo.pt")
        assert training["data"] == "../shared/data/train" and training["styles_trained_together"] == ["noise", "stripes"]
        assert training["style_image"].startswith("../shared/data/styles/") and training["steps_trained"] == 2
        assert training["style_weight"] == bundle["styles"][name]["settings"]["style_weight"]
        # the runtime's output is the bundle's network (float16 weights, computed in float32)
        entry = bundle["styles"][name]
        net = transformer_from_config(TransformerConfig.from_dict(entry["network"])).eval()
        net.load_state_dict(weights_for_training(entry["weights"]))
        with torch.no_grad():
            expected = net(x).clamp(0, 255).numpy()[0].transpose(1, 2, 0)[..., ::-1]
        stylizer = Stylizer(styles=[str(path)], device="cpu")
        got = stylizer(np.ascontiguousarray(x.numpy()[0].transpose(1, 2, 0)[..., ::-1]).astype(np.uint8))
        assert np.abs(got.astype(float) - expected).max() <= 1.0
        gatys = sorted((weights / "reports" / name / "gatys").glob("*.jpg"))
        assert [p.name for p in gatys] == [f"{i:02d}.jpg" for i in range(8)]
        record = json.loads((weights / "reports" / name / "gatys" / "gatys.json").read_text())
        assert all(set(p["terms"]) == {"content", "style", "tv", "total"} for p in record["photos"])


def test_exporting_over_the_bundle_or_an_unknown_style_is_refused(zoo_run, tmp_path, capsys):
    part = next(zoo_run.glob("zoo.pt.part00"))
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "noise.lite.onnx").hardlink_to(part)
    before = part.read_bytes()
    code = train_main(["zoo-export", str(zoo_run / "zoo.pt"), "--weights-dir", str(tmp_path / "w")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert part.read_bytes() == before and not (tmp_path / "w" / "stripes.lite.onnx").exists()
    code = train_main(["zoo-export", str(zoo_run / "zoo.pt"), "--weights-dir", str(tmp_path / "x"), "--styles", "wave"])
    assert code == 2 and "no style wave" in capsys.readouterr().err


def test_unpacking_gatys_writes_only_style_images_inside_the_reports(tmp_path):
    import io
    archive = tmp_path / "gatys.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in (("wave/00.jpg", b"jpeg"), ("../evil/00.jpg", b"x"), ("/abs/00.jpg", b"x"),
                           ("wave/notes.txt", b"x"), ("gatys.json", b'{"steps": 3, "photos": []}')):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    counts = unpack_gatys(archive, tmp_path / "reports")
    assert counts == {"wave": 1}
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["gatys.tar", "reports/wave/gatys/00.jpg", "reports/wave/gatys/gatys.json"]
