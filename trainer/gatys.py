"""`stylecam-train gatys`: stylize one photo by optimising its pixels (Gatys et al. 2016).

Same VGG-16 losses as the trained networks, so its loss is the quality reference for them.
Weighting: loss = (1 - W) * content_weight * content + W * style_weight * style + tv_weight * tv,
with W = --style-weight-ratio in (0, 1). Images: float32 (1, 3, H, W), RGB, 0..255.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import replace
from pathlib import Path

import torch
from tqdm import tqdm

from stylecam.argtypes import float_in, int_at_least, non_negative_float, non_negative_int, positive_int
from stylecam.errors import UserError
from stylecam.fileout import refuse_overwriting_inputs, write_image
from trainer.checkpoints import ensure_writable_file
from trainer.common import MAX_SIZE, MIN_SIZE, check_min_side, pick_device
from trainer.losses import LossWeights, PerceptualLoss
from trainer.nets.vgg import load_vgg16
from trainer.photos import center_crop_multiple, load_rgb

#: output suffix -> what cv2.imencode writes for it
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".webp": "WebP",
                 ".tif": "TIFF", ".tiff": "TIFF"}


def gatys(content: torch.Tensor, style: torch.Tensor, weights: LossWeights, steps: int = 300,
          optimizer: str = "lbfgs", init: str = "content", loss_net: torch.nn.Module | None = None,
          vgg_weights: str | None = None, seed: int = 0, progress: bool = True) -> tuple[torch.Tensor, list[dict]]:
    """Optimise an image. content, style: float32 (1,3,H,W) RGB 0..255.

    Returns (image uint8 (3,H,W) RGB, history of {step, content, style, tv, total}): entry k is the
    loss of the image after k steps (entry 0: the starting image; the last: the returned image).
    Raises UserError when the loss becomes NaN or infinite.
    """
    if optimizer not in ("lbfgs", "adam"):
        raise UserError(f"unknown optimizer {optimizer!r}", "use lbfgs or adam")
    if init not in ("content", "noise"):
        raise UserError(f"unknown init {init!r}", "use content or noise")
    if loss_net is None:
        loss_net = load_vgg16(sorted({weights.content_layer, *weights.style_layers}), vgg_weights)
    device = content.device
    loss = PerceptualLoss(loss_net.to(device), style, weights)
    with torch.no_grad():
        content_features = {weights.content_layer: loss_net(content)[weights.content_layer]}
    g = torch.Generator().manual_seed(seed)
    start = content.clone() if init == "content" else (torch.rand(content.shape, generator=g) * 255.0).to(device)
    image = start.requires_grad_(True)
    opt = (torch.optim.LBFGS([image], lr=1.0, max_iter=1, history_size=50) if optimizer == "lbfgs"
           else torch.optim.Adam([image], lr=5.0))
    history: list[dict] = []
    last: dict = {}

    def closure():
        opt.zero_grad()
        terms = loss.terms(image, content, content_features)
        terms["total"].backward()
        last.update({k: float(v.detach()) for k, v in terms.items()})
        return terms["total"]

    def check(entry: dict) -> dict:
        if not math.isfinite(entry["total"]):
            raise UserError(f"the loss became {entry['total']} after {entry['step']} steps",
                            "lower the loss weights, or use --optimizer adam")
        return entry

    # the closure of step k evaluates the image left by step k - 1 (each optimiser calls it once per step)
    for step in tqdm(range(1, steps + 1), desc="gatys", unit="step", disable=not progress, dynamic_ncols=True):
        opt.step(closure)
        with torch.no_grad():
            image.clamp_(0, 255)
        history.append(check({"step": step - 1, **last}))
    result = image.detach().round()
    with torch.no_grad():
        final = loss.terms(result, content, content_features)
    history.append(check({"step": steps, **{k: float(v) for k, v in final.items()}}))
    return result[0].to(torch.uint8).cpu(), history


def ratio_weights(ratio: float, base: LossWeights) -> LossWeights:
    """Scale content by (1 - W) and style by W."""
    if not 0.0 < ratio < 1.0:
        raise UserError(f"--style-weight-ratio {ratio} is not between 0 and 1", "use e.g. 0.5")
    return replace(base, content=base.content * (1.0 - ratio), style=base.style * ratio)


def output_path(text: str) -> Path:
    """--out checked before any work: a writable file name whose suffix says the image format."""
    out = Path(text)
    if not out.is_dir() and out.suffix.lower() not in IMAGE_FORMATS:    # a folder gets its own message below
        raise UserError(f"--out {text}: cannot tell the image format from "
                        f"{repr(out.suffix) if out.suffix else 'a name without a suffix'}",
                        f"end the file name with one of {', '.join(IMAGE_FORMATS)}")
    return ensure_writable_file(out, "--out")


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = LossWeights()
    size = int_at_least(MIN_SIZE, MAX_SIZE)
    p.add_argument("--content", required=True, metavar="PHOTO", help="the photo to stylize")
    p.add_argument("--style", required=True, metavar="PAINTING", help="the painting whose style is copied")
    p.add_argument("--out", required=True, metavar="FILE",
                   help=f"image to write; the suffix picks the format ({', '.join(IMAGE_FORMATS)})")
    p.add_argument("--style-weight-ratio", type=float_in(0.0, 1.0, low_open=True, high_open=True), default=0.5,
                   metavar="W", help="balance between 0 and 1 (excluded): style weighted by W, content by 1 - W")
    p.add_argument("--steps", type=positive_int, default=300, metavar="N", help="optimiser steps")
    p.add_argument("--size", type=size, default=512, metavar="PIXELS",
                   help=f"long side the photo is resized to ({MIN_SIZE}..{MAX_SIZE}; memory and time grow "
                        "with its square)")
    p.add_argument("--style-size", type=size, default=None, metavar="PIXELS",
                   help=f"long side the painting is resized to ({MIN_SIZE}..{MAX_SIZE}; default: --size)")
    p.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs",
                   help="L-BFGS converges in fewer steps; Adam is steadier")
    p.add_argument("--init", choices=["content", "noise"], default="content",
                   help="start from the photo or from random noise")
    p.add_argument("--content-weight", type=non_negative_float, default=d.content,
                   help="weight of the content term (VGG relu2_2 vs the photo), before the ratio")
    p.add_argument("--style-weight", type=non_negative_float, default=d.style,
                   help="weight of the style term (Gram matrices vs the painting), before the ratio")
    p.add_argument("--tv-weight", type=non_negative_float, default=d.tv,
                   help="weight of total variation: more gives a smoother image")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seeds the noise of --init noise (default: 0)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto: cuda when PyTorch sees a GPU, else cpu")
    p.add_argument("--vgg-weights", default=None, metavar="PTH",
                   help="local VGG-16 features state dict (default: $STYLECAM_VGG16, else torchvision's download)")


def run(args: argparse.Namespace) -> int:
    refuse_overwriting_inputs(args.out, [args.content, args.style, args.vgg_weights], "--out")
    out = output_path(args.out)
    device = pick_device(args.device)
    content = center_crop_multiple(load_rgb(args.content, long_side=args.size))
    check_min_side(content, f"--size {args.size}", f"the photo {Path(args.content).name}")
    style_size = args.style_size or args.size
    style = load_rgb(args.style, long_side=style_size)
    check_min_side(style, f"--style-size {style_size}", f"the painting {Path(args.style).name}")
    weights = ratio_weights(args.style_weight_ratio, LossWeights(content=args.content_weight, style=args.style_weight,
                                                                 tv=args.tv_weight))
    image, history = gatys(content[None].float().to(device), style[None].float().to(device), weights,
                           steps=args.steps, optimizer=args.optimizer, init=args.init,
                           vgg_weights=args.vgg_weights, seed=args.seed)
    write_image(out, image.permute(1, 2, 0).flip(-1).contiguous().numpy(), flag="--out")   # uint8 (3,H,W) RGB -> BGR
    first, final = history[0], history[-1]
    print(f"stylecam-train: wrote {out}; loss {first['total']:.4g} -> {final['total']:.4g} "
          f"(content {final['content']:.4g}, style {final['style']:.4g}) in {args.steps} step{'' if args.steps == 1 else 's'}")
    return 0
