"""The engine with tiny fake models: chain/repeat order, sizes under repeat, strength, registry."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stylecam import contract, imageops, styles
from stylecam.errors import UserError
from stylecam.pipeline import Stylizer
from stylecam.session import load_model, run_chain, run_chain_bound
from stylecam.styles import Registry
from tests.fakes.onnx_models import (make_classifier_model, make_plain_model, make_style_model, make_weights_dir,
                              write_corrupt_model)


@pytest.fixture
def weights(tmp_path):
    """wave = +10 on every channel, muse = x0.5; both full and lite; zero-padding variants too."""
    return make_weights_dir(tmp_path / "weights", paddings=("zero",))


def grey(value, h=8, w=8):
    return np.full((h, w, 3), value, np.uint8)


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
    # a coloured frame through a model that turns it grey: colour keeping restores the hue
    colour = np.zeros((8, 8, 3), np.uint8)
    colour[..., 2], colour[..., 1], colour[..., 0] = 200, 100, 50  # R, G, B
    gray_model = make_style_model(weights / "gray.onnx", "gray", effect="gray")
    kept = Stylizer([str(gray_model)], preserve_color=True, device="cpu")(colour).astype(int)
    assert kept[0, 0, 2] - kept[0, 0, 1] == 100 and kept[0, 0, 1] - kept[0, 0, 0] == 50
    lost = Stylizer([str(gray_model)], device="cpu")(colour)
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
    make_classifier_model(weights / "classifiers" / "colours.onnx")
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


def test_session_clamp_in_graph_and_run_chain(tmp_path):
    path = make_style_model(tmp_path / "up.onnx", "up", effect="shift", amount=100.0)
    raw = load_model(str(path), device="cpu")
    clamped = load_model(str(path), device="cpu", clamp=(0.0, 255.0))
    x = np.full((1, 3, 4, 4), 200, np.float32)
    assert np.allclose(raw.run(x), 300) and np.allclose(clamped.run(x), 255)
    assert clamped.output_name == contract.STYLE_OUTPUT
    assert np.allclose(run_chain([raw, raw], x), 400)
    assert clamped.providers == ["CPUExecutionProvider"]


def test_io_bound_chain_matches_host_runs(tmp_path):
    """The IO-binding path a GPU chain takes, run on the CPU: same order, same values, host array out."""
    up = load_model(str(make_style_model(tmp_path / "up.onnx", "up", effect="shift", amount=100.0)), "cpu",
                    clamp=(0.0, 255.0))
    half = load_model(str(make_style_model(tmp_path / "half.onnx", "half", effect="scale", amount=0.5)), "cpu",
                      clamp=(0.0, 255.0))
    x = np.random.default_rng(1).uniform(0, 255, (2, 3, 8, 12)).astype(np.float32)
    bound = run_chain_bound([up, half, up], x, "cpu")
    expected = np.minimum(np.minimum(x + 100, 255) * 0.5 + 100, 255)
    assert isinstance(bound, np.ndarray) and bound.dtype == np.float32 and bound.shape == x.shape
    np.testing.assert_allclose(bound, expected, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(bound, run_chain([up, half, up], x))
    assert not np.allclose(run_chain_bound([half, up], x, "cpu"), bound)  # order matters
    assert run_chain_bound([], x, "cpu") is x


@pytest.mark.parametrize("extra", [0, 3, 8])
@pytest.mark.parametrize("height,width", [(16, 24), (17, 23), (9, 10), (30, 41)])
def test_padding_inside_the_graph_equals_host_padding(tmp_path, height, width, extra):
    """A session that reflect-pads and crops by itself gives exactly what numpy padding around the
    plain network gives (blur: zero-padded 3x3 convolution, so every border pixel tells)."""
    from stylecam.session import in_graph_padding_fits
    path = str(make_style_model(tmp_path / "blur.onnx", "blur", effect="blur"))
    plain = load_model(path, "cpu", clamp=(0.0, 255.0))
    padded = load_model(path, "cpu", clamp=(0.0, 255.0), pad=(4, extra))
    assert plain.pad is None and padded.pad == (4, extra)
    pads = imageops.pad_amounts(height, width, extra=extra)
    fits = (pads[1] < height and pads[3] < width  # bottom >= top, right >= left
            and min(height, width) + 2 * extra >= contract.MIN_SIDE)  # else the host grows it
    assert padded.pads_inside(height, width) == in_graph_padding_fits(height, width, 4, extra) == fits
    if not fits:
        return
    x = np.random.default_rng(height * width + extra).uniform(0, 255, (2, 3, height, width)).astype(np.float32)
    host = imageops.crop(plain.run(imageops.reflect_pad(x, pads)), pads)
    np.testing.assert_array_equal(padded.run(x), host)


def test_padding_inside_the_graph_is_skipped_for_old_opsets(tmp_path):
    import onnx

    from stylecam.session import transformed_model_bytes
    path = make_style_model(tmp_path / "up.onnx", "up", effect="shift", amount=1.0, strict_x4=False)
    model = onnx.load(str(path))
    model.opset_import[0].version = 10  # Pad takes its pads as an input from opset 11 on
    onnx.save(model, str(tmp_path / "old.onnx"))
    _, pad = transformed_model_bytes(str(tmp_path / "old.onnx"), clamp=None, fp16=False, pad=(4, 0), report=True)
    assert pad is None
    old = load_model(str(tmp_path / "old.onnx"), "cpu", pad=(4, 0))
    assert old.pad is None and not old.pads_inside(8, 8)
    assert np.allclose(old.run(np.zeros((1, 3, 5, 7), np.float32)), 1.0)
    assert load_model(str(path), "cpu", pad=(4, 0)).pad == (4, 0)


@pytest.mark.parametrize("prepad", [0, 5])
def test_stylizer_padding_in_the_graph_equals_padding_on_the_host(tmp_path, prepad):
    """What a GPU runs (sessions that pad themselves, one IO-bound chain) against the CPU default,
    on frames that need padding; blur and gray fakes make every border pixel count."""
    weights = make_weights_dir(tmp_path / "w", styles={"wave": {"effect": "blur"}, "muse": {"effect": "gray"}})
    kwargs = dict(styles=["wave", "muse"], repeat=3, prepad=prepad, weights_dir=weights, device="cpu")
    in_graph, on_host = Stylizer(pad_in_graph=True, **kwargs), Stylizer(**kwargs)
    assert in_graph.pad_in_graph and not on_host.pad_in_graph
    for shape in [(37, 50, 3), (2, 30, 41, 3)]:
        frames = np.random.default_rng(len(shape)).integers(0, 256, shape, dtype=np.uint8)
        frames = frames if frames.ndim == 4 else frames[None]
        np.testing.assert_array_equal(in_graph.stylize_batch(frames), on_host.stylize_batch(frames))
        x = imageops.bgr_to_nchw(frames)
        for a, b in zip(in_graph.run_float(x, collect=True), on_host.run_float(x, collect=True)):
            np.testing.assert_array_equal(a, b)
    assert all(padded for _, padded in in_graph._models) and not any(padded for _, padded in on_host._models)


def test_chain_with_prepad_on_frames_too_small_for_in_graph_padding(weights):
    """--prepad 16 on a 9x10 frame: the sessions cannot reflect that far, the host path takes over."""
    s = Stylizer(["wave", "muse"], repeat=2, prepad=16, weights_dir=weights, device="cpu", pad_in_graph=True)
    big = s(grey(100, 33, 35))  # ((100 + 10) * 0.5 + 10) * 0.5 = 32.5
    assert big.shape == (33, 35, 3) and (big == 32).all()
    assert not any(padded is False for _, padded in s._models)  # all in the graph so far
    small = s(grey(100, 9, 10))
    assert small.shape == (9, 10, 3) and (small == 32).all()
    assert any(padded is False for _, padded in s._models)  # the plain sessions were needed


def test_sessions_do_not_spin_idle_threads(tmp_path):
    """A chain holds several sessions; spinning idle pools would steal each other's cores."""
    path = make_style_model(tmp_path / "up.onnx", "up", effect="shift", amount=1.0)
    options = load_model(str(path), device="cpu", threads=2).session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.intra_op_num_threads == 2


