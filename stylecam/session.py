"""The only module that imports onnxruntime: session creation, providers, metadata.

Sessions ask for providers in the order TensorRT > CUDA > CPU (or what the user names)
and then report what the session really got, since onnxruntime falls back to CPU
silently when a provider cannot be loaded.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile
import threading
from dataclasses import dataclass, field

import numpy as np
import onnxruntime as ort

from stylecam.contract import MIN_SIDE
from stylecam.errors import UserError
from stylecam.graph_edits import edited_model, in_graph_padding_fits

log = logging.getLogger("stylecam")

#: --device value -> providers to ask for, best first
DEVICE_PROVIDERS = {
    "auto": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "cpu": ["CPUExecutionProvider"],
}
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def available_providers() -> list[str]:
    """Providers this onnxruntime build offers (not necessarily usable on this machine)."""
    return list(ort.get_available_providers())


@dataclass
class LoadedModel:
    """An onnxruntime session with what stylecam needs to know about it."""
    path: str
    session: ort.InferenceSession
    providers: list[str]            # providers the session really uses, best first
    metadata: dict[str, str] = field(default_factory=dict)
    input_name: str = ""
    output_name: str = ""
    pad: tuple[int, int] | None = None  # (multiple, extra) of the reflect padding inside the graph
    # held around every run: onnxruntime's CUDA convolutions keep per-session cuDNN state that two
    # runs at once corrupt (CUDNN_FE failure 11 seen with four threads on one session), so runs of
    # one session take turns; different sessions (the other models of a chain) still overlap
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def pads_inside(self, height: int, width: int) -> bool:
        """True when this session pads and crops an (N, C, height, width) input by itself."""
        return self.pad is not None and in_graph_padding_fits(height, width, *self.pad)

    @property
    def on_gpu(self) -> bool:
        return any(p in GPU_PROVIDERS for p in self.providers)

    def turn(self):
        """Context manager around one run: the session's lock on a GPU, nothing on the CPU."""
        return self.lock if self.on_gpu else contextlib.nullcontext()

    def run(self, x: np.ndarray) -> np.ndarray:
        """One forward pass on host arrays: float32 in, the model's first output out.
        Safe from several threads (a GPU session runs one call at a time, a CPU one any number).
        MemoryError when onnxruntime cannot allocate what the pass needs."""
        with self.turn(), out_of_memory_as_memory_error():
            return self.session.run([self.output_name], {self.input_name: x})[0]


#: onnxruntime's words for a failed allocation (CPU arena, CUDA, TensorRT)
_OUT_OF_MEMORY = ("failed to allocate memory", "bad_alloc", "out of memory", "cudaerrormemoryallocation")


@contextlib.contextmanager
def out_of_memory_as_memory_error():
    """Turn onnxruntime's allocation failures (its own exception types) into MemoryError."""
    try:
        yield
    except MemoryError:
        raise
    except Exception as err:
        text = str(err).lower()
        if any(words in text for words in _OUT_OF_MEMORY):
            raise MemoryError((str(err).strip().splitlines() or ["out of memory"])[0][:200]) from None
        raise


def read_metadata(path: str) -> dict[str, str]:
    """Custom metadata of an ONNX file, without building a full session for inference."""
    return dict(load_model(path, device="cpu").metadata)


def check_threads(threads) -> int | None:
    """None, or ``threads`` as an int when it is a whole number >= 1; UserError otherwise."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise UserError(f"threads must be a whole number ≥ 1 (or None for onnxruntime's default), got {threads!r}",
                        "e.g. --threads 4")
    return int(threads)


def check_device(device) -> str:
    """``device`` when it is one of DEVICE_PROVIDERS' keys; UserError otherwise."""
    if not isinstance(device, str) or device not in DEVICE_PROVIDERS:
        raise UserError(f"unknown device {device!r}", f"use one of {', '.join(DEVICE_PROVIDERS)}")
    return device


