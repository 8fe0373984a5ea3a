"""The engine with tiny fake models: chain/repeat order, sizes under repeat, strength, registry."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stylecam import contract, styles
from stylecam.errors import UserError
from stylecam.pipeline import Stylizer
from stylecam.session import load_model
from stylecam.styles import Registry
from tests.fakes.media import grey
from tests.fakes.onnx_models import (make_classifier_model, make_plain_model, make_style_model, make_weights_dir,
                                     write_corrupt_model)


@pytest.fixture
def weights(tmp_path):
    """wave = +10 on every channel, muse = x0.5; both full and lite; zero-padding variants too."""
    return make_weights_dir(tmp_path / "weights", paddings=("zero",))


def test_chain_order_and_repeat_exact_values(weights):
    frame = grey(100)
    # wave then muse: (100 + 10) * 0.5 = 55
    assert (Stylizer(["wave", "muse"], weights_dir=weights, device="cpu")(frame) == 55).all()
    # muse then wave: 100 * 0.5 + 10 = 60
    assert (Stylizer(["muse", "wave"], weights_dir=weights, device="cpu")(frame) == 60).all()
    # the whole chain three times: 100 -> 55 -> 32.5 -> 21.25
    s = Stylizer(["wave", "muse"], repeat=3, weights_dir=weights, device="cpu")
    assert len(s.passes) == 6 and [e.name for e in s.passes] == ["wave", "muse"] * 3
    out = s.run_float(np.full((1, 3, 8, 8), 100, np.float32))
    assert np.allclose(out, 21.25)


def test_steps_lists_every_pass_and_ends_with_the_result(weights):
    s = Stylizer("wave,muse", repeat=2, weights_dir=weights, device="cpu")
    frame = grey(100, 6, 10)
    steps = s.steps(frame)
    assert [label for label, _ in steps] == ["original", "1 wave", "2 muse", "3 wave", "4 muse"]
    assert [int(img[0, 0, 0]) for _, img in steps] == [100, 110, 55, 65, 32]
    assert np.array_equal(steps[-1][1], s(frame))
    states = s.run_float(np.full((1, 3, 6, 10), 100, np.float32), collect=True)
    assert len(states) == 4 and np.allclose(states[1], 55)


def test_output_clamped_between_steps(tmp_path):
    up = make_style_model(tmp_path / "up.onnx", "up", effect="shift", amount=200.0)
    down = make_style_model(tmp_path / "down.onnx", "down", effect="shift", amount=-200.0)
    s = Stylizer([str(up), str(down)], device="cpu")
    # 100 + 200 = 300 -> clamped to 255 -> 255 - 200 = 55 (without the clamp it would be 100)
    assert (s(grey(100)) == 55).all()


@pytest.mark.parametrize("h,w", [(13, 7), (5, 5), (1, 9), (31, 17)])
def test_size_preserved_for_odd_sizes_under_repeat_10(tmp_path, h, w):
    blur = make_style_model(tmp_path / "blur.onnx", "blur", effect="blur")  # fails unless H, W % 4 == 0
    s = Stylizer([str(blur)], repeat=10, device="cpu")
    frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    assert s(frame).shape == (h, w, 3)
    assert all(img.shape == (h, w, 3) for _, img in s.steps(frame))


def test_prepad_moves_zero_padding_border_effect_out_of_the_frame(tmp_path):
    blur = make_style_model(tmp_path / "blur.onnx", "blur", effect="blur")
    frame = grey(200, 16, 16)
    plain = Stylizer([str(blur)], device="cpu")(frame)
    # zero padding inside the model darkens the 1-pixel border: corner = 4/9 * 200, edge = 6/9 * 200
    assert plain[0, 0, 0] == round(200 * 4 / 9) and plain[0, 5, 0] == round(200 * 6 / 9)
    assert (plain[1:-1, 1:-1] == 200).all()
    prepadded = Stylizer([str(blur)], prepad=4, device="cpu")(frame)
    assert (prepadded == 200).all()


def test_strength_and_preserve_color_through_the_stylizer(weights):
    frame = grey(100)
    half = Stylizer(["wave"], strength=0.5, weights_dir=weights, device="cpu")(frame)
    assert (half == 105).all()
    zero = Stylizer(["wave"], strength=0.0, weights_dir=weights, device="cpu")(frame)
    assert (zero == 100).all()
    # a colored frame through a model that turns it grey: color keeping restores the hue
    color = np.zeros((8, 8, 3), np.uint8)
    color[..., 2], color[..., 1], color[..., 0] = 200, 100, 50  # R, G, B
    gray_model = make_style_model(weights / "gray.onnx", "gray", effect="gray")
    kept = Stylizer([str(gray_model)], preserve_color=True, device="cpu")(color).astype(int)
    assert kept[0, 0, 2] - kept[0, 0, 1] == 100 and kept[0, 0, 1] - kept[0, 0, 0] == 50
    lost = Stylizer([str(gray_model)], device="cpu")(color)
    assert lost[0, 0, 0] == lost[0, 0, 1] == lost[0, 0, 2]


def test_size_runs_inference_smaller_and_resizes_back(weights):
    s = Stylizer(["wave"], size=16, weights_dir=weights, device="cpu")
    out = s(grey(50, 48, 64))
    assert out.shape == (48, 64, 3) and (out == 60).all()


def test_size_with_strength_blends_at_the_frame_size(weights):
    s = Stylizer(["wave"], size=16, strength=0.5, weights_dir=weights, device="cpu")
    out = s(grey(50, 48, 64))
    assert out.shape == (48, 64, 3) and (out == 55).all()


def test_batch_equals_single_frames(weights):
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (3, 9, 11, 3), dtype=np.uint8)
    s = Stylizer(["wave", "muse"], repeat=2, weights_dir=weights, device="cpu")
    batched = s.stylize_batch(frames)
    assert np.array_equal(batched, np.stack([s(f) for f in frames]))


def test_setters_validate(weights):
    s = Stylizer(["wave"], weights_dir=weights, device="cpu")
    s.set_repeat(4)
    assert len(s.passes) == 4
    with pytest.raises(UserError):
        s.set_repeat(0)
    with pytest.raises(UserError):
        s.set_strength(2)
    with pytest.raises(UserError):
        Stylizer(["wave"], prepad=-1, weights_dir=weights, device="cpu")
    with pytest.raises(UserError):
        Stylizer([], weights_dir=weights, device="cpu")



def test_from_config_builds_the_same_stylizer_as_the_keywords(weights):
    """Stylizer.from_config takes every EngineConfig field; the CLI, the demo and the study build from it."""
    import inspect
    from dataclasses import fields
    from stylecam.config import EngineConfig
    assert {f.name for f in fields(EngineConfig)} <= set(inspect.signature(Stylizer).parameters)
    config = EngineConfig(styles=("wave", "muse"), repeat=2, device="cpu", strength=0.5, preserve_color=True,
                          prepad=4, size=16, upscale=True, threads=1, weights_dir=str(weights))
    from_config = Stylizer.from_config(config)
    keywords = Stylizer(["wave", "muse"], repeat=2, device="cpu", strength=0.5, preserve_color=True, prepad=4,
                        size=16, upscale=True, threads=1, weights_dir=weights)
    assert from_config.describe() == keywords.describe() and from_config.threads == 1
    frame = np.random.default_rng(0).integers(0, 256, (9, 13, 3), dtype=np.uint8)
    assert np.array_equal(from_config(frame), keywords(frame))
    registry = Registry(weights)
    assert Stylizer.from_config(EngineConfig(styles=("muse",), device="cpu"), registry=registry).registry is registry
    with pytest.raises(UserError, match="--repeat must be a whole number within"):
        Stylizer.from_config(EngineConfig(repeat=0, device="cpu", weights_dir=str(weights)))


def test_frames_that_are_not_uint8_bgr_are_refused_before_inference(weights):
    s = Stylizer(["wave"], weights_dir=weights, device="cpu")
    for bad in [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 3), np.float32),
                np.zeros((0, 8, 3), np.uint8), np.zeros((8, 0, 3), np.uint8), [[1, 2, 3]]]:
        with pytest.raises(ValueError, match=r"expected uint8 BGR \(H, W, 3\)"):
            s(bad)
        with pytest.raises(ValueError):
            s.steps(bad)
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\) with no empty axis"):
        s.stylize_batch(np.zeros((0, 8, 8, 3), np.uint8))
    assert s.stylize_batch(np.zeros((2, 8, 8, 3), np.uint8)).shape == (2, 8, 8, 3)


# ----- registry ----------------------------------------------------------------------------

def test_registry_reads_metadata_and_skips_classifiers(weights):
    make_classifier_model(weights / "classifiers" / "colors.onnx")
    make_classifier_model(weights / "stray_classifier.onnx")
    registry = Registry(weights)
    assert registry.names() == ["muse", "wave"]
    assert registry.problems == []
    assert {(e.name, e.variant, e.padding) for e in registry.entries} == {
        (n, v, p) for n in ("wave", "muse") for v, p in (("full", "reflect"), ("lite", "reflect"), ("full", "zero"))}
    rows = registry.table()
    assert rows[0]["name"] == "muse" and rows[0]["painting"] == "Test painting muse"


def test_registry_names_come_from_metadata_not_file_names(tmp_path):
    make_style_model(tmp_path / "whatever.onnx", "starry")
    assert Registry(tmp_path).names() == ["starry"]


def test_default_variant_lite_on_cpu_and_fallbacks(tmp_path, weights):
    assert Stylizer(["wave"], weights_dir=weights, device="cpu").entries[0].variant == "lite"
    assert Stylizer(["wave"], variant="full", weights_dir=weights, device="cpu").entries[0].variant == "full"
    only_full = make_weights_dir(tmp_path / "only_full", lite=False)
    assert Stylizer(["wave"], weights_dir=only_full, device="cpu").entries[0].variant == "full"
    assert Stylizer(["wave"], variant="lite", weights_dir=only_full, device="cpu").entries[0].variant == "full"


def test_asking_for_a_missing_variant_warns_once_per_style(tmp_path, caplog):
    only_full = make_weights_dir(tmp_path / "only_full", lite=False)
    Stylizer(["wave"], weights_dir=only_full, device="cpu")
    assert "WARNING" not in caplog.text  # no variant asked for: the one there is, quietly
    stylizer = Stylizer(["wave", "muse", "wave"], variant="lite", weights_dir=only_full, device="cpu")
    stylizer.set_styles(["wave"])
    assert caplog.text.count("no lite model of wave; using the full one") == 1
    assert caplog.text.count("no lite model of muse; using the full one") == 1


def test_duplicates_prefer_top_level_float32(weights):
    make_style_model(weights / "fp16" / "wave.onnx", "wave", metadata={"stylecam.precision": "fp16"})
    make_style_model(weights / "a" / "b" / "wave.onnx", "wave")
    assert Registry(weights).find("wave", variant="full").path == weights / "wave.onnx"


def test_padding_lookup(weights):
    registry = Registry(weights)
    assert registry.find("wave", padding="zero").path.name == "wave.full.zero.onnx"
    with pytest.raises(UserError, match="no 'replicate'-padding model"):
        registry.find("wave", padding="replicate")


def test_unknown_style_did_you_mean(weights):
    with pytest.raises(UserError) as err:
        Stylizer(["wav"], weights_dir=weights, device="cpu")
    assert "unknown style 'wav'" in str(err.value)
    assert "did you mean 'wave'" in str(err.value) and "muse, wave" in str(err.value)
    assert err.value.exit_code == 2


def test_empty_weights_dir_says_how_to_get_styles(tmp_path):
    with pytest.raises(UserError, match="no style models found.*stylecam-train style"):
        Stylizer(["wave"], weights_dir=tmp_path, device="cpu")


def test_missing_weights_folder_is_an_error_naming_where_it_came_from(tmp_path, monkeypatch):
    monkeypatch.delenv("STYLECAM_WEIGHTS", raising=False)
    with pytest.raises(UserError, match=r"no such weights folder: .*absent \(from --weights-dir\)"):
        Registry(tmp_path / "absent")
    monkeypatch.setenv("STYLECAM_WEIGHTS", str(tmp_path / "gone"))
    with pytest.raises(UserError, match=r"gone \(from STYLECAM_WEIGHTS\)"):
        Registry()


def test_default_weights_folder_order(tmp_path, monkeypatch, weights):
    monkeypatch.setenv("STYLECAM_WEIGHTS", str(weights))
    assert styles.default_weights_dir() == weights and Registry().names() == ["muse", "wave"]
    monkeypatch.delenv("STYLECAM_WEIGHTS")
    checkout = Path(styles.__file__).resolve().parents[1] / "weights"
    assert styles.default_weights_dir() == checkout  # this source tree ships weights/
    monkeypatch.setattr(styles, "__file__", str(tmp_path / "site" / "stylecam" / "styles.py"))
    monkeypatch.setattr(styles, "installed_weights_dir", lambda: weights)
    assert styles.default_weights_dir() == weights  # installed from a wheel: no weights/ beside the package
    monkeypatch.setattr(styles, "installed_weights_dir", lambda: None)
    assert styles.default_weights_dir() == tmp_path / "site" / "weights"


def test_installed_weights_folder_is_found_in_the_wheel_record(tmp_path):
    site = tmp_path / "venv" / "lib" / "python3" / "site-packages"
    shared = tmp_path / "venv" / "share" / "stylecam" / "weights"
    (shared / "int8").mkdir(parents=True)
    site.mkdir(parents=True)
    record = ["stylecam/__init__.py", "../../../share/stylecam/weights/int8/wave.lite.int8.onnx",
              "../../../share/stylecam/weights/wave.lite.onnx"]
    assert styles.weights_dir_in_record(record, lambda p: site / p) == shared
    assert styles.weights_dir_in_record(record[:1], lambda p: site / p) is None
    shared.joinpath("int8").rmdir()
    shared.rmdir()
    assert styles.weights_dir_in_record(record, lambda p: site / p) is None  # recorded, since deleted


def test_files_that_are_not_style_models(tmp_path):
    plain = make_plain_model(tmp_path / "plain.onnx")
    corrupt = write_corrupt_model(tmp_path / "corrupt.onnx")
    classifier = make_classifier_model(tmp_path / "clf.onnx")
    broken = make_style_model(tmp_path / "broken.onnx", "broken", metadata={
        contract.KEY_PIXEL_CONTRACT: '{"layout": "NHWC"}'})
    with pytest.raises(UserError, match="not a stylecam style model: it carries no stylecam metadata"):
        Stylizer([str(plain)], device="cpu")
    with pytest.raises(UserError, match="cannot read ONNX model"):
        Stylizer([str(corrupt)], device="cpu")
    with pytest.raises(UserError, match="classifier model, not a style"):
        Stylizer([str(classifier)], device="cpu")
    with pytest.raises(UserError, match="pixel contract field 'layout'"):
        Stylizer([str(broken)], device="cpu")
    with pytest.raises(UserError, match="model file not found"):
        Stylizer([str(tmp_path / "missing.onnx")], device="cpu")
    registry = Registry(tmp_path)  # a scan reports them instead of failing
    assert registry.names() == [] and len(registry.problems) == 3


def test_public_api_import(weights):
    from stylecam import Stylizer as PublicStylizer
    assert PublicStylizer is Stylizer
    s = PublicStylizer(styles=["wave", "muse"], repeat=3, weights_dir=weights, device="cpu")
    assert s.describe()["passes"] == 6


class _SlowTagger:
    """Fake stylizer: adds the frame's own index to every pixel after a random short sleep."""

    def __init__(self):
        import threading
        self.active, self.peak, self._lock = 0, 0, threading.Lock()

    def stylize_batch(self, frames):
        import time
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(float(np.random.default_rng(int(frames[0, 0, 0, 0])).uniform(0.001, 0.02)))
        with self._lock:
            self.active -= 1
        return frames + 1


