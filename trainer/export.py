"""Export a style network to ONNX: one function that also checks itself.

The ONNX model takes "image" float32 (N, 3, H, W), RGB, 0..255 with dynamic N, H, W
(H, W multiples of 4) and returns "stylised" of the same shape (unclamped). ``export_network``
writes a network with the given metadata, runs the ONNX checker and compares onnxruntime with
PyTorch on two input sizes (fails above a tolerance); ``export_style`` does it for a checkpoint
or a style ONNX file, with the metadata of stylecam/contract.py (trainer/metadata.py).
"""
from __future__ import annotations

import argparse
import copy
import math
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from stylecam import contract
from stylecam.argtypes import int_at_least, non_negative_float
from stylecam.errors import UserError
from stylecam.fileout import atomic_output, refuse_overwriting_inputs
from trainer.checkpoints import ensure_writable_file, read_checkpoint
from trainer.metadata import KEY_PRECISION, checkpoint_metadata
from trainer.network_files import network_from_checkpoint, network_from_onnx
from trainer.onnx_weights import MIN_ELEMENTS, store_weights_fp16

#: max |onnxruntime - PyTorch| allowed, in 0..255 pixel units
TOLERANCE = {"fp32": 0.05, "fp16": 4.0}
PARITY_SHAPES = ((1, 3, 68, 92), (2, 3, 100, 132))
#: ONNX opsets accepted: torch's exporter writes these networks up to 23; the runtime needs >= 11
#: (its in-graph padding); every one in between was checked to export, run and pass the parity check
OPSETS = (11, 23)
DEFAULT_OPSET = 17
#: metadata key saying how the weights are stored: "fp16" (float16 + Cast, trainer/onnx_weights.py);
#: absent when they are stored as the graph computes them
KEY_WEIGHTS = "stylecam.weights"


