"""onnxruntime sessions (stylecam.session) under the Stylizer: the clamp and reflect padding inside
the graph, chains on the host and IO-bound, idle threads, GPU requests without a GPU, provider
failures and their hints, runs of one session from several threads; and the GPU tier (skipped
without a CUDA GPU)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stylecam import contract, imageops
from stylecam.pipeline import Stylizer
from stylecam.session import load_model, run_chain, run_chain_bound
from tests.fakes.media import grey
from tests.fakes.onnx_models import make_style_model, make_weights_dir


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