def test_gpu_request_on_a_machine_without_one_warns_and_runs(weights, caplog):
    from stylecam.session import GPU_PROVIDERS, probe_providers
    if any(p in GPU_PROVIDERS for p in probe_providers("cuda")):
        pytest.skip("this machine has a usable GPU")
    s = Stylizer(["wave"], device="cuda", fp16=True, weights_dir=weights)
    assert s.providers == ["CPUExecutionProvider"]
    assert (s(grey(100)) == 110).all()
    assert "asked for cuda" in caplog.text and "--fp16 needs a GPU provider" in caplog.text


NATIVE_LOG = (
    "\x1b[1;31m2026-11-28 02:40:01.5 [E:onnxruntime:Default, provider_bridge_ort.cc:2430 operator()] "
    "/src/provider_bridge_ort.cc:2043 onnxruntime::Provider& onnxruntime::ProviderLibrary::Get() "
    "[ONNXRuntimeError] : 1 : FAIL : Failed to load library /venv/onnxruntime/capi/"
    "libonnxruntime_providers_tensorrt.so with error: libnvinfer.so.10: cannot open shared object file: "
    "No such file or directory\n\x1b[m\n"
    "\x1b[0;93m2026-11-28 02:40:01.5 [W:onnxruntime:Default, onnxruntime_pybind_state.cc:1295 "
    "CreateExecutionProviderFactoryInstance] Failed to create CUDAExecutionProvider. Require cuDNN 9.* and "
    "CUDA 13.*. Please install all dependencies\x1b[m\n")


