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
STYLE_FILES = sorted(p for p in WEIGHTS.rglob("*.onnx") if not {"classifiers", "features"} & set(p.parts))
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


SHARED = WEIGHTS.parent.parent / "shared"


def _git_blob_sha256(commit: str, path: str) -> str | None:
    """sha256 of ``path`` as committed in ``commit``; None without git or without that commit (a shallow clone)."""
    import hashlib
    import shutil
    import subprocess
    if not shutil.which("git") or not (WEIGHTS.parent / ".git").exists():
        return None
    blob = subprocess.run(["git", "-C", str(WEIGHTS.parent), "show", f"{commit}:{path}"], capture_output=True)
    return hashlib.sha256(blob.stdout).hexdigest() if blob.returncode == 0 else None


@pytest.mark.parametrize("path", STYLE_FILES, ids=lambda p: p.relative_to(WEIGHTS).as_posix())
def test_every_shipped_style_records_its_whole_training_chain_portably(path):
    """Every stage names its painting, photo folder, settings and steps; every init is a file of the
    repository at a named commit (checked against its sha256 where git has that commit), or a stage of
    the chain itself; paths are relative to the repository or ../shared (which holds them, where present)."""
    from trainer.provenance import INIT_PREVIOUS_STAGE, chain_problems, training_stages
    meta = load_model(str(path), device="cpu").metadata
    training = json.loads(meta[contract.KEY_TRAINING])
    assert chain_problems(training) == []
    stages = training_stages(training)
    assert stages[-1] is training and stages[0]["init"] == ""
    assert training["style_image"] == f"../shared/data/styles/{meta[contract.KEY_NAME]}.jpg"
    for stage in stages:
        for key in ("style_image", "data"):
            if SHARED.is_dir():
                assert (WEIGHTS.parent / stage[key]).exists(), stage[key]
        if stage["init"] and stage["init"] != INIT_PREVIOUS_STAGE:
            committed = _git_blob_sha256(stage["init_commit"], stage["init"])
            assert committed in (None, stage["init_sha256"]), (stage["init"], stage["init_commit"])


def test_registry_finds_every_shipped_style():
    registry = Registry(WEIGHTS)
    names = {load_model(str(p), device="cpu").metadata[contract.KEY_NAME] for p in STYLE_FILES}
    assert names <= set(registry.names())
    assert registry.problems == []   # the classifiers and the study's features model are passed over


def test_the_study_features_model_is_shipped_and_passed_over_by_the_registry(tmp_path):
    import shutil
    features = WEIGHTS / "features" / "vgg16_relu2_2.onnx"
    assert load_model(str(features), device="cpu").metadata[contract.KEY_KIND] == "features"
    shutil.copy(features, tmp_path / "vgg.onnx")    # also outside features/: skipped by its kind
    registry = Registry(tmp_path)
    assert registry.entries == [] and registry.problems == []


@pytest.mark.parametrize("path", CLASSIFIER_FILES, ids=lambda p: p.name)
def test_classifier_model_metadata(path):
    meta = load_model(str(path), device="cpu").metadata
    assert [k for k in contract.CLASSIFIER_REQUIRED_KEYS if k not in meta] == []
    assert len(json.loads(meta[contract.KEY_CLASSES])) == 10
    training = json.loads(meta[contract.KEY_TRAINING])
    assert training["val_size"] == 5000 and 0 < training["val_accuracy"] <= 1   # chosen on validation, not test


#: the fixed test subset: every 10th image of the test set (images 0, 10, ..., 9990)
TEST_SUBSET = slice(0, 10_000, 10)
#: correct answers of each shipped classifier on TEST_SUBSET, measured when it was shipped
EXPECTED_SUBSET_CORRECT = {"mnist.onnx": 992, "fashion-mnist.onnx": 933, "cifar10-fast.onnx": 790, "cifar10.onnx": 825}


