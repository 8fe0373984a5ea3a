"""A trained style network read back from its checkpoint.pt or its style ONNX file.

Both give a TransformerNet in eval mode, float32 weights, taking float32 (N, 3, H, W) RGB 0..255
(H, W multiples of 4). An ONNX file may store its weights as float16 (trainer/onnx_weights.py);
they are read back as float32. fp16- or int8-computing copies are refused: their weights are not
the trained ones.
"""
from __future__ import annotations

import json
from pathlib import Path

import onnx
import torch

from stylecam import contract
from stylecam.errors import UserError
from trainer.metadata import KEY_PRECISION
from trainer.nets.transformer import TransformerConfig, transformer_from_config
from trainer.onnx_weights import float32_initializers


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


def network_from_onnx(path: str | Path, padding: str | None = None) -> tuple[torch.nn.Module, dict[str, str]]:
    """Rebuild the network of a stylecam style ONNX file from its weights and metadata.

    Returns (network in eval mode, the file's metadata). Lets a shipped model be re-exported with
    another padding mode or precision when its training checkpoint is not at hand, and be the
    teacher of a distillation or the start of a training run.
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
    precision = meta.get(KEY_PRECISION, "fp32")
    if precision != "fp32":
        name = meta.get(contract.KEY_NAME, "NAME")
        fp32 = f"weights/{name}{'' if meta.get(contract.KEY_VARIANT) == 'full' else '.lite'}.onnx"
        raise UserError(f"{path} holds {precision} weights, which cannot be trained or re-exported",
                        f"use the fp32 model it was made from, e.g. {fp32}, or the training checkpoint.pt")
    state = {name: torch.from_numpy(array.copy()) for name, array in float32_initializers(model).items()}
    net = network_from_checkpoint({"network": json.loads(meta[contract.KEY_CONFIG]),
                                   "model": {k: v for k, v in state.items() if "." in k}}, padding)
    return net, meta
