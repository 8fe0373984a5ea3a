"""trainer/provenance.py: portable paths, complete training chains, metadata rewritten without touching weights."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest

from stylecam import contract
from stylecam.session import load_model
from trainer import provenance as P
from trainer.nets.vgg import random_vgg_standin
from trainer.train_style import StyleTrainConfig, train_style

LAYERS = ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]


def stage(**changes) -> dict:
    """A complete first stage (from random weights), as a shipped model records it."""
    base = {"style_image": "../shared/data/styles/wave.jpg", "data": "../shared/data/train", "holdout": 4,
            "size": 192, "batch_size": 4, "steps_trained": 800, "lr": 3e-3, "seed": 0, "content_weight": 1.0,
            "style_weight": 1e4, "tv_weight": 1e-7, "style_size": 384, "content_layer": "relu2_2",
            "style_layers": {"relu1_2": 1.0}, "init": ""}
    return {**base, **changes}


def test_portable_path_is_relative_to_the_repository_or_the_shared_folder(tmp_path):
    repo, shared = tmp_path / "repo", tmp_path / "shared"
    (repo / "weights").mkdir(parents=True)
    (shared / "data" / "train").mkdir(parents=True)
    (tmp_path / "home" / "photos").mkdir(parents=True)
    assert P.portable_path(repo / "weights" / "wave.lite.onnx", repo) == "weights/wave.lite.onnx"
    assert P.portable_path(shared / "data" / "train", repo) == "../shared/data/train"
    assert P.portable_path(repo / "weights" / ".." / ".." / "shared" / "data" / "train", repo) == "../shared/data/train"
    assert P.portable_path(tmp_path / "home" / "photos", repo) == "photos"      # a user's own folder: its name
    assert P.portable_path("", repo) == ""


@pytest.mark.parametrize("recorded, portable", [
    ("weights/wave.lite.onnx", True), ("../shared/data/train", True), ("../shared/data/styles/wave.jpg", True),
    ("runs/prev/wave.lite.onnx", False), ("/home/me/photos", False), ("../elsewhere/x.onnx", False),
    ("../shared/../x", False), ("", False), ("C:\\photos", False), ("weights/../../x", False)])
def test_which_recorded_paths_are_portable(recorded, portable):
    assert P.is_portable(recorded) is portable


def test_a_complete_chain_has_no_problems_and_lists_its_stages_first_to_last():
    first = stage()
    second = stage(steps_trained=400, style_weight=5e4, init=P.INIT_PREVIOUS_STAGE, init_kept=False,
                   init_training=first)
    third = stage(steps_trained=300, init="weights/wave.lite.onnx", init_commit="a" * 40, init_sha256="b" * 64,
                  init_training=second)
    assert P.chain_problems(third) == []
    assert [s["steps_trained"] for s in P.training_stages(third)] == [800, 400, 300]


@pytest.mark.parametrize("broken, expected", [
    (stage(style_image="", size=None), "stage 1 of 1: no style_image, size"),
    (stage(data="runs/photos"), "stage 1 of 1: data 'runs/photos' is not relative"),
    (stage(init="weights/x.onnx", init_training={}), "stage 1 of 1: starts from 'weights/x.onnx', but no record"),
    (stage(init="runs/v3/x/checkpoint.pt", init_training=stage()), "stage 2 of 2: init 'runs/v3/x/checkpoint.pt'"),
    (stage(init=P.INIT_PREVIOUS_STAGE, init_training=stage()), "init_kept is not false"),
    (stage(init="weights/x.onnx", init_sha256="b" * 64, init_training=stage()), "without the commit that holds it"),
    (stage(init="weights/x.onnx", init_commit="a" * 40, init_training=stage()), "without its sha256"),
    (stage(init="weights/x.onnx", init_commit="a" * 40, init_sha256="b" * 64,
           init_training={"method": "style training", "steps_trained": 800}), "stage 1 of 2: no style_image"),
])
def test_chain_problems_name_the_stage_and_what_is_wrong(broken, expected):
    problems = P.chain_problems(broken)
    assert any(expected in p for p in problems), problems


@pytest.fixture
def tiny_model(tiny_photos, tiny_painting, tmp_path) -> Path:
    cfg = StyleTrainConfig(name="tiny", style_image=str(tiny_painting), data=str(tiny_photos), variant="lite",
                           size=32, batch_size=2, iterations=2, style_size=48, holdout=2, checkpoint_every=10,
                           out=str(tmp_path / "run"), weights_dir=str(tmp_path / "weights"), device="cpu")
    train_style(cfg, loss_net=random_vgg_standin(LAYERS), export=True, progress=False)
    return tmp_path / "weights" / "tiny.lite.onnx"


def test_replace_metadata_keeps_graph_weights_and_output(tiny_model, tmp_path):
    before = load_model(str(tiny_model), device="cpu")
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, 36, 44)).astype(np.float32)
    expected = before.run(x)
    meta = {**before.metadata, contract.KEY_TRAINING: json.dumps({"rewritten": True})}
    out = P.replace_metadata(tiny_model, meta, tmp_path / "copy.onnx")
    after = load_model(str(out), device="cpu")
    assert after.metadata == meta
    assert np.array_equal(after.run(x), expected)                     # bit for bit
    assert P.without_metadata(out) == P.without_metadata(tiny_model)
    assert P.file_sha256(out) != P.file_sha256(tiny_model)
    P.replace_metadata(out, before.metadata)                             # in place, back to the first metadata
    assert {p.key: p.value for p in onnx.load(str(out)).metadata_props} == before.metadata


def test_export_records_the_photo_folder_and_the_init_file_by_sha256(tiny_model, tiny_photos, tiny_painting, tmp_path):
    training = json.loads(load_model(str(tiny_model), device="cpu").metadata[contract.KEY_TRAINING])
    assert training["data"] == tiny_photos.name and training["style_image"] == tiny_painting.name  # outside the repo
    assert training["holdout"] == 2 and training["init"] == "" and training["steps_trained"] == 2
    cfg = StyleTrainConfig(name="tiny", style_image=str(tiny_painting), data=str(tiny_photos), variant="lite",
                           size=32, batch_size=2, iterations=1, style_size=48, holdout=2, checkpoint_every=10,
                           init=str(tiny_model), out=str(tmp_path / "run2"), weights_dir=str(tmp_path / "w2"),
                           device="cpu")
    train_style(cfg, loss_net=random_vgg_standin(LAYERS), export=True, progress=False)
    tuned = json.loads(load_model(str(tmp_path / "w2" / "tiny.lite.onnx"), device="cpu").metadata[contract.KEY_TRAINING])
    assert tuned["init"] == "tiny.lite.onnx" and "init_commit" not in tuned   # not a file of the repository
    assert tuned["init_sha256"] == hashlib.sha256(tiny_model.read_bytes()).hexdigest()
    assert tuned["init_training"] == training
    assert [s["steps_trained"] for s in P.training_stages(tuned)] == [2, 1]


def test_an_init_from_a_committed_file_of_the_repository_records_that_commit():
    shipped = P.REPO / "weights" / "wave.lite.onnx"
    if not shutil.which("git") or not (P.REPO / ".git").exists():
        pytest.skip("not a git checkout")
    git = ["git", "-C", str(P.REPO)]
    if subprocess.run([*git, "diff", "--quiet", "HEAD", "--", "weights/wave.lite.onnx"]).returncode:
        pytest.skip("weights/wave.lite.onnx has uncommitted changes here")
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert P.init_record(shipped) == {"init": "weights/wave.lite.onnx", "init_sha256": P.file_sha256(shipped),
                                      "init_commit": head}
