"""`stylecam-train gatys`: stylise one photo by optimising its pixels (Gatys et al. 2016).

Same VGG-16 losses as the trained networks, so its loss is the quality reference for them.
Weighting: loss = (1 - W) * content_weight * content + W * style_weight * style + tv_weight * tv,
with W = --style-weight-ratio in (0, 1). Images: float32 (1, 3, H, W), RGB, 0..255.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path

import torch
from tqdm import tqdm

from stylecam.errors import UserError
from trainer.checkpoints import ensure_writable_dir
from trainer.losses import LossWeights, PerceptualLoss
from trainer.nets.vgg import load_vgg16
from trainer.photos import center_crop_multiple, load_rgb


def gatys(content: torch.Tensor, style: torch.Tensor, weights: LossWeights, steps: int = 300,
          optimizer: str = "lbfgs", init: str = "content", loss_net: torch.nn.Module | None = None,
          vgg_weights: str | None = None, seed: int = 0, progress: bool = True) -> tuple[torch.Tensor, list[dict]]:
    """Optimise an image. content, style: float32 (1,3,H,W) RGB 0..255.

    Returns (image uint8 (3,H,W) RGB, history of {step, content, style, tv, total}).
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

    for step in tqdm(range(1, steps + 1), desc="gatys", unit="step", disable=not progress, dynamic_ncols=True):
        opt.step(closure)
        with torch.no_grad():
            image.clamp_(0, 255)
        history.append({"step": step, **last})
    return image.detach()[0].round().to(torch.uint8).cpu(), history


def ratio_weights(ratio: float, base: LossWeights) -> LossWeights:
    """Scale content by (1 - W) and style by W."""
    if not 0.0 < ratio < 1.0:
        raise UserError(f"--style-weight-ratio {ratio} is not between 0 and 1", "use e.g. 0.5")
    return replace(base, content=base.content * (1.0 - ratio), style=base.style * ratio)


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = LossWeights()
    p.add_argument("--content", required=True, help="the photo to stylise")
    p.add_argument("--style", required=True, help="the painting")
    p.add_argument("--out", required=True, help="output PNG")
    p.add_argument("--style-weight-ratio", type=float, default=0.5, help="W: style weighted by W, content by 1-W")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--size", type=int, default=512, help="long side of the photo (pixels)")
    p.add_argument("--style-size", type=int, default=None, help="long side of the painting (default: --size)")
    p.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs")
    p.add_argument("--init", choices=["content", "noise"], default="content")
    p.add_argument("--content-weight", type=float, default=d.content)
    p.add_argument("--style-weight", type=float, default=d.style)
    p.add_argument("--tv-weight", type=float, default=d.tv)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--vgg-weights", default=None, help="local VGG-16 features state dict (else $STYLECAM_VGG16, else download)")


def run(args: argparse.Namespace) -> int:
    from PIL import Image
    from trainer.train_style import pick_device
    device = pick_device(args.device)
    out = Path(args.out)
    ensure_writable_dir(out.parent if str(out.parent) else Path("."))
    content = center_crop_multiple(load_rgb(args.content, long_side=args.size))[None].float().to(device)
    style = load_rgb(args.style, long_side=args.style_size or args.size)[None].float().to(device)
    weights = ratio_weights(args.style_weight_ratio, LossWeights(content=args.content_weight, style=args.style_weight,
                                                                 tv=args.tv_weight))
    image, history = gatys(content, style, weights, steps=args.steps, optimizer=args.optimizer, init=args.init,
                           vgg_weights=args.vgg_weights, seed=args.seed)
    tmp = out.with_name(f".{out.name}.tmp.png")
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(tmp)
    os.replace(tmp, out)
    first, final = history[0], history[-1]
    print(f"stylecam-train: wrote {out}; loss {first['total']:.4g} -> {final['total']:.4g} "
          f"(content {final['content']:.4g}, style {final['style']:.4g}) in {len(history)} steps")
    return 0