def test_provider_failures_name_the_missing_library_with_a_hint():
    from stylecam.session import provider_failures
    why = provider_failures(NATIVE_LOG)
    assert set(why) == {"TensorrtExecutionProvider", "CUDAExecutionProvider"}
    assert why["TensorrtExecutionProvider"].startswith("libnvinfer.so.10: cannot open shared object file")
    assert "pip install tensorrt-cu13" in why["TensorrtExecutionProvider"]
    assert why["CUDAExecutionProvider"] == "Require cuDNN 9.* and CUDA 13.*"
    cudnn = provider_failures("Failed to load library /x/libonnxruntime_providers_cuda.so with error: "
                              "libcudnn.so.9: cannot open shared object file\n")
    assert cudnn == {"CUDAExecutionProvider": "libcudnn.so.9: cannot open shared object file; "
                                              "cuDNN 9 is missing: pip install 'onnxruntime-gpu[cudnn]'"}
    assert provider_failures("") == {} and provider_failures("all fine\n") == {}


def test_unusable_gpu_provider_is_reported_with_its_reason(caplog, weights):
    from stylecam.session import available_providers, probe_providers, unusable_providers
    if "CUDAExecutionProvider" not in available_providers():
        pytest.skip("this onnxruntime build has no CUDA provider")
    if "CUDAExecutionProvider" in probe_providers("cuda"):
        pytest.skip("the CUDA provider works on this machine")
    why = unusable_providers("cuda")
    assert list(why) == ["CUDAExecutionProvider"] and len(why["CUDAExecutionProvider"]) > 10
    Stylizer(["wave"], device="cuda", weights_dir=weights)
    assert f"Why: {why['CUDAExecutionProvider']}" in caplog.text
    assert unusable_providers("cpu") == {}