def subset_predictions(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, true) classes of the classifier ``path`` on TEST_SUBSET of its dataset, the input made
    as its metadata says: ((pixel * scale) - mean) / std, float32 NCHW. Skips when the dataset is absent."""
    from stylecam.classify import Normalisation
    from stylecam.errors import UserError
    from trainer.data import load_dataset
    model = load_model(str(path), device="cpu")
    dataset = json.loads(model.metadata[contract.KEY_TRAINING])["dataset"]
    try:
        data = load_dataset(dataset, test_only=True)
    except UserError:
        pytest.skip(f"the {dataset} test set is not on this machine")
    assert len(data.test_y) == 10_000
    images, labels = data.test_x[TEST_SUBSET].numpy(), data.test_y[TEST_SUBSET].numpy()
    norm = Normalisation.from_json(model.metadata[contract.KEY_NORMALISATION])
    mean, std = (np.asarray(v, np.float32).reshape(1, -1, 1, 1) for v in (norm.mean, norm.std))
    x = ((images.astype(np.float32) * norm.scale + norm.offset) - mean) / std
    logits = model.session.run([contract.CLASSIFIER_OUTPUT], {contract.CLASSIFIER_INPUT: x.astype(np.float32)})[0]
    return logits.argmax(1), labels


@pytest.mark.parametrize("path", CLASSIFIER_FILES, ids=lambda p: p.name)
def test_shipped_classifier_accuracy_measured_again_on_a_fixed_test_subset(path):
    """1,000 test images, re-measured here: the count of correct answers is the one stored above (up to 2
    answers that rounding on another CPU may flip), and agrees with the file's test accuracy."""
    predicted, labels = subset_predictions(path)
    assert len(labels) == 1000 and len(set(labels.tolist())) == 10
    correct = int((predicted == labels).sum())
    assert abs(correct - EXPECTED_SUBSET_CORRECT[path.name]) <= 2, correct
    reported = float(load_model(str(path), device="cpu").metadata[contract.KEY_ACCURACY])
    assert abs(correct / 1000 - reported) <= 0.03      # a 1,000-image sample of the 10,000 it was measured on



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


@pytest.mark.parametrize("int8", [False, True])
def test_shipped_chain_keeps_tiny_and_thin_frames(int8):
    """The networks reflect-pad inside down to 1/4 of the input: frames under contract.MIN_SIDE
    (icons, --size on a panorama) are grown to it on the host and cropped back."""
    stylizer = Stylizer(styles=["wave", "muse"], repeat=2, device="cpu", weights_dir=WEIGHTS, int8=int8)
    rng = np.random.default_rng(1)
    for height, width in [(1, 1), (2, 3), (4, 4), (1, 200), (15, 9)]:
        frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        out = stylizer(frame)
        assert out.shape == frame.shape and out.dtype == np.uint8


REPORT_PHOTOS = SHARED / "data" / "content"


@pytest.mark.parametrize("path", sorted(WEIGHTS.glob("*.lite.onnx")), ids=lambda p: p.name)
def test_every_shipped_style_has_a_quality_report_of_that_very_file(path):
    """weights/reports/NAME/quality.json names the shipped file by its sha256, and its totals are the
    sums of its terms (content + style + tv, the training objective)."""
    from trainer.provenance import file_sha256
    name = path.name.split(".")[0]
    report = json.loads((WEIGHTS / "reports" / name / "quality.json").read_text())
    assert report["style"] == name and report["models"]["lite"] == path.name and len(report["photos"]) >= 5
    assert report["sha256"]["lite"] == file_sha256(path)
    for row in report["photos"]:
        for method, terms in row.items():
            if isinstance(terms, dict) and "total" in terms:
                assert terms["total"] == pytest.approx(terms["content"] + terms["style"] + terms["tv"], rel=1e-5)


@pytest.mark.skipif(not REPORT_PHOTOS.is_dir(), reason="the held-out photos of the reports (../shared/data/content) "
                    "are not on this machine")
