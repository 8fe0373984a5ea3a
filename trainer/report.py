"""`stylecam-train report`: the quality report of one shipped style (lite, full, Gatys reference).

For every photo of a held-out folder (resized to a long side of --size, cropped to x4) it runs
each shipped variant of the style (onnxruntime, as the runtime does, clamped to 0..255), the
Gatys optimisation with the same loss weights, and measures all three with the training losses
(content, style, total; the weights and layers stored in the model's metadata). Writes to OUT:

  quality.json    per photo and on average: weighted content, style, total-variation and total
                  loss (total = content + style + tv, the training objective) per method,
                  grid-artifact strength (periods 2 and 4, stylecam.metrics.grid_pattern), mean
                  luma (0..255, also of the photo, as "original"), each network's total loss as
                  a ratio to Gatys (goal: full <= 1.5, lite <= 2), and the sha256 of every model
                  file measured, so a report can be checked against the file it describes
  sheet.jpg       one row per photo: original | lite | full | [compared models] | Gatys

--compare LABEL=MODEL.onnx adds another model of the same style (e.g. an earlier version) to
every measurement and to the sheet.
  gatys/NN.png    the Gatys images (cached: an existing file is reused, not recomputed; a gatys/NN.jpg,
                  e.g. from `stylecam-train zoo --gatys-photos`, is used the same way)
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from stylecam import contract, imageops
from stylecam.argtypes import int_at_least, non_negative_int, positive_float, positive_int
from stylecam.metrics import color_stats, grid_pattern
from stylecam.errors import UserError
from stylecam.fileout import atomic_write_bytes, refuse_overwriting_inputs, write_image
from stylecam.session import load_model
from stylecam.styles import Registry, entry_from_metadata, read_onnx_metadata
from trainer.checkpoints import ensure_writable_dir
from trainer.gatys import gatys
from trainer.losses import LossWeights, PerceptualLoss
from trainer.nets.vgg import load_vgg16
from trainer.photos import center_crop_multiple, load_rgb
from trainer.provenance import file_sha256

GOALS = {"full": 1.5, "lite": 2.0}  # max total-loss ratio to Gatys
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: --size / --style-size range (pixels): smaller photos do not fit the style networks' reflect paddings
MIN_SIZE, MAX_SIZE = 32, 4096


def weights_from_metadata(metadata: dict[str, str]) -> tuple[LossWeights, int]:
    """The training loss weights and painting size stored in a style model's metadata."""
    training = json.loads(metadata.get(contract.KEY_TRAINING, "{}"))
    d = LossWeights()
    weights = LossWeights(content=float(training.get("content_weight", d.content)),
                          style=float(training.get("style_weight", d.style)),
                          tv=float(training.get("tv_weight", d.tv)),
                          content_layer=training.get("content_layer", d.content_layer),
                          style_layers=dict(training.get("style_layers", d.style_layers)))
    return weights, int(training.get("style_size", 384))


def measure(loss: PerceptualLoss, image: torch.Tensor, content: torch.Tensor) -> dict[str, float]:
    """Weighted {content, style, tv, total} of ``image`` against ``content``; both float (1,3,H,W) RGB 0..255."""
    with torch.no_grad():
        return {k: float(v) for k, v in loss.terms(image, content).items()}


def grid_patterns(image: torch.Tensor) -> dict[str, float]:
    """Grid-artifact strength (stylecam.metrics.grid_pattern) of a float (1,3,H,W) RGB 0..255 image, periods 2 and 4."""
    rgb = image[0].clamp(0, 255).permute(1, 2, 0).cpu().numpy()
    return {f"grid_{p}": grid_pattern(rgb, p) for p in (2, 4)}


def mean_luma(image: torch.Tensor) -> float:
    """Mean BT.601 luma (0..255) of a float (1,3,H,W) RGB 0..255 image, clamped as the runtime does."""
    return color_stats(image[0].clamp(0, 255).permute(1, 2, 0).cpu().numpy())["luma"]


def summarise(rows: list[dict], methods: list[str]) -> dict:
    """Mean losses per method over the photos and each network's total-loss ratio to Gatys."""
    keys = [k for k in ("content", "style", "tv", "total", "grid_2", "grid_4", "luma")
            if all(k in r[methods[0]] for r in rows)]
    mean = {m: {k: float(np.mean([r[m][k] for r in rows])) for k in keys} for m in methods}
    if all("original" in r for r in rows):
        mean["original"] = {"luma": float(np.mean([r["original"]["luma"] for r in rows]))}
    ratios = {m: mean[m]["total"] / mean["gatys"]["total"] for m in methods if m != "gatys" and "gatys" in mean}
    goals = {m: {"goal": GOALS[m], "ratio": round(r, 3), "met": r <= GOALS[m]} for m, r in ratios.items() if m in GOALS}
    return {"mean": mean, "ratio_to_gatys": ratios, "goals": goals}


