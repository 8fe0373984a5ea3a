"""`stylecam-train export-vgg`: VGG-16 up to relu2_2 as ONNX, for the study's content-drift metric.

The ONNX model takes "image" float32 (N, 3, H, W), RGB, values 0..255 (ImageNet
normalisation happens inside) with dynamic N, H, W, and returns "features" float32
(N, 128, H/2, W/2), the relu2_2 activations. stylecam ships one in weights/features/; this
command makes it again (default ~/.cache/stylecam/vgg16_relu2_2.onnx, where the study also looks).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from stylecam.errors import UserError
from stylecam.fileout import atomic_output, refuse_overwriting_inputs
from trainer.checkpoints import ensure_writable_file
from trainer.nets.vgg import ENV_WEIGHTS, load_vgg16

INPUT_NAME = "image"
OUTPUT_NAME = "features"
LAYER = "relu2_2"
DEFAULT_PATH = Path("~/.cache/stylecam/vgg16_relu2_2.onnx")
PARITY_TOLERANCE = 1e-2  # max |onnx - torch| on relu2_2 activations (values up to a few hundred)


class _Relu22(nn.Module):
    """Wraps a FeatureExtractor so the graph has one tensor output instead of a dict."""

    def __init__(self, extractor: nn.Module, layer: str = LAYER):
        super().__init__()
        self.extractor, self.layer = extractor, layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.extractor(x)[self.layer]


def export_features(extractor: nn.Module, out_path: str | Path, layer: str = LAYER, opset: int = 17) -> dict:
    """Write ``extractor``'s ``layer`` output as an ONNX model; check it and compare with PyTorch.

    extractor: a trainer.nets.vgg.FeatureExtractor that returns ``layer``.
    Returns {"path", "max_abs_diff"}. The file is written to a temporary name and renamed.
    Raises UserError when the folder is not writable or the ONNX output differs from PyTorch.
    """
    out_path = ensure_writable_file(Path(out_path).expanduser(), "-o")
    net = _Relu22(extractor, layer).eval()
    try:
        with atomic_output(out_path) as tmp:
            diff = _write_checked(net, str(tmp), layer, opset)
    except OSError as err:
        raise UserError(f"cannot write {out_path}: {err.strerror or err}", "choose another -o") from None
    return {"path": str(out_path), "max_abs_diff": diff}


def _write_checked(net: nn.Module, tmp: str, layer: str, opset: int) -> float:
    """Export ``net`` to ``tmp`` with its metadata, run the ONNX checker, and return max |ONNX - PyTorch|
    on a random input; UserError above PARITY_TOLERANCE."""
    import onnxruntime as ort  # the trainer checks its own exports; the runtime never imports torch

    with torch.no_grad():
        torch.onnx.export(net, (torch.rand(1, 3, 64, 64) * 255.0,), tmp, dynamo=False,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], opset_version=opset,
                          dynamic_axes={INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                                        OUTPUT_NAME: {0: "batch", 2: "height", 3: "width"}})
    model = onnx.load(tmp)
    model.producer_name = "stylecam"
    for key, value in {"stylecam.kind": "features", "stylecam.layer": layer,
                       "stylecam.input": "float32 NCHW RGB 0..255"}.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, tmp)
    x = (torch.rand(1, 3, 52, 68, generator=torch.Generator().manual_seed(0)) * 255.0)
    with torch.no_grad():
        expected = net(x).numpy()
    session = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
    diff = float(np.abs(got - expected).max())
    if not diff <= PARITY_TOLERANCE:
        raise UserError(f"ONNX features differ from PyTorch by {diff:.3g} (> {PARITY_TOLERANCE})",
                        "do not use this file; report the bug with your torch and onnx versions")
    return diff


def export_vgg(out_path: str | Path = DEFAULT_PATH, weights_path: str | Path | None = None) -> dict:
    """ImageNet VGG-16 up to relu2_2 -> ONNX at ``out_path`` (see export_features).

    Weights: ``weights_path``, else $STYLECAM_VGG16, else torchvision's download.
    """
    refuse_overwriting_inputs(Path(out_path).expanduser(), [weights_path or os.environ.get(ENV_WEIGHTS)], "-o")
    ensure_writable_file(Path(out_path).expanduser(), "-o")     # before loading (or downloading) the weights
    return export_features(load_vgg16([LAYER], weights_path), out_path)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", default=str(DEFAULT_PATH), metavar="FILE",
                   help=f"ONNX file to write (default: {DEFAULT_PATH}, where `stylecam study` looks for it)")
    p.add_argument("--vgg-weights", default=None, metavar="PTH",
                   help=f"local torchvision vgg16().features state dict (default: ${ENV_WEIGHTS}, "
                        "else torchvision's download)")


def run(args: argparse.Namespace) -> int:
    result = export_vgg(args.output, args.vgg_weights)
    print(f"wrote {result['path']} (VGG-16 {LAYER}; ONNX vs PyTorch max |diff| {result['max_abs_diff']:.2g})")
    return 0