@pytest.mark.parametrize("path", sorted(WEIGHTS.glob("*.lite.onnx")), ids=lambda p: p.name)
def test_shipped_styles_draw_no_grid_and_keep_the_light_measured_again(path):
    """On each photo of its report, the shipped model is run again here: the grid strength (below 1 grey
    level is invisible) and the mean luma (at least half the photos') are what the report says."""
    from stylecam.metrics import grid_pattern
    from trainer.report import load_photo, mean_luma
    import torch
    name = path.name.split(".")[0]
    report = json.loads((WEIGHTS / "reports" / name / "quality.json").read_text())
    model = load_model(str(path), device="cpu", clamp=(0.0, 255.0))
    lumas, photo_lumas = [], []
    for row in report["photos"]:
        content = load_photo(REPORT_PHOTOS / row["photo"], report["size"])[None].float()
        output = model.run(content.numpy())
        rgb = np.clip(output[0], 0, 255).transpose(1, 2, 0)
        grids = {f"grid_{p}": grid_pattern(rgb, p) for p in (2, 4)}
        for key, value in grids.items():
            assert value < 1.0, f"{name} {row['photo']}: {key} {value:.2f} grey levels"
            assert value == pytest.approx(row["lite"][key], abs=1e-3)
        lumas.append(mean_luma(torch.from_numpy(output)))
        photo_lumas.append(mean_luma(content))
        assert lumas[-1] == pytest.approx(row["lite"]["luma"], abs=1e-2)
    photos, styled = float(np.mean(photo_lumas)), float(np.mean(lumas))
    assert 60 < photos < 200 and photos == pytest.approx(report["mean"]["original"]["luma"], abs=1e-2)
    assert styled >= 0.5 * photos, f"{name}: mean luma {styled:.1f} vs the photos' {photos:.1f}"


@pytest.mark.parametrize("path", sorted(WEIGHTS.glob("*.lite.onnx")), ids=lambda p: p.name)
def test_every_shipped_lite_style_has_a_checked_int8_copy(path):
    """weights/int8/NAME.lite.int8.onnx: the same model in int8; its agreement with float32 is measured here
    again on the evaluation photos it records (where ../shared holds them): every photo at least 30 dB,
    and the recorded figures are what the file gives. Without them, on a synthetic photo (>= 25 dB)."""
    from trainer.quantize import KEY_QUANTIZATION, agreement, photo_paths, photo_tensor, psnr
    int8_path = WEIGHTS / "int8" / path.name.replace(".lite.onnx", ".lite.int8.onnx")
    fp32, int8 = load_model(str(path), device="cpu"), load_model(str(int8_path), device="cpu")
    assert int8.metadata["stylecam.precision"] == "int8"
    for key in (contract.KEY_NAME, contract.KEY_VARIANT, contract.KEY_PADDING, contract.KEY_CONFIG,
                contract.KEY_TRAINING):
        assert int8.metadata[key] == fp32.metadata[key]
    settings = json.loads(int8.metadata[KEY_QUANTIZATION])
    assert settings["int8_convs"] >= 6 and settings["float32_convs"] == 2
    assert settings["gate"] == "PSNR against float32 at least 30 dB on every evaluation photo"
    assert (settings["calibration_photos"], settings["evaluation_photos"]) == ("../shared/data/train",
                                                                              "../shared/data/content")
    assert settings["psnr_min_db"] >= 30.0 and settings["psnr_db"] >= settings["psnr_min_db"]
    x = photo_like(96, 128)[None, :, :, ::-1].transpose(0, 3, 1, 2).astype(np.float32)
    assert psnr(fp32.run(x), int8.run(x)) >= 25.0
    evaluation = WEIGHTS.parent / settings["evaluation_photos"]
    if evaluation.is_dir():
        photos = [photo_tensor(p, settings["long_side"]) for p in photo_paths(evaluation, 1000)]
        assert len(photos) == settings["evaluation_images"]
        measured = agreement(path, int8_path, photos)
        assert measured["psnr_min_db"] >= 30.0
        for key in ("psnr_db", "psnr_min_db", "mean_abs_diff"):
            assert measured[key] == pytest.approx(settings[key], abs=0.01), key
    entry = Registry(WEIGHTS).find(fp32.metadata[contract.KEY_NAME], variant="lite", precision="int8")
    assert entry.path == int8_path