def list_photos(folder: str | Path, limit: int) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"photo folder not found: {folder}", "pass the held-out photos with --photos DIR")
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not photos:
        raise UserError(f"no images in {folder}", "pass a folder of .jpg/.png photos")
    return photos


def load_photo(path: str | Path, size: int) -> torch.Tensor:
    """A photo as uint8 (3, H, W) RGB, long side ``size``, cropped to multiples of 4; a very wide or tall
    photo is scaled up so its short side is at least contract.MIN_SIDE (what the style networks need)."""
    image = load_rgb(path, long_side=size)
    if min(image.shape[1:]) < contract.MIN_SIDE:
        image = load_rgb(path, short_side=contract.MIN_SIDE)
    return center_crop_multiple(image)


def check_compare_model(label: str, path: str | Path) -> None:
    """UserError unless ``path`` is a style model (a classifier or any other ONNX file is refused)."""
    metadata = read_onnx_metadata(path)
    if metadata.get(contract.KEY_KIND) == "classifier":
        raise UserError(f"--compare {label}={path} is a classifier model, not a style",
                        "compare style models of the same style, e.g. lite-v1=old/wave.lite.onnx")
    entry_from_metadata(path, metadata)


def build_report(name: str, style_image: str, photos: list[Path], out: Path, size: int = 512,
                 gatys_steps: int = 300, weights_dir: str | None = None, loss_net: torch.nn.Module | None = None,
                 vgg_weights: str | None = None, device: str = "cpu", progress: bool = True,
                 compare: dict[str, str] | None = None, style_weight: float | None = None,
                 style_size: int | None = None) -> dict:
    """Run the report (see the module docstring); returns the quality.json content.

    The losses use the shipped model's training settings; style_weight / style_size replace its
    style weight and painting size, to measure models trained differently on one scale."""
    registry = Registry(Path(weights_dir) if weights_dir else None)
    variants = {}
    for variant in ("lite", "full"):
        entry = registry.find(name, variant=variant)
        if entry.variant == variant and entry.padding == "reflect":
            variants[variant] = entry
    if not variants:
        raise UserError(f"no model of style {name!r}", "train and export it first")
    for label, path in (compare or {}).items():   # before loading VGG-16 or running anything
        if label in ("lite", "full", "gatys", "original"):
            raise UserError(f"--compare label {label!r} is taken", "use another label, e.g. lite-v1=old.onnx")
        check_compare_model(label, path)
    inputs = {"--style-image": style_image, "--vgg-weights": vgg_weights, **{str(p): p for p in photos},
              **{f"model {e.path.name}": e.path for e in variants.values()},
              **{f"--compare {label}": path for label, path in (compare or {}).items()}}
    for result in ("sheet.jpg", "quality.json"):
        refuse_overwriting_inputs(out / result, inputs, "--out")
    ensure_writable_dir(out / "gatys" if gatys_steps > 0 else out)
    weights, trained_style_size = weights_from_metadata(next(iter(variants.values())).metadata)
    if style_weight is not None:
        weights = dataclasses.replace(weights, style=float(style_weight))
    style_size = int(style_size or trained_style_size)
    if loss_net is None:
        loss_net = load_vgg16(sorted({weights.content_layer, *weights.style_layers}), vgg_weights)
    dev = torch.device(device)
    loss_net = loss_net.to(dev)
    style = load_rgb(style_image, long_side=style_size)[None].float().to(dev)
    loss = PerceptualLoss(loss_net, style, weights).to(dev)
    sessions = {v: load_model(str(e.path), device="cpu", clamp=(0.0, 255.0)) for v, e in variants.items()}
    for label, path in (compare or {}).items():
        sessions[label] = load_model(str(path), device="cpu", clamp=(0.0, 255.0))
    methods = [*sessions, *(["gatys"] if gatys_steps > 0 else [])]

    rows, cells = [], []
    for i, photo in enumerate(tqdm(photos, desc=f"report {name}", unit="photo", disable=not progress)):
        content = load_photo(photo, size)[None].float().to(dev)
        images = {}
        for variant, session in sessions.items():
            images[variant] = torch.from_numpy(session.run(content.cpu().numpy())).to(dev)
        if gatys_steps > 0:
            cached = out / "gatys" / f"{i:02d}.png"
            made_elsewhere = cached.with_suffix(".jpg")     # e.g. from a zoo run's gatys.tar
            if cached.is_file() or made_elsewhere.is_file():
                found = cached if cached.is_file() else made_elsewhere
                rgb = cv2.imread(str(found))[..., ::-1].transpose(2, 0, 1).copy()
                if rgb.shape[1:] != tuple(content.shape[2:]):
                    raise UserError(f"{found} is {rgb.shape[2]}x{rgb.shape[1]}, the photo {photo.name} is "
                                    f"{content.shape[3]}x{content.shape[2]} at --size {size}",
                                    "remove the cached Gatys images, or use the --size they were made at")
                images["gatys"] = torch.from_numpy(rgb)[None].float().to(dev)
            else:
                result, _ = gatys(content, style, weights, steps=gatys_steps, loss_net=loss_net, progress=False)
                images["gatys"] = result[None].float().to(dev)
                write_image(cached, imageops.nchw_to_bgr(images["gatys"].cpu().numpy())[0], flag="--out")
        rows.append({"photo": photo.name, "original": {"luma": mean_luma(content)},
                     **{m: {**measure(loss, images[m], content), **grid_patterns(images[m]), "luma": mean_luma(images[m])}
                        for m in methods}})
        cells.append(("original", imageops.nchw_to_bgr(content.cpu().numpy())[0]))
        for m in methods:
            if m in images:
                cells.append((m, imageops.nchw_to_bgr(images[m].cpu().numpy())[0]))
    sheet = imageops.contact_sheet(cells, columns=1 + len(methods), cell_width=240)
    write_image(out / "sheet.jpg", sheet, (cv2.IMWRITE_JPEG_QUALITY, 85), flag="--out")
    report = {"style": name, "size": size, "gatys_steps": gatys_steps, "loss_weights": weights.to_dict(),
              "style_size": style_size, "models": {v: Path(sessions[v].path).name for v in sessions},
              "sha256": {v: file_sha256(sessions[v].path) for v in sessions},
              "photos": rows, **summarise(rows, methods)}
    atomic_write_bytes(out / "quality.json", json.dumps(report, indent=2).encode())
    return report


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="style name as shipped in weights/")
    p.add_argument("--style-image", required=True, metavar="IMAGE", help="the painting the style was trained on")
    p.add_argument("--photos", required=True, metavar="DIR", help="folder of held-out photos (not used in training)")
    p.add_argument("--out", default=None, metavar="DIR", help="report folder (default: weights/reports/NAME)")
    p.add_argument("--size", type=int_at_least(MIN_SIZE, MAX_SIZE), default=512, metavar="PIXELS",
                   help=f"long side of the photos ({MIN_SIZE}..{MAX_SIZE})")
    p.add_argument("--limit", type=positive_int, default=10, metavar="N",
                   help="at most this many photos (sorted by name)")
    p.add_argument("--gatys-steps", type=non_negative_int, default=300, metavar="N",
                   help="L-BFGS steps of the reference (0: no Gatys)")
    p.add_argument("--weights-dir", default=None, metavar="DIR", help="folder of style models (default: weights/)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="device of the losses and of Gatys")
    p.add_argument("--vgg-weights", default=None, metavar="FILE",
                   help="local VGG-16 features state dict (default: $STYLECAM_VGG16, else torchvision's download)")
    p.add_argument("--style-weight", type=positive_float, default=None,
                   help="style weight of the losses (default: the shipped model's training setting)")
    p.add_argument("--style-size", type=int_at_least(MIN_SIZE, MAX_SIZE), default=None, metavar="PIXELS",
                   help="long side of the painting for the style loss (default: the model's training setting)")
    p.add_argument("--compare", action="append", default=[], metavar="LABEL=MODEL.onnx",
                   help="also measure this model (repeatable), e.g. lite-v1=old/wave.lite.onnx")


def parse_compare(items: list[str]) -> dict[str, str]:
    """["lite-v1=old.onnx", ...] -> {"lite-v1": "old.onnx"}; UserError for a malformed item."""
    out = {}
    for item in items:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            raise UserError(f"--compare {item!r} is not LABEL=MODEL.onnx", "e.g. --compare lite-v1=old/wave.lite.onnx")
        out[label] = path
    return out


def run(args: argparse.Namespace) -> int:
    out = Path(args.out or Path(args.weights_dir or "weights") / "reports" / args.name)
    report = build_report(args.name, args.style_image, list_photos(args.photos, args.limit), out, size=args.size,
                          gatys_steps=args.gatys_steps, weights_dir=args.weights_dir, vgg_weights=args.vgg_weights,
                          device=args.device, compare=parse_compare(args.compare), style_weight=args.style_weight,
                          style_size=args.style_size)
    for method, values in report["mean"].items():
        if method == "original":
            continue
        ratio = report["ratio_to_gatys"].get(method)
        print(f"{method:5s} content {values['content']:.4g} style {values['style']:.4g} total {values['total']:.4g}"
              + (f"  ratio to Gatys {ratio:.2f}" if ratio is not None else ""))
    print(f"stylecam-train: wrote {out / 'quality.json'} and {out / 'sheet.jpg'}")
    return 0
