"""`stylecam-train visualize`: feature maps of one layer and the first layer's filters, as PNG grids.

--model is a classifier checkpoint (layers named as in its summary: conv1, res1, pool2, ...) or
``vgg16`` (layers relu1_1 ... relu5_3 of the ImageNet VGG-16 that judges style).
Writes <out>/<layer>_maps.png (one tile per channel, each scaled to its own min..max) and
<out>/filters.png (first-layer kernels; RGB when the input has 3 channels).
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from stylecam.argtypes import positive_int
from stylecam.errors import UserError
from stylecam.fileout import refuse_overwriting_inputs, write_image
from trainer.checkpoints import ensure_writable_dir


def _to_uint8(a: np.ndarray) -> np.ndarray:
    """Scale an array to 0..255 by its own min..max (constant arrays become mid-gray)."""
    a = a.astype(np.float32)
    lo, hi = float(a.min()), float(a.max())
    if hi - lo < 1e-12:
        return np.full(a.shape, 128, np.uint8)
    return np.round((a - lo) / (hi - lo) * 255).astype(np.uint8)


def tile_grid(tiles: list[np.ndarray], tile_size: int | tuple[int, int], gap: int = 2) -> np.ndarray:
    """uint8 tiles (h, w) or (h, w, 3) -> one uint8 BGR grid, ceil(sqrt(n)) columns.

    tile_size: side of square tiles, or (height, width); tiles are resized (nearest) to it.
    """
    th, tw = (tile_size, tile_size) if isinstance(tile_size, int) else tile_size
    n = len(tiles)
    if n == 0:
        raise UserError("nothing to draw: no feature maps or filters", "pass --max-maps 1 or more")
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (th + gap) + gap, cols * (tw + gap) + gap, 3), 40, np.uint8)
    for i, t in enumerate(tiles):
        if t.ndim == 2:
            t = np.repeat(t[:, :, None], 3, axis=2)
        t = cv2.resize(t, (tw, th), interpolation=cv2.INTER_NEAREST)
        r, c = divmod(i, cols)
        y, x = gap + r * (th + gap), gap + c * (tw + gap)
        grid[y:y + th, x:x + tw] = t
    return grid


def feature_grid(maps: np.ndarray, max_maps: int = 64, tile_size: int | None = None) -> np.ndarray:
    """float (C, H, W) feature maps -> uint8 BGR grid of the first ``max_maps`` channels, each scaled alone.

    Tiles keep the maps' aspect ratio; ``tile_size`` is the tile height (default: 32..96 pixels).
    """
    if maps.ndim != 3:
        raise UserError(f"layer output has shape {maps.shape}, not (C, H, W)", "pick a convolutional layer")
    h, w = maps.shape[1:]
    th = tile_size or max(32, min(96, h * 3))
    return tile_grid([_to_uint8(m) for m in maps[:max_maps]], (th, max(1, round(th * w / h))))


def filter_grid(weight: np.ndarray, tile_size: int = 32) -> np.ndarray:
    """Conv weights (K, Cin, f, f) -> uint8 BGR grid, one tile per filter (RGB if Cin == 3, else channel mean)."""
    tiles = []
    for w in weight:
        if w.shape[0] == 3:
            tiles.append(_to_uint8(w.transpose(1, 2, 0))[:, :, ::-1].copy())   # RGB -> BGR for cv2
        else:
            tiles.append(_to_uint8(w.mean(axis=0)))
    return tile_grid(tiles, tile_size)


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The first Conv2d of ``model`` (module order)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m
    raise UserError("the model has no convolution layer", "visualise a convolutional model")


def _read_image(path: str) -> np.ndarray:
    if not Path(path).exists():   # cv2.imread would print a WARN line and return None
        raise UserError(f"image not found: {path}", "check the path")
    if Path(path).is_dir():
        raise UserError(f"{path} is a folder, not an image", "pass a JPEG or PNG file")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UserError(f"cannot read image {path}", "pass a JPEG or PNG file")
    return image


def classifier_maps(ckpt_path: str, layer: str, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(feature maps (C, H, W) of ``layer``, first-layer weights) of a classifier checkpoint on an image."""
    from stylecam.classify import Normalisation, preprocess
    from trainer.classifier_outputs import load_classifier
    import json

    model, ckpt = load_classifier(ckpt_path)
    names = [n for n, _ in model.body.named_children()]
    if layer not in names:
        raise UserError(f"no layer {layer!r} in this classifier", f"layers: {', '.join(names)}")
    x = torch.from_numpy(preprocess(image_bgr, Normalisation.from_json(json.dumps(ckpt["normalisation"]))))
    with torch.no_grad():
        for name, module in model.body.named_children():
            x = module(x)
            if name == layer:
                break
    return x[0].numpy(), first_conv(model).weight.detach().numpy()


def vgg_maps(layer: str, image_bgr: np.ndarray, weights: str | None = None,
             extractor: nn.Module | None = None, short_side: int = 224) -> tuple[np.ndarray, np.ndarray]:
    """(feature maps (C, H, W) of VGG-16 ``layer``, first-layer weights) on an image scaled to ``short_side``."""
    from trainer.nets.vgg import VGG16_LAYERS, load_vgg16

    if layer not in VGG16_LAYERS:
        raise UserError(f"unknown VGG-16 layer {layer!r}", f"use one of {', '.join(VGG16_LAYERS)}")
    extractor = extractor or load_vgg16([layer], weights)
    h, w = image_bgr.shape[:2]
    s = short_side / min(h, w)
    image = cv2.resize(image_bgr, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(image[:, :, ::-1].transpose(2, 0, 1).astype(np.float32).copy())[None]  # RGB 0..255
    with torch.no_grad():
        maps = extractor(x)[layer][0].numpy()
    return maps, first_conv(extractor).weight.detach().numpy()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="input image (JPEG/PNG)")
    p.add_argument("--model", required=True,
                   help="classifier checkpoint.pt written by `stylecam-train classifier`, or vgg16")
    p.add_argument("--layer", required=True, help="layer name: conv1, res1, ... (classifier) or relu1_1 ... (vgg16)")
    p.add_argument("--max-maps", type=positive_int, default=64, metavar="N",
                   help="at most this many feature maps in the grid")
    p.add_argument("--vgg-weights", default=None, metavar="FILE",
                   help="VGG-16 features state dict (default: $STYLECAM_VGG16, else torchvision's download)")
    p.add_argument("--out", default=".", metavar="DIR", help="output folder, created if needed")


def run(args: argparse.Namespace) -> int:
    image = _read_image(args.image)
    for name in (f"{args.layer}_maps.png", "filters.png"):
        refuse_overwriting_inputs(Path(args.out) / name, {"IMAGE": args.image, "--model": args.model}, "--out")
    out = ensure_writable_dir(args.out)   # before loading a model
    if args.model == "vgg16":
        maps, weight = vgg_maps(args.layer, image, args.vgg_weights)
    else:
        maps, weight = classifier_maps(args.model, args.layer, image)
    write_image(out / f"{args.layer}_maps.png", feature_grid(maps, args.max_maps), flag="--out")
    write_image(out / "filters.png", filter_grid(weight), flag="--out")
    print(f"{args.layer}: {maps.shape[0]} maps of {maps.shape[1]}x{maps.shape[2]}; "
          f"first layer {weight.shape[0]} filters {weight.shape[2]}x{weight.shape[3]}\n"
          f"wrote {out / (args.layer + '_maps.png')} and {out / 'filters.png'}")
    return 0