def load_model(path: str, device: str = "auto", threads: int | None = None, *,
               clamp: tuple[float, float] | None = None, fp16: bool = False,
               pad: tuple[int, int] | None = None) -> LoadedModel:
    """Create an onnxruntime session for ``path``.

    device: auto | cpu | cuda | tensorrt. Warns loudly when a GPU was asked for and the
    session only got the CPU. Raises UserError for a missing or corrupt file.
    clamp: (lo, hi) appends a Clip to the first output inside the graph, so the clamp runs
    on the model's device (and stays there under IO binding); NaN and infinite values come out as
    NaN, not clamped.
    fp16: convert weights and activations to float16 when a GPU provider is asked for and
    offered; inputs and outputs stay float32. Ignored with a warning on the CPU.
    pad: (multiple, extra) reflect-pads the first input inside the graph (``extra`` pixels per
    side, then up to a multiple of ``multiple``, as imageops.pad_amounts) and crops the first
    output back, so the session takes any size >= in_graph_padding_fits and a chain of such
    sessions never leaves the device. LoadedModel.pad records it (None when not added).
    """
    check_device(device)
    threads = check_threads(threads)
    if not os.path.isfile(path):
        raise UserError(f"model file not found: {path}", "check the path, or run `stylecam --list-styles`")
    wanted = probe_providers(device)  # only providers that really load here, best first
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 4   # fatal only: a failed run is raised as an exception and reported in one line
    # Idle worker threads must not spin: a chain holds one session per style, and the spinning
    # pool of one steals the cores of the next (and of the decode/encode threads): much slower chains.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    source: str | bytes = path
    use_fp16 = fp16 and any(p in GPU_PROVIDERS for p in wanted)
    if fp16 and not use_fp16:
        log.warning("WARNING: --fp16 needs a GPU provider (have %s); running %s in float32",
                    ", ".join(wanted), os.path.basename(path))
    if clamp is not None or use_fp16 or pad is not None:
        source, pad = transformed_model_bytes(path, clamp=clamp, fp16=use_fp16, pad=pad, report=True)
    providers: list = [(p, _provider_options(p, use_fp16)) if p == "TensorrtExecutionProvider" else p
                       for p in wanted]
    try:
        session = ort.InferenceSession(source, sess_options=options, providers=providers)
    except Exception as err:  # onnxruntime raises several private exception types
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"cannot load ONNX model {path}: {first_line[:200]}",
                        "the file is corrupt or not an ONNX model; re-export or re-download it") from None
    got = list(session.get_providers())
    if device in ("cuda", "tensorrt") and not any(p in GPU_PROVIDERS for p in got):
        why = unusable_providers(device)
        reason = why.get("CUDAExecutionProvider") or next(iter(why.values()), "")
        log.warning("WARNING: asked for %s but onnxruntime gave %s for %s; running on the CPU%s "
                    "(see `stylecam info --device %s`)", device, ", ".join(got), os.path.basename(path),
                    f". Why: {reason}" if reason else "", device)
    elif device == "tensorrt" and "TensorrtExecutionProvider" not in got:
        log.warning("WARNING: asked for tensorrt but onnxruntime gave %s for %s",
                    ", ".join(got), os.path.basename(path))
    meta = session.get_modelmeta().custom_metadata_map
    return LoadedModel(path=path, session=session, providers=got, metadata=dict(meta),
                       input_name=session.get_inputs()[0].name,
                       output_name=session.get_outputs()[0].name, pad=pad)


def _provider_options(provider: str, fp16: bool) -> dict:
    """TensorRT: cache built engines (building takes minutes) under ~/.cache/stylecam/tensorrt."""
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "stylecam", "tensorrt")
    os.makedirs(cache, exist_ok=True)
    return {"trt_engine_cache_enable": True, "trt_engine_cache_path": cache, "trt_fp16_enable": fp16}


def transformed_model_bytes(path: str, clamp: tuple[float, float] | None, fp16: bool,
                            pad: tuple[int, int] | None = None, report: bool = False):
    """Serialised copy of the model at ``path`` with in-graph reflect padding (``pad``), an output
    Clip (graph_edits.edited_model) and/or float16 weights and activations (inputs and outputs stay
    float32 (N, 3, H, W)). report=True returns (bytes, pad or None when the padding was not added)."""
    model, pad = edited_model(path, clamp, pad)
    if fp16:
        from onnxruntime.transformers.float16 import convert_float_to_float16
        model = convert_float_to_float16(model, keep_io_types=True)
    data = model.SerializeToString()
    return (data, pad) if report else data