@pytest.mark.parametrize("workers,batch", [(1, 1), (3, 1), (2, 2)])
def test_stylize_in_order_keeps_order_with_parallel_workers(workers, batch):
    from stylecam.runner import _batches, stylize_in_order
    frames = [np.full((4, 6, 3), i, np.uint8) for i in range(23)]
    fake = _SlowTagger()
    results = list(stylize_in_order(_batches(iter(frames), batch), fake, workers))
    got = [int(styled[0, 0, 0]) for _, group, _ in results for styled in group]
    assert got == [i + 1 for i in range(23)]
    assert [int(f[0, 0, 0]) for group, _, _ in results for f in group] == list(range(23))
    assert all(seconds > 0 for _, _, seconds in results)
    assert fake.peak <= workers and (workers == 1 or fake.peak > 1)


def test_video_with_two_workers_equals_one_worker(weights, tmp_path):
    import cv2
    from stylecam.runner import process_video
    from stylecam.sinks import VideoWriter
    clip = tmp_path / "in.mp4"
    writer = VideoWriter(clip, 10, (32, 24))
    for i in range(12):
        writer.write(np.full((24, 32, 3), 20 * i, np.uint8))
    writer.close()
    stylizer = Stylizer(styles=["wave"], weights_dir=str(weights), device="cpu", threads=1)
    outputs = []
    for workers in (1, 2):
        out = tmp_path / f"out{workers}.mp4"
        summary = process_video(str(clip), out, stylizer, progress=False, workers=workers)
        assert summary["frames"] == 12
        cap = cv2.VideoCapture(str(out))
        outputs.append([cap.read()[1].mean() for _ in range(12)])
    assert np.allclose(outputs[0], outputs[1], atol=1.0)
    assert outputs[0] == sorted(outputs[0])  # brightness rises frame by frame: order kept