def test_without_an_nvidia_driver_the_probe_skips_the_gpu_providers(monkeypatch):
    """No libcuda: CPU at once, with the reason for every GPU provider (and no CUDA libraries loaded)."""
    import ctypes

    from stylecam import session

    def no_driver(name, *args, **kwargs):
        raise OSError(f"{name}: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(session, "_PROBES", {})
    monkeypatch.setattr(session, "_PROBE_FAILURES", {})
    monkeypatch.setattr(session, "available_providers",
                        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(session, "_preload_gpu_libraries", lambda: pytest.fail("must not load CUDA libraries"))
    monkeypatch.setattr(ctypes, "CDLL", no_driver)
    assert session.probe_providers("auto") == ["CPUExecutionProvider"]
    why = session.unusable_providers("auto")
    assert sorted(why) == ["CUDAExecutionProvider", "TensorrtExecutionProvider"]
    assert why["CUDAExecutionProvider"].startswith("libcuda.so.1: cannot open shared object file")
    assert "no NVIDIA driver found" in why["CUDAExecutionProvider"]
    monkeypatch.setattr(ctypes, "CDLL", lambda name, *a, **k: object())
    assert session._nvidia_driver_error() is None


def test_gpu_libraries_of_pip_packages_are_preloaded_from_any_site_folder(tmp_path, monkeypatch):
    """nvidia-* wheels in another site-packages than onnxruntime's (PyTorch's, a --user install) are found."""
    import shutil
    import sys

    import onnxruntime as ort

    from stylecam import session
    libz = next((Path(d) / "libz.so.1" for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/usr/lib64",
                                                 "/lib64", "/usr/lib") if (Path(d) / "libz.so.1").is_file()), None)
    if libz is None:
        pytest.skip("no libz.so.1 to stand in for a CUDA library")
    site = tmp_path / "site"
    (site / "nvidia" / "cu99" / "lib").mkdir(parents=True)
    shutil.copy(libz, site / "nvidia" / "cu99" / "lib" / "libcudart.so.99")
    (site / "nvidia" / "cu99" / "lib" / "libcublas.so.99").write_bytes(b"not a shared library")
    monkeypatch.setattr(sys, "path", [str(tmp_path / "elsewhere"), str(site)] + sys.path)
    monkeypatch.setattr(ort, "preload_dlls", lambda *a, **k: None, raising=False)
    monkeypatch.setattr(ort, "_get_nvidia_dll_paths", lambda *a: [
        ("nvidia", "cu99", "lib", "libcublas.so.99"), ("nvidia", "cu99", "lib", "libcudart.so.99"),
        ("nvidia", "cudnn", "lib", "libcudnn.so.99")], raising=False)
    assert session._preload_gpu_libraries() == [str(site / "nvidia" / "cu99" / "lib" / "libcudart.so.99")]


class _CountingSession:
    """A stand-in onnxruntime session that counts the runs inside it at once (each takes 20 ms)."""

    def __init__(self):
        import threading
        self.inside = self.most_at_once = 0
        self.kept: list[np.ndarray] = []
        self.count_lock = threading.Lock()

    def _enter_and_leave(self):
        import time
        with self.count_lock:
            self.inside += 1
            self.most_at_once = max(self.most_at_once, self.inside)
        time.sleep(0.02)
        with self.count_lock:
            self.inside -= 1

    def run(self, outputs, feeds):
        self._enter_and_leave()
        return [next(iter(feeds.values())) + 1]

    def io_binding(self):
        import onnxruntime as ort

        session = self

        class Binding:
            def bind_ortvalue_input(self, name, value):
                self.value = value

            def bind_output(self, name, device_type, device_id):
                pass

            def get_outputs(self):
                out = self.value.numpy() + 1
                session.kept.append(out)  # an OrtValue from numpy borrows the array: keep it alive
                return [ort.OrtValue.ortvalue_from_numpy(out)]

        return Binding()

    def run_with_iobinding(self, binding):
        self._enter_and_leave()


@pytest.mark.parametrize("providers,expected_most", [(["CUDAExecutionProvider", "CPUExecutionProvider"], 1),
                                                     (["CPUExecutionProvider"], 4)])
def test_runs_of_one_gpu_session_take_turns(providers, expected_most):
    """onnxruntime's CUDA convolutions break under two runs of one session at once (CUDNN_FE
    failure 11): a GPU session runs one call at a time, from any number of threads, on the host
    path and the IO-bound chain; a CPU session still runs them side by side."""
    from concurrent.futures import ThreadPoolExecutor

    from stylecam.session import LoadedModel
    for call in ("run", "bound"):
        session = _CountingSession()  # the fake's io_binding() gives a binding of its own per call
        model = LoadedModel(path="fake.onnx", session=session, providers=providers, input_name="x", output_name="y")
        x = np.zeros((1, 3, 4, 4), np.float32)
        def one(_):
            return model.run(x) if call == "run" else run_chain_bound([model, model], x, "cpu")
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(one, range(8)))
        assert all(np.array_equal(r, x + (1 if call == "run" else 2)) for r in results), call
        assert session.most_at_once == expected_most, call