def run_chain(models: list[LoadedModel], x: np.ndarray) -> np.ndarray:
    """Apply ``models`` in order to a float32 (N, 3, H, W) array; returns the last output on the host.

    When every model runs on CUDA/TensorRT, IO binding keeps the intermediate tensors on the
    GPU (run_chain_bound): one upload, one download for the whole chain. Otherwise plain host runs.
    """
    if len(models) > 1 and all(m.on_gpu for m in models):
        return run_chain_bound(models, x, "cuda")
    for m in models:
        x = m.run(x)
    return x


def run_chain_bound(models: list[LoadedModel], x: np.ndarray, device_type: str = "cuda") -> np.ndarray:
    """``run_chain`` through IO binding: each output stays on ``device_type`` ("cuda" or "cpu")
    and is bound as the next model's input. float32 (N, 3, H, W) in, host float32 out."""
    if not models:
        return x
    value = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(x, np.float32), device_type, 0)
    for m in models:
        binding = m.session.io_binding()
        binding.bind_ortvalue_input(m.input_name, value)
        binding.bind_output(m.output_name, device_type, 0)
        with m.turn(), out_of_memory_as_memory_error():
            m.session.run_with_iobinding(binding)
        value = binding.get_outputs()[0]
    return value.numpy()


#: (N, H, W) of the test frames every style model must take: two frames of the smallest size the
#: runtime feeds (contract.MIN_SIDE), not square, so swapped or fixed axes show
STYLE_PROBE_SHAPE = (2, MIN_SIDE, MIN_SIDE + 4)
_STYLE_PROBES: dict[tuple, None] = {}


def probe_style_model(path: str, label: str | None = None) -> None:
    """Check that the style model at ``path`` keeps the pixel contract, by one tiny run on the CPU.

    It must take float32 (N, 3, H, W) with N, H and W free, and return float32 (N, 3, H, W) of the
    same size with finite values for STYLE_PROBE_SHAPE frames of a 0..255 gradient. UserError
    naming the model (``label``, else the path) otherwise. Cached per file version.
    """
    try:
        info = os.stat(path)
    except OSError:
        raise UserError(f"model file not found: {path}", "check the path, or run `stylecam --list-styles`") from None
    key = (os.path.abspath(path), info.st_mtime_ns, info.st_size)
    if key in _STYLE_PROBES:
        return
    name = f"style model {label} ({path})" if label and label != path else f"style model {path}"
    hint = "export style models with `stylecam-train export`, which leaves batch, height and width free"
    options = ort.SessionOptions()
    options.log_severity_level = 4
    try:
        session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as err:
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"cannot load ONNX model {path}: {first_line[:200]}",
                        "the file is corrupt or not an ONNX model; re-export or re-download it") from None
    inputs = session.get_inputs()
    problem = _style_input_problem(inputs)
    if problem:
        raise UserError(f"{name} {problem}", hint)
    n, h, w = STYLE_PROBE_SHAPE
    ramp = np.linspace(0.0, 255.0, n * 3 * h * w, dtype=np.float32).reshape(n, 3, h, w)
    try:
        y = session.run(None, {inputs[0].name: ramp})[0]
    except Exception as err:
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"{name} fails on a {w}x{h} test frame: {first_line[:160]}", hint) from None
    problem = _style_output_problem(np.asarray(y), (n, 3, h, w))
    if problem:
        raise UserError(f"{name} {problem}", "re-export or retrain it: a style model returns a finite RGB "
                                             "image of its input's size, 0..255")
    _STYLE_PROBES[key] = None


def _style_input_problem(inputs) -> str | None:
    """What makes these session inputs unusable for a style model (text after its name), or None."""
    if len(inputs) != 1:
        return f"has {len(inputs)} inputs; a style model has one, the image"
    shape, kind = inputs[0].shape, inputs[0].type
    if kind != "tensor(float)":
        return f"takes {kind}; a style model takes tensor(float), RGB 0..255"
    if len(shape) != 4:
        return f"takes a {len(shape)}-D input {shape}; a style model takes (N, 3, H, W)"
    if isinstance(shape[1], int) and shape[1] != 3:
        return f"takes {shape[1]}-channel images; a style model takes 3 channels (RGB)"
    if isinstance(shape[2], int) or isinstance(shape[3], int):
        return (f"has a fixed input size of {shape[3]}x{shape[2]} pixels; stylecam stylizes frames of "
                "any size, so height and width must be free")
    if isinstance(shape[0], int):
        return f"takes exactly {shape[0]} frame(s) at a time; the batch axis must be free"
    return None