@pytest.mark.parametrize("workers,threads,on_gpu,cores,expected", [
    (None, None, False, 2, (2, 1)),     # CPU auto: one single-threaded run per core
    (None, None, False, 16, (4, 4)),    # capped at 4 runs, the cores split between them
    (None, None, False, 1, (1, None)),  # one core: one run, onnxruntime's default threads
    (None, None, True, 16, (4, None)),  # GPU: 4 runs (the CPU's part of each frame overlaps the GPU's)
    (None, None, True, 1, (1, None)),
    (3, None, False, 2, (3, 1)),        # asked-for workers kept
    (None, 2, False, 8, (4, 2)),        # asked-for threads kept
    (1, None, False, 8, (1, None)),
])
def test_plan_workers(workers, threads, on_gpu, cores, expected):
    from stylecam.runner import plan_workers
    assert plan_workers(workers, threads, on_gpu, cores) == expected


@pytest.mark.parametrize("workers,threads,on_gpu,cores,expected", [
    (None, None, False, 2, (2, 1)),     # the camera on 2 cores: two single-threaded runs
    (None, None, False, 8, (2, 4)),     # at most 2 frames in flight, the cores split between them
    (None, None, False, 1, (1, None)),
    (None, None, True, 8, (1, None)),   # GPU: one run outpaces the camera
    (2, None, True, 8, (2, None)),      # asked-for workers kept on a GPU (runs of one session take turns)
    (1, None, False, 8, (1, None)),     # --workers 1: the lowest latency
])
def test_plan_workers_for_the_camera(workers, threads, on_gpu, cores, expected):
    from stylecam.runner import plan_workers
    assert plan_workers(workers, threads, on_gpu, cores, camera=True) == expected