@pytest.mark.parametrize("name", ["wave", "mosaic"])   # the lite and lite-fr graphs
def test_fp16_copy_of_a_shipped_style_keeps_float32_io_and_its_values(name):
    """What --fp16 loads on a GPU (float16 weights and activations, float32 in and out), run on the CPU."""
    import onnx
    import onnxruntime as ort

    from stylecam.session import transformed_model_bytes
    path = str(WEIGHTS / f"{name}.lite.onnx")
    half = onnx.load_from_string(transformed_model_bytes(path, clamp=(0.0, 255.0), fp16=True, pad=(4, 0)))
    float_types = {init.data_type for init in half.graph.initializer
                   if init.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)}
    assert onnx.TensorProto.FLOAT16 in float_types
    assert [i.type.tensor_type.elem_type for i in half.graph.input] == [onnx.TensorProto.FLOAT]
    assert [o.type.tensor_type.elem_type for o in half.graph.output] == [onnx.TensorProto.FLOAT]
    x = np.ascontiguousarray(photo_like(61, 95)[None, :, :, ::-1].transpose(0, 3, 1, 2), np.float32)  # padded inside
    full = transformed_model_bytes(path, clamp=(0.0, 255.0), fp16=False, pad=(4, 0))
    outputs = []
    for model in (half.SerializeToString(), full):
        session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        outputs.append(session.run(None, {contract.STYLE_INPUT: x})[0])
    assert outputs[0].shape == outputs[1].shape == x.shape and outputs[0].dtype == np.float32
    assert 0.0 <= outputs[0].min() and outputs[0].max() <= 255.0
    diff = np.abs(outputs[0] - outputs[1])
    assert diff.max() < 2.0 and diff.mean() < 0.25


def _cuda_offered() -> bool:
    from stylecam.session import probe_providers
    return "CUDAExecutionProvider" in probe_providers("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda_offered(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", ["wave", "muse"])
def test_shipped_style_on_the_gpu_matches_the_cpu(name):
    """Real networks on CUDA (float32 and --fp16) against the CPU, one pass and the study chain."""
    frame = photo_like(240, 320)
    registry = Registry(str(WEIGHTS))
    cpu = Stylizer([name], device="cpu", registry=registry)(frame).astype(int)
    gpu = Stylizer([name], device="cuda", registry=registry)
    assert "CUDAExecutionProvider" in gpu.providers
    diff = np.abs(gpu(frame).astype(int) - cpu)
    assert diff.max() <= 3 and diff.mean() < 0.3
    half = np.abs(Stylizer([name], device="cuda", fp16=True, registry=registry)(frame).astype(int) - cpu)
    assert half.mean() < 1.5
    chain_cpu = Stylizer(["wave", "muse"], repeat=3, device="cpu", registry=registry)(frame).astype(int)
    chain_gpu = Stylizer(["wave", "muse"], repeat=3, device="cuda", registry=registry)(frame).astype(int)
    assert np.abs(chain_gpu - chain_cpu).mean() < 1.5


def test_wheel_installs_ship_every_model():
    """pyproject's data-files put every shipped model under share/stylecam/weights, mirroring weights/,
    so `pip install .` / `pip install git+URL` find the same styles and classifiers as a checkout."""
    tomllib = pytest.importorskip("tomllib")
    root = WEIGHTS.parent
    config = tomllib.loads((root / "pyproject.toml").read_text())
    data_files = config["tool"]["setuptools"]["data-files"]
    installed = set()
    for target, patterns in data_files.items():
        assert target.startswith("share/stylecam/weights"), target
        for pattern in patterns:
            for path in root.glob(pattern):
                installed.add((target, path.name))
    expected = {(str(Path("share/stylecam") / p.relative_to(root).parent).replace("\\", "/"), p.name)
                for p in WEIGHTS.rglob("*.onnx")}
    assert installed == expected
