"""Checkpoints load as tensors and plain values only: a crafted checkpoint never runs its code.

The crafted file's unpickling would create a marker file (io.open(marker, "w")); every verb that
reads a .pt file must refuse it with one line, exit 2, and the marker must never appear.
"""
from __future__ import annotations

import argparse
import json
import pickle
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch

from stylecam import contract
from trainer.checkpoints import atomic_save, read_checkpoint, to_plain
from trainer.cli import main as train_main
from trainer.convert_checkpoint import convert_checkpoint
from trainer.export import export_style
from trainer.nets.transformer import CONFIGS, transformer_from_config
from trainer.provenance import portable_path
from trainer.train_style import StyleTrainConfig

REPO = Path(__file__).resolve().parents[1]


class Payload:
    """Unpickled in full, this opens (creates) ``marker``: the stand-in for any command."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def style_checkpoint(**config) -> dict:
    """A real (untrained) lite style checkpoint of plain values; ``config`` overrides its config."""
    net = transformer_from_config(CONFIGS["lite"])
    cfg = asdict(StyleTrainConfig(name="tiny", style_image="painting.png", data="photos", variant="lite"))
    return {"model": net.state_dict(), "config": {**cfg, **config}, "step": 1, "history": [],
            "network": net.config.to_dict(), "kind": "stylecam-style"}


def crafted(path: Path, marker: Path, form: str) -> Path:
    """A checkpoint with every key the verbs ask for and a code-running value, in one of torch's
    formats ("zip", "legacy") or as a bare pickle ("pickle")."""
    ckpt = {**style_checkpoint(), "teacher_metadata": {}, "state_dict": {}, "config": Payload(marker)}
    if form == "pickle":
        path.write_bytes(pickle.dumps(ckpt, protocol=2))
    else:
        torch.save(ckpt, path, _use_new_zipfile_serialization=form == "zip")
    return path


def write_image(path: Path) -> Path:
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 256, (40, 52, 3), dtype=np.uint8))
    return path


def loading_verbs(ck: Path, tmp_path: Path, photos: Path, painting: Path) -> dict[str, list[str]]:
    """Every command line that reads the checkpoint ``ck``."""
    image = write_image(tmp_path / "image.png")
    style = ["style", "--style-image", str(painting), "--data", str(photos), "--name", "t", "--config", "lite",
             "--size", "32", "--iterations", "2", "--batch-size", "2", "--out", str(tmp_path / "run"),
             "--weights-dir", str(tmp_path / "w"), "--device", "cpu", "--holdout", "1"]
    return {
        "export": ["export", str(ck), "-o", str(tmp_path / "out.onnx")],
        "style --resume": [*style, "--resume", str(ck)],
        "style --init": [*style, "--init", str(ck)],
        "distill TEACHER.pt": ["distill", str(ck), "--data", str(photos), "-o", str(tmp_path / "d.onnx"),
                               "--out", str(tmp_path / "drun"), "--device", "cpu"],
        "distill --resume": ["distill", str(tmp_path / "teacher.onnx"), "--data", str(photos), "--resume", str(ck),
                             "-o", str(tmp_path / "d.onnx"), "--out", str(tmp_path / "drun"), "--device", "cpu"],
        "visualize --model": ["visualize", str(image), "--model", str(ck), "--layer", "conv1",
                              "--out", str(tmp_path / "vis")],
        "convert-checkpoint": ["convert-checkpoint", str(ck), str(tmp_path / "new.pt")],
    }


@pytest.mark.parametrize("form", ["zip", "legacy", "pickle"])
def test_every_loading_verb_refuses_a_crafted_checkpoint_and_runs_nothing(form, tmp_path, tiny_photos,
                                                                          tiny_painting, capsys):
    marker = tmp_path / "MARKER"
    ck = crafted(tmp_path / "evil.pt", marker, form)
    before = ck.read_bytes()
    for verb, argv in loading_verbs(ck, tmp_path, tiny_photos, tiny_painting).items():
        code = train_main(argv)
        err = capsys.readouterr().err
        lines = err.strip().splitlines()
        assert code == 2, (verb, err)
        assert len(lines) == 1 and lines[0].startswith("stylecam-train: error:"), (verb, err)
        assert "Traceback" not in err and "evil.pt" in lines[0], (verb, err)
        if verb == "convert-checkpoint":
            assert "which no stylecam checkpoint holds" in lines[0] and "never runs code" in lines[0], err
        else:
            assert "refusing to load" in lines[0], (verb, err)
            assert f"stylecam-train convert-checkpoint {ck} NEW.pt" in lines[0], (verb, err)
        assert form == "pickle" or "io.open" in lines[0], (verb, err)   # the first object torch refused
        assert not marker.exists(), f"{verb} ran the checkpoint's code"
    assert ck.read_bytes() == before
    assert not (tmp_path / "new.pt").exists() and not (tmp_path / "out.onnx").exists()


def test_the_crafted_checkpoint_does_run_code_when_unpickled_in_full(tmp_path):
    """The check above means something: loading the same file the unsafe way creates the marker."""
    marker = tmp_path / "MARKER"
    ck = crafted(tmp_path / "evil.pt", marker, "zip")
    torch.load(ck, weights_only=False)
    assert marker.exists()


def test_export_does_not_unpickle_the_init_named_in_a_checkpoint(tmp_path):
    """The provenance of --init weights is read from the file the config names: weights-only too."""
    marker = tmp_path / "MARKER"
    evil = crafted(tmp_path / "init.pt", marker, "zip")
    ck = tmp_path / "ck.pt"
    atomic_save(style_checkpoint(init=str(evil)), ck)
    report = export_style(ck, tmp_path / "tiny.lite.onnx")
    assert not marker.exists()
    meta = {p.key: p.value for p in onnx.load(report["path"]).metadata_props}
    training = json.loads(meta[contract.KEY_TRAINING])
    assert training["init"] == portable_path(evil) == "init.pt" and training["init_training"] == {}


# ----- what checkpoints hold, and converting old ones ---------------------------------------------

def test_saved_checkpoints_are_plain_and_load_weights_only(tmp_path):
    cfg = StyleTrainConfig(name="tiny", style_image="p.png", data="d")
    obj = {"config": cfg, "where": Path("/runs/x"), "lr": np.float32(0.5), "steps": np.int64(7),
           "curve": np.arange(3, dtype=np.float32), "args": argparse.Namespace(seed=1), "betas": (0.9, 0.99),
           "weights": torch.ones(2)}
    atomic_save(obj, tmp_path / "ck.pt")
    loaded = torch.load(tmp_path / "ck.pt", weights_only=True)
    assert loaded["config"] == asdict(cfg) and loaded["where"] == "/runs/x"
    assert loaded["lr"] == 0.5 and type(loaded["lr"]) is float and loaded["steps"] == 7 and type(loaded["steps"]) is int
    assert torch.equal(loaded["curve"], torch.tensor([0.0, 1.0, 2.0])) and loaded["args"] == {"seed": 1}
    assert loaded["betas"] == (0.9, 0.99) and torch.equal(loaded["weights"], torch.ones(2))
    with pytest.raises(TypeError, match=r"checkpoint\['bad'\] is a builtins.object"):
        to_plain({"bad": object()})


def test_an_old_checkpoint_with_objects_is_refused_with_the_way_to_convert_it(tmp_path, capsys):
    old, new = tmp_path / "old.pt", tmp_path / "new.pt"
    ckpt = style_checkpoint()
    ckpt["config"] = StyleTrainConfig(**{**ckpt["config"], "out": Path("runs/tiny")})   # the object, not a dict
    ckpt["history"] = [{"step": 1, "total": np.float64(3.5)}]
    torch.save(ckpt, old)
    code = train_main(["export", str(old), "-o", str(tmp_path / "x.onnx")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "trainer.train_style.StyleTrainConfig" in err[0] and f"convert-checkpoint {old} NEW.pt" in err[0]
    assert train_main(["convert-checkpoint", str(old), str(new)]) == 0
    converted = read_checkpoint(new)
    assert converted["config"]["out"] == "runs/tiny" and converted["history"] == [{"step": 1, "total": 3.5}]
    assert all(torch.equal(converted["model"][k], v) for k, v in ckpt["model"].items())
    assert train_main(["export", str(new), "-o", str(tmp_path / "x.onnx")]) == 0
    assert (tmp_path / "x.onnx").is_file()


def test_convert_never_runs_code_and_has_no_option_that_would(tmp_path, capsys):
    marker = tmp_path / "MARKER"
    ck = crafted(tmp_path / "own.pt", marker, "zip")
    with pytest.raises(Exception, match="which no stylecam checkpoint holds"):
        convert_checkpoint(ck, tmp_path / "new.pt")
    assert not marker.exists() and not (tmp_path / "new.pt").exists()
    with pytest.raises(SystemExit):
        train_main(["convert-checkpoint", str(ck), str(tmp_path / "new.pt"), "--trust-code"])
    assert not marker.exists()
    source = (REPO / "trainer").rglob("*.py")
    assert not [p for p in source if "weights_only=False" in p.read_text()]


@pytest.mark.parametrize("content, words", [(b"", "cannot read checkpoint"),
                                            (b"\x00not a checkpoint at all" * 50, "cannot read checkpoint"),
                                            (None, "checkpoint not found")])
def test_unreadable_checkpoints_give_one_line(tmp_path, capsys, content, words):
    ck = tmp_path / "bad.pt"
    if content is not None:
        ck.write_bytes(content)
    assert train_main(["export", str(ck), "-o", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0] and "bad.pt" in err[0] and "Traceback" not in err[0]