@pytest.mark.parametrize("config,expected", [
    ('{"channels": [0, 16, 32], "half_res_ends": true, "tied_upsampling": true}', "lite"),
    ('{"channels": [0, 16, 32], "half_res_ends": true}', "lite-shuffle"),
    ('{"channels": [8, 16, 32], "half_res_ends": true, "tied_upsampling": true, "full_res_head": true}', "lite-fr"),
    ('{"channels": [8, 16, 32], "residual_blocks": 3}', "lite-v1"),
    ('{"channels": [32, 64, 128], "residual_blocks": 5}', "full"),
    ('{"channels": [4, 8, 16]}', "custom"),
    ("not json", "-"),
    (None, "-"),
])
def test_network_name_from_config_metadata(config, expected):
    from stylecam.styles import network_name
    assert network_name(config) == expected


# ----- Python API errors and --int8 with files -----------------------------------------------

def test_batch_of_frames_of_different_sizes_is_a_clear_error(weights):
    s = Stylizer(["wave"], weights_dir=weights, device="cpu")
    img = grey(100, 12, 16)
    with pytest.raises(ValueError, match=r"all frames of a batch must have the same size: "
                                         r"frame 0 is 16x12, frame 1 is 8x6"):
        s.stylize_batch([img, img[:6, :8]])
    assert s.stylize_batch([img, img]).shape == (2, 12, 16, 3)


