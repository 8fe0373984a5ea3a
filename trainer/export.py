"""Export a style checkpoint to ONNX: one function that also checks itself.

The ONNX model takes "image" float32 (N, 3, H, W), RGB, 0..255 with dynamic N, H, W
(H, W multiples of 4) and returns "stylised" of the same shape (unclamped). Export runs the
ONNX checker, compares onnxruntime with PyTorch on two input sizes (fails above a
tolerance) and writes the metadata of stylecam/contract.py.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import warnings
from dataclasses import fields
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
from trainer.nets.transformer import TransformerConfig, runtime_variant, transformer_from_config
from trainer.provenance import init_record, portable_path

#: max |onnxruntime - PyTorch| allowed, in 0..255 pixel units
TOLERANCE = {"fp32": 0.05, "fp16": 4.0}
PARITY_SHAPES = ((1, 3, 68, 92), (2, 3, 100, 132))
#: ONNX opsets accepted: torch's exporter writes these networks up to 23; the runtime needs >= 11
#: (its in-graph padding); every one in between was checked to export, run and pass the parity check
OPSETS = (11, 23)
DEFAULT_OPSET = 17
TRAINING_KEYS = ("size", "batch_size", "iterations", "content_weight", "style_weight", "tv_weight", "style_size",
                 "content_layer", "style_layers", "lr", "seed", "holdout", "stability_weight", "stability_noise",
                 "precision")


class _Fp16(nn.Module):
    """float32 in/out around a float16 network (the pixel contract stays float32)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net.half()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.half()).float()


def network_from_checkpoint(ckpt: dict, padding: str | None = None) -> torch.nn.Module:
    """Rebuild the trained network, optionally with another padding mode (same weights)."""
    cfg = TransformerConfig.from_dict(ckpt["network"])
    if padding is not None:
        if padding not in contract.PADDING_MODES:
            raise UserError(f"unknown padding {padding!r}", f"use one of {', '.join(contract.PADDING_MODES)}")
        cfg = TransformerConfig(**{**cfg.__dict__, "padding": padding})
    net = transformer_from_config(cfg)
    net.load_state_dict(ckpt["model"])
    return net.eval()


def init_provenance(init: str) -> dict:
    """For a run started with --init: {"init": portable path, "init_sha256", ["init_commit"], "init_training":
    the whole training chain of those weights} (trainer.provenance); {} for a run from random weights."""
    if not init:
        return {}
    made = {}
    try:
        if init.endswith(".onnx"):
            model = onnx.load(init, load_external_data=False)
            made = json.loads({p.key: p.value for p in model.metadata_props}.get(contract.KEY_TRAINING, "{}"))
        else:
            ckpt = read_checkpoint(init, required=())
            if ckpt.get("kind") == "stylecam-distilled":
                from trainer.distill import distillation_record
                made = distillation_record(ckpt)
            else:
                made = training_record(ckpt)
    except (OSError, ValueError, RuntimeError, KeyError, AttributeError, UserError):
        pass  # the weights were loaded once already; provenance is informative only
    return {**init_record(init), "init_training": made}


def training_record(ckpt: dict) -> dict:
    """The training stage a style checkpoint records (stylecam.training): its settings, the painting and
    photo folder (portable paths), the steps, the final losses and, for a run started from other weights,
    their own chain (init_provenance)."""
    raw = ckpt["config"]
    final = ckpt["history"][-1] if ckpt.get("history") else {}
    return {**{k: raw.get(k) for k in TRAINING_KEYS}, "steps_trained": ckpt["step"],
            "style_image": portable_path(str(raw.get("style_image", ""))),
            "data": portable_path(str(raw.get("data", ""))), "final_losses": final,
            **({"init": ""} if not raw.get("init") else init_provenance(raw["init"]))}


def style_metadata(ckpt: dict, padding: str, precision: str) -> dict[str, str]:
    """The contract metadata for a style checkpoint (all values strings)."""
    from trainer.train_style import StyleTrainConfig
    raw = ckpt["config"]
    names = {f.name for f in fields(StyleTrainConfig)}
    cfg = StyleTrainConfig(**{k: v for k, v in raw.items() if k in names})
    info = cfg.metadata()
    training = training_record(ckpt)
    return {
        contract.KEY_KIND: "style", contract.KEY_FORMAT: contract.FORMAT_VERSION, contract.KEY_NAME: cfg.name,
        contract.KEY_PAINTING: info["painting"], contract.KEY_ARTIST: info["artist"], contract.KEY_YEAR: info["year"],
        contract.KEY_SOURCE: info["source"], contract.KEY_LICENCE: info["licence"], contract.KEY_VARIANT: runtime_variant(cfg.variant),
        contract.KEY_PADDING: padding, contract.KEY_PIXEL_CONTRACT: json.dumps(contract.STYLE_PIXEL_CONTRACT),
        contract.KEY_CONFIG: json.dumps(ckpt["network"]), contract.KEY_TRAINING: json.dumps(training, default=str),
        "stylecam.precision": precision,
    }


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