def _style_output_problem(y: np.ndarray, expected: tuple[int, int, int, int]) -> str | None:
    """What is wrong with a style model's output ``y`` for an input of shape ``expected``, or None."""
    n, c, h, w = expected
    if y.ndim != 4 or y.shape[0] != n:
        return f"returns shape {tuple(y.shape)} for input {expected}; it must return (N, 3, H, W)"
    if y.shape[1] != c:
        return f"returns {y.shape[1]} channels; a style model returns 3 (RGB)"
    if y.shape[2:] != (h, w):
        return (f"returns {y.shape[3]}x{y.shape[2]} pixels for a {w}x{h} frame; the output must have the "
                "input's size")
    if not np.issubdtype(y.dtype, np.floating):
        return f"returns {y.dtype}; a style model returns float32"
    if not np.isfinite(y).all():
        return f"returns NaN or infinite values for a {w}x{h} test frame"
    return None


_PROBES: dict[str, list[str]] = {}
_PROBE_FAILURES: dict[str, dict[str, str]] = {}


@contextlib.contextmanager
def _quiet_native(sink: int | None = None):
    """Silence onnxruntime's native and Python chatter (provider load failures) for a moment.

    sink: a file descriptor that receives the native output (for reading the reasons); default /dev/null.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    target = devnull if sink is None else sink
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved + [devnull]:
            os.close(fd)


_PROVIDER_LIBRARIES = {"cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
_LOAD_FAILURE = re.compile(r"Failed to load library \S*libonnxruntime_providers_(\w+)\.\S* with error: ([^\n\x1b]+)")
_CREATE_FAILURE = re.compile(r"Failed to create (\w+)ExecutionProvider\.\s*([^\n\x1b]*)")
_LIBRARY_HINTS = (
    ("libcuda.so", "no NVIDIA driver found: install the driver, or run on the CPU"),
    ("libnvinfer", "TensorRT is not installed: pip install tensorrt-cu13, or use --device cuda"),
    ("libcudnn", "cuDNN 9 is missing: pip install 'onnxruntime-gpu[cudnn]'"),
    ("libcublas", "cuBLAS is missing: pip install nvidia-cublas"),
    ("libcudart", "the CUDA 13 runtime is missing: pip install 'onnxruntime-gpu[cuda]'"),
    ("libcurand", "cuRAND is missing: pip install 'onnxruntime-gpu[cuda]'"),
    ("libcufft", "cuFFT is missing: pip install 'onnxruntime-gpu[cuda]'"),
)


def provider_failures(native_log: str) -> dict[str, str]:
    """Why GPU providers did not load, read from onnxruntime's native log text.

    Returns {provider: "reason; hint"}, e.g. {"CUDAExecutionProvider": "libcuda.so.1: cannot open
    shared object file: No such file or directory; no NVIDIA driver found: ..."}; {} when none failed.
    """
    failures: dict[str, str] = {}
    for lib, error in _LOAD_FAILURE.findall(native_log):
        provider = _PROVIDER_LIBRARIES.get(lib.lower())
        if provider and provider not in failures:
            hint = next((h for key, h in _LIBRARY_HINTS if key in error), "")
            failures[provider] = error.strip() + (f"; {hint}" if hint else "")
    for name, error in _CREATE_FAILURE.findall(native_log):
        provider = f"{name}ExecutionProvider"
        if provider in GPU_PROVIDERS and provider not in failures:
            failures[provider] = error.strip().split(". ")[0] or "could not be created"
    return failures


def _nvidia_driver_error() -> str | None:
    """None when the NVIDIA driver's CUDA library loads in this process, else why not (with a hint)."""
    import ctypes

    name = "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"
    try:
        ctypes.CDLL(name)
    except OSError as err:
        message = str(err).strip() or f"{name}: cannot be loaded"
        if name not in message:
            message = f"{name}: {message}"
        return f"{message}; no NVIDIA driver found: install the driver, or run on the CPU"
    return None


def _preload_gpu_libraries() -> list[str]:
    """Load the CUDA and cuDNN libraries of pip's nvidia-* packages (``onnxruntime-gpu[cuda,cudnn]``,
    or those PyTorch brought, in any site-packages folder on sys.path) so the CUDA provider finds
    them without LD_LIBRARY_PATH. Quiet, best effort; returns the paths it loaded."""
    import ctypes

    loaded: list[str] = []
    preload = getattr(ort, "preload_dlls", None)  # onnxruntime-gpu >= 1.21: its own site folder
    relative_paths = getattr(ort, "_get_nvidia_dll_paths", None)  # the libraries this build needs
    with _quiet_native():
        if preload is not None:
            with contextlib.suppress(Exception):
                preload()
        if relative_paths is None:
            return loaded
        try:
            wanted = [tuple(p) for p in relative_paths(False, True, True)]
        except Exception:
            return loaded
        sites = [d for d in dict.fromkeys(sys.path) if d and os.path.isdir(os.path.join(d, "nvidia"))]
        for _ in range(2):  # a library whose dependency comes later in the list loads on the second round
            for site in sites:
                for rel in wanted:
                    path = os.path.join(site, *rel)
                    if path not in loaded and os.path.isfile(path):
                        with contextlib.suppress(OSError):
                            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                            loaded.append(path)
    return loaded


def probe_providers(device: str = "auto") -> list[str]:
    """Providers a session for ``device`` really gets on this machine (cached per device).

    Builds a one-node model in memory, quietly, so a CUDA build on a machine without a GPU
    (or without CUDA libraries) reports just the CPU instead of printing load errors.
    """
    check_device(device)
    if device not in _PROBES:
        offered = set(available_providers())
        wanted = [p for p in DEVICE_PROVIDERS[device] if p in offered] or ["CPUExecutionProvider"]
        if wanted == ["CPUExecutionProvider"]:
            _PROBES[device] = wanted
            return list(wanted)
        no_driver = _nvidia_driver_error()
        if no_driver:  # the GPU providers cannot start: skip loading their libraries (time and memory for nothing)
            _PROBES[device] = ["CPUExecutionProvider"]
            _PROBE_FAILURES[device] = {p: no_driver for p in wanted if p in GPU_PROVIDERS}
            return ["CPUExecutionProvider"]
        from onnx import TensorProto, helper

        _preload_gpu_libraries()
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
        model = helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe", [x], [y]),
                                  opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors reach the native log, which is read for the reasons
        got = ["CPUExecutionProvider"]
        raised: dict[str, str] = {}
        with tempfile.TemporaryFile() as native_log:
            for i in range(len(wanted)):  # onnxruntime may raise instead of falling back: try shorter lists
                try:
                    with _quiet_native(native_log.fileno()):
                        session = ort.InferenceSession(model.SerializeToString(), sess_options=options,
                                                       providers=wanted[i:])
                    got = list(session.get_providers())
                    break
                except Exception as err:
                    raised.setdefault(wanted[i], (str(err).strip().splitlines() or [type(err).__name__])[0][:300])
            native_log.seek(0)
            failures = {**raised, **provider_failures(native_log.read().decode("utf-8", "replace"))}
        _PROBES[device] = got
        _PROBE_FAILURES[device] = {p: why for p, why in failures.items() if p in wanted and p not in got}
    return list(_PROBES[device])


def unusable_providers(device: str = "auto") -> dict[str, str]:
    """GPU providers asked for by ``device`` and offered by this build that did not load, with why."""
    probe_providers(device)
    return dict(_PROBE_FAILURES.get(device, {}))


def runtime_info(device: str = "auto") -> dict:
    """onnxruntime version, providers this build offers, those a session for ``device`` really gets,
    and why the GPU ones that did not load failed."""
    return {"onnxruntime": ort.__version__, "providers_available": available_providers(),
            "device": device, "providers_used": probe_providers(device),
            "providers_unusable": unusable_providers(device)}