class _Fp16(nn.Module):
    """float32 in/out around a float16 network (the pixel contract stays float32)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net.half()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.half()).float()


def onnx_parity(onnx_path: str | Path, net: nn.Module, shapes=PARITY_SHAPES, seed: int = 0) -> float:
    """Max |onnxruntime - PyTorch| over random 0..255 inputs of the given shapes (CPU).

    NaN when either output holds a NaN, inf when one is infinite: never a small number then.
    Raises UserError when the network itself (PyTorch) gives non-finite values (broken weights)."""
    from stylecam.session import load_model
    loaded = load_model(str(onnx_path), device="cpu")
    g = torch.Generator().manual_seed(seed)
    worst = 0.0
    for shape in shapes:
        x = torch.rand(shape, generator=g) * 255.0
        with torch.no_grad():
            expected = net(x).numpy()
        if not np.isfinite(expected).all():
            raise UserError("the network outputs NaN or infinite values: its weights are broken",
                            "training diverged; retrain with a lower --lr or smaller loss weights")
        got = loaded.session.run([loaded.output_name], {loaded.input_name: x.numpy()})[0]
        if got.shape != expected.shape:
            raise UserError(f"exported model returns shape {got.shape} for input {shape}, expected {expected.shape}",
                            "this is a bug in the export; please report it")
        diff = float(np.abs(got.astype(np.float64) - expected).max())
        if not math.isfinite(diff):
            return diff                                   # max() would drop a NaN
        worst = max(worst, diff)
    return worst


def check_opset(opset: int) -> None:
    """UserError unless ``opset`` is within OPSETS."""
    if not OPSETS[0] <= opset <= OPSETS[1]:
        raise UserError(f"--opset {opset} is not supported", f"use {OPSETS[0]}..{OPSETS[1]} (default {DEFAULT_OPSET})")


def fp16_rounded(net: nn.Module) -> nn.Module:
    """A copy of ``net`` whose float tensors of at least MIN_ELEMENTS values are rounded to float16 and
    back: the float32 network a file written by store_weights_fp16 computes."""
    rounded = copy.deepcopy(net)
    with torch.no_grad():
        for tensor in rounded.state_dict().values():
            if tensor.is_floating_point() and tensor.numel() >= MIN_ELEMENTS:
                tensor.copy_(tensor.half().float())
    return rounded


def export_network(net: nn.Module, metadata: dict[str, str], out_path: str | Path, *, fp16: bool = False,
                   weights_fp16: bool = False, opset: int = DEFAULT_OPSET, tolerance: float | None = None) -> dict:
    """Write ``net`` (float32 in eval mode) as a checked ONNX file with ``metadata`` (all values strings).

    ``fp16``: the graph computes in float16 (input and output stay float32). ``weights_fp16``: the graph
    computes in float32 but stores its weights as float16 (half the file); parity is then measured
    against ``net`` with those rounded weights, within the fp32 tolerance. The metadata written gets
    stylecam.precision ("fp16" or "fp32") and stylecam.weights ("fp16", only with ``weights_fp16``).
    Returns {path, precision, weights, max_abs_diff, tolerance}. Raises UserError when the output is not
    writable or parity fails; no temporary file is left behind.
    """
    if fp16 and weights_fp16:
        raise ValueError("fp16 already stores float16 weights; weights_fp16 is for float32 graphs")
    check_opset(opset)
    out_path = ensure_writable_file(out_path, "-o")
    precision = "fp16" if fp16 else "fp32"
    weights = "fp16" if fp16 or weights_fp16 else "fp32"
    metadata = {k: v for k, v in metadata.items() if k != KEY_WEIGHTS}
    metadata[KEY_PRECISION] = precision
    if weights_fp16:
        metadata[KEY_WEIGHTS] = "fp16"
    exported: nn.Module = _Fp16(copy.deepcopy(net)) if fp16 else net
    reference = fp16_rounded(net) if weights_fp16 else net
    with atomic_output(out_path) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(exported, (torch.rand(1, 3, 64, 64) * 255.0,), tmp, dynamo=False,
                              input_names=[contract.STYLE_INPUT], output_names=[contract.STYLE_OUTPUT],
                              opset_version=opset, do_constant_folding=False,
                              dynamic_axes={contract.STYLE_INPUT: {0: "batch", 2: "height", 3: "width"},
                                            contract.STYLE_OUTPUT: {0: "batch", 2: "height", 3: "width"}})
        model = onnx.load(tmp)
        if weights_fp16:
            store_weights_fp16(model)
        for key, value in metadata.items():
            model.metadata_props.add(key=key, value=value)
        model.producer_name = "stylecam"
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, tmp)
        diff = onnx_parity(tmp, reference)
        limit = TOLERANCE[precision] if tolerance is None else tolerance
        if not diff <= limit:
            raise UserError(f"ONNX output differs from PyTorch by {diff:.3g} (> {limit}) for {out_path.name}",
                            "do not ship this file; try fp32, or report the bug")
    return {"path": str(out_path), "precision": precision, "weights": weights, "max_abs_diff": diff,
            "tolerance": limit}


def export_style(checkpoint: str | Path, out_path: str | Path, padding: str | None = None, fp16: bool = False,
                 opset: int = DEFAULT_OPSET, tolerance: float | None = None) -> dict:
    """Checkpoint (or style ONNX with float32 weights) -> ONNX file with metadata (export_network).

    Returns {path, padding, precision, max_abs_diff, tolerance}. Raises UserError when the source
    is unusable, the output is not writable or parity fails; no temporary file is left behind.
    """
    check_opset(opset)
    refuse_overwriting_inputs(out_path, [checkpoint], "-o")
    out_path = ensure_writable_file(out_path, "-o")
    precision = "fp16" if fp16 else "fp32"
    if str(checkpoint).endswith(".onnx"):
        net, metadata = network_from_onnx(checkpoint, padding)
        padding = net.config.padding
        metadata = {**metadata, contract.KEY_PADDING: padding}
    else:
        ckpt = read_checkpoint(checkpoint, required=("model", "config", "step", "network"))
        padding = padding or ckpt["network"].get("padding", "reflect")
        net = network_from_checkpoint(ckpt, padding)
        metadata = checkpoint_metadata(ckpt, padding, precision)
    report = export_network(net, metadata, out_path, fp16=fp16, opset=opset, tolerance=tolerance)
    return {"path": report["path"], "padding": padding, "precision": precision,
            "max_abs_diff": report["max_abs_diff"], "tolerance": report["tolerance"]}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", metavar="CKPT",
                   help="checkpoint.pt written by `stylecam-train style` or `distill`, or an fp32 style .onnx "
                        "(to re-export the same weights with another padding or in fp16)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="ONNX file to write, e.g. weights/NAME.onnx")
    p.add_argument("--padding", choices=contract.PADDING_MODES, default=None,
                   help="padding mode of every convolution (default: the one it was trained with)")
    p.add_argument("--fp16", action="store_true",
                   help="store weights and compute in float16 (input and output stay float32); "
                        "for GPUs, not for further training")
    p.add_argument("--tolerance", type=non_negative_float, default=None, metavar="PIXELS",
                   help="largest |ONNX - PyTorch| difference allowed, in 0..255 pixel units "
                        f"(default: {TOLERANCE['fp32']} for fp32, {TOLERANCE['fp16']} for fp16)")
    p.add_argument("--opset", type=int_at_least(*OPSETS), default=DEFAULT_OPSET,
                   help=f"ONNX operator set version to write ({OPSETS[0]}..{OPSETS[1]})")


def run(args: argparse.Namespace) -> int:
    report = export_style(args.checkpoint, args.output, padding=args.padding, fp16=args.fp16,
                          opset=args.opset, tolerance=args.tolerance)
    print(f"stylecam-train: wrote {report['path']} ({report['precision']}, padding {report['padding']}); "
          f"max abs diff vs PyTorch {report['max_abs_diff']:.3g} <= {report['tolerance']}")
    return 0