def network_from_onnx(path: str | Path, padding: str | None = None) -> tuple[torch.nn.Module, dict[str, str]]:
    """Rebuild the network of a stylecam style ONNX file from its weights and metadata.

    Returns (network in eval mode, the file's metadata). Lets a shipped model be re-exported with
    another padding mode or precision when its training checkpoint is not at hand.
    """
    try:
        model = onnx.load(str(path))
    except Exception as err:  # noqa: BLE001 - any parse failure means the same thing to the user
        raise UserError(f"{path} is not a readable ONNX file ({err.__class__.__name__})",
                        "pass a checkpoint.pt or a style model from weights/") from None
    meta = {p.key: p.value for p in model.metadata_props}
    if meta.get(contract.KEY_KIND) != "style" or contract.KEY_CONFIG not in meta:
        raise UserError(f"{path} is not a stylecam style model (no style metadata)",
                        "re-export from the training checkpoint instead")
    precision = meta.get("stylecam.precision", "fp32")
    if precision != "fp32":
        name = meta.get(contract.KEY_NAME, "NAME")
        fp32 = f"weights/{name}{'' if meta.get(contract.KEY_VARIANT) == 'full' else '.lite'}.onnx"
        raise UserError(f"{path} holds {precision} weights, which cannot be trained or re-exported",
                        f"use the fp32 model it was made from, e.g. {fp32}, or the training checkpoint.pt")
    state = {t.name: torch.from_numpy(onnx.numpy_helper.to_array(t).copy()) for t in model.graph.initializer}
    net = network_from_checkpoint({"network": json.loads(meta[contract.KEY_CONFIG]),
                                   "model": {k: v for k, v in state.items() if "." in k}}, padding)
    return net, meta


def export_style(checkpoint: str | Path, out_path: str | Path, padding: str | None = None, fp16: bool = False,
                 opset: int = DEFAULT_OPSET, tolerance: float | None = None) -> dict:
    """Checkpoint (or fp32 style ONNX) -> ONNX file with metadata.

    Returns {path, padding, precision, max_abs_diff, tolerance}. Raises UserError when the source
    is unusable, the output is not writable or parity fails; no temporary file is left behind.
    """
    if not OPSETS[0] <= opset <= OPSETS[1]:
        raise UserError(f"--opset {opset} is not supported", f"use {OPSETS[0]}..{OPSETS[1]} (default {DEFAULT_OPSET})")
    refuse_overwriting_inputs(out_path, [checkpoint], "-o")
    out_path = ensure_writable_file(out_path, "-o")
    precision = "fp16" if fp16 else "fp32"
    if str(checkpoint).endswith(".onnx"):
        net, metadata = network_from_onnx(checkpoint, padding)
        padding = net.config.padding
        metadata = {**metadata, contract.KEY_PADDING: padding, "stylecam.precision": precision}
    else:
        ckpt = read_checkpoint(checkpoint, required=("model", "config", "step", "network"))
        padding = padding or ckpt["network"].get("padding", "reflect")
        net = network_from_checkpoint(ckpt, padding)
        if ckpt.get("kind") == "stylecam-distilled":
            from trainer.distill import distilled_metadata
            metadata = distilled_metadata(ckpt, padding, precision)
        else:
            metadata = style_metadata(ckpt, padding, precision)
    exported: nn.Module = _Fp16(copy.deepcopy(net)) if fp16 else net
    with atomic_output(out_path) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(exported, (torch.rand(1, 3, 64, 64) * 255.0,), tmp, dynamo=False,
                              input_names=[contract.STYLE_INPUT], output_names=[contract.STYLE_OUTPUT],
                              opset_version=opset, do_constant_folding=False,
                              dynamic_axes={contract.STYLE_INPUT: {0: "batch", 2: "height", 3: "width"},
                                            contract.STYLE_OUTPUT: {0: "batch", 2: "height", 3: "width"}})
        model = onnx.load(tmp)
        for key, value in metadata.items():
            model.metadata_props.add(key=key, value=value)
        model.producer_name = "stylecam"
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, tmp)
        diff = onnx_parity(tmp, net)
        limit = TOLERANCE[precision] if tolerance is None else tolerance
        if not diff <= limit:
            raise UserError(f"ONNX output differs from PyTorch by {diff:.3g} (> {limit}) for {out_path.name}",
                            "do not ship this file; try fp32, or report the bug")
    return {"path": str(out_path), "padding": padding, "precision": precision, "max_abs_diff": diff, "tolerance": limit}


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