def _gpu_available() -> bool:
    from stylecam.session import probe_providers
    return "CUDAExecutionProvider" in probe_providers("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("prepad", [0, 8])
def test_gpu_io_binding_chain_and_fp16_match_the_cpu(weights, prepad):
    gpu = Stylizer(["wave", "muse"], repeat=3, device="cuda", variant="full", prepad=prepad, weights_dir=weights)
    half = Stylizer(["wave", "muse"], repeat=3, device="cuda", variant="full", fp16=True, prepad=prepad,
                    weights_dir=weights)
    assert "CUDAExecutionProvider" in gpu.providers
    for shape in [(64, 96, 3), (61, 83, 3)]:  # both take the IO-bound chain (padding inside the graph)
        frame = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
        cpu = Stylizer(["wave", "muse"], repeat=3, device="cpu", variant="full", prepad=prepad,
                       weights_dir=weights)(frame)
        assert np.abs(gpu(frame).astype(int) - cpu.astype(int)).max() <= 1
        assert np.abs(half(frame).astype(int) - cpu.astype(int)).max() <= 2


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu_available(), reason="needs a CUDA GPU")
def test_gpu_batches_match_single_frames(weights):
    """Batched inference (the GPU default for video files) gives each frame what it gives alone."""
    frames = np.random.default_rng(2).integers(0, 256, (4, 61, 83, 3), dtype=np.uint8)  # padded in the graph
    gpu = Stylizer(["wave", "muse"], repeat=2, device="cuda", variant="full", weights_dir=weights)
    batched = gpu.stylize_batch(frames)
    assert batched.shape == frames.shape and batched.dtype == np.uint8
    for frame, out in zip(frames, batched):
        np.testing.assert_array_equal(out, gpu(frame))


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu_available(), reason="needs a CUDA GPU")
def test_gpu_stylizer_shared_by_threads_matches_one_at_a_time(weights):
    """Frame workers share one Stylizer on CUDA (video files run 4 at once there): each result is
    what the frame gives alone, with no cuDNN error, for one style and the IO-bound chain."""
    from concurrent.futures import ThreadPoolExecutor
    frames = np.random.default_rng(3).integers(0, 256, (16, 61, 83, 3), dtype=np.uint8)
    for styles_, repeat in ((["wave"], 1), (["wave", "muse"], 3)):
        gpu = Stylizer(styles_, repeat=repeat, device="cuda", variant="full", weights_dir=weights)
        alone = [gpu(f) for f in frames]
        with ThreadPoolExecutor(8) as pool:
            together = list(pool.map(gpu, list(frames) * 4))
        for i, out in enumerate(together):
            np.testing.assert_array_equal(out, alone[i % len(frames)])


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
def test_stylise_in_order_keeps_order_with_parallel_workers(workers, batch):
    from stylecam.runner import _batches, stylise_in_order
    frames = [np.full((4, 6, 3), i, np.uint8) for i in range(23)]
    fake = _SlowTagger()
    results = list(stylise_in_order(_batches(iter(frames), batch), fake, workers))
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