def test_constructor_arguments_of_the_wrong_type_are_clear_errors(weights):
    with pytest.raises(TypeError, match=r"styles must be names or paths \(str / os.PathLike\), got 1"):
        Stylizer(styles=[1], weights_dir=weights, device="cpu")
    with pytest.raises(TypeError, match="styles must be names or paths"):
        Stylizer(styles=5, weights_dir=weights, device="cpu")
    with pytest.raises(TypeError, match="weights_dir must be a folder path"):
        Stylizer(styles=["wave"], weights_dir=1, device="cpu")
    for bad in ("x", 0, 1.5, True):
        with pytest.raises(UserError, match="threads must be a whole number ≥ 1"):
            Stylizer(styles=["wave"], threads=bad, weights_dir=weights, device="cpu")
    with pytest.raises(UserError, match="unknown device"):
        Stylizer(styles=["wave"], device=["cpu"], weights_dir=weights)
    with pytest.raises(UserError, match="unknown variant"):
        Stylizer(styles=["wave"], variant=["lite"], weights_dir=weights, device="cpu")
    with pytest.raises(UserError, match="unknown padding mode"):
        Stylizer(styles=["wave"], padding=["zero"], weights_dir=weights, device="cpu")
    with pytest.raises(UserError, match="threads must be"):
        load_model(str(weights / "wave.onnx"), device="cpu", threads="2")
    s = Stylizer(styles=[weights / "wave.onnx"], threads=2, device="cpu")  # a Path is a path
    assert s.threads == 2 and s.chain == ["wave"]


def test_int8_with_a_style_file_warns_once_and_the_summary_tells_the_real_precision(tmp_path, caplog):
    model = make_style_model(tmp_path / "mine.onnx", "mine")
    with caplog.at_level("WARNING", logger="stylecam"):
        s = Stylizer([str(model), str(model)], int8=True, device="cpu")
    assert caplog.text.count(f"--int8 applies to styles given by name; {model} (fp32) is used as is") == 1
    summary = s.describe()
    assert summary["int8"] is False and [m["precision"] for m in summary["models"]] == ["fp32", "fp32"]
    quantised = make_style_model(tmp_path / "mine.int8.onnx", "mine", metadata={"stylecam.precision": "int8"})
    caplog.clear()
    with caplog.at_level("WARNING", logger="stylecam"):
        s = Stylizer([str(quantised)], int8=True, device="cpu")
    assert "--int8 applies" not in caplog.text and s.describe()["int8"] is True
