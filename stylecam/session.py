"""The only module that imports onnxruntime: session creation, providers, metadata.

Sessions ask for providers in the order TensorRT > CUDA > CPU (or what the user names)
and then report what the session really got, since onnxruntime falls back to CPU
silently when a provider cannot be loaded.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import onnxruntime as ort

from stylecam.errors import UserError

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

    @property
    def on_gpu(self) -> bool:
        return any(p in GPU_PROVIDERS for p in self.providers)


def read_metadata(path: str) -> dict[str, str]:
    """Custom metadata of an ONNX file, without building a full session for inference."""
    return dict(load_model(path, device="cpu").metadata)


def load_model(path: str, device: str = "auto", threads: int | None = None) -> LoadedModel:
    """Create an onnxruntime session for ``path``.

    device: auto | cpu | cuda | tensorrt. Warns loudly when a GPU was asked for and the
    session only got the CPU. Raises UserError for a missing or corrupt file.
    """
    if device not in DEVICE_PROVIDERS:
        raise UserError(f"unknown device {device!r}", f"use one of {', '.join(DEVICE_PROVIDERS)}")
    if not os.path.isfile(path):
        raise UserError(f"model file not found: {path}", "check the path, or run `stylecam --list-styles`")
    offered = set(available_providers())
    wanted = [p for p in DEVICE_PROVIDERS[device] if p in offered] or ["CPUExecutionProvider"]
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    try:
        session = ort.InferenceSession(path, sess_options=options, providers=wanted)
    except Exception as err:  # onnxruntime raises several private exception types
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"cannot load ONNX model {path}: {first_line[:200]}",
                        "the file is corrupt or not an ONNX model; re-export or re-download it") from None
    got = list(session.get_providers())
    if device != "cpu" and not any(p in GPU_PROVIDERS for p in got) and device != "auto":
        log.warning("WARNING: asked for %s but onnxruntime gave %s for %s; running on the CPU",
                    device, ", ".join(got), os.path.basename(path))
    meta = session.get_modelmeta().custom_metadata_map
    return LoadedModel(path=path, session=session, providers=got, metadata=dict(meta),
                       input_name=session.get_inputs()[0].name,
                       output_name=session.get_outputs()[0].name)
