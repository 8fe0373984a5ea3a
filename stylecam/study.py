"""`stylecam study`: what repeated and chained filtering does to an image, measured and shown.

For every style, padding mode and image the image is passed through the style N times
(float32 between passes, as ``--repeat`` does) and every step is measured with
``stylecam.metrics`` (definitions in docs/study.md). Writes into OUTDIR:

  metrics.csv / metrics.json   one row per image, style, padding mode and step (0 = original)
  summary.csv                  the same metrics averaged over the images
  chains.csv                   with --chain-pairs: A, B, A->B, B->A compared with each other
  sheets/STYLE__IMAGE.png      passes 0..N, one row per padding mode
  sheets/STYLE__IMAGE__border.png  where each padding mode differs from the padded-canvas reference
  chains/A__B__IMAGE.png       original, A, B, A->B, B->A, |A->B - B|
  plots/METRIC.png, plots/overview.png   each metric against the pass number

Padding modes: reflect, zero, replicate = the same trained weights exported with that padding in
every convolution (weights/padding/); prepad = the shipped model with the frame reflect-padded
by --prepad pixels before each pass and cropped after.
"""
from __future__ import annotations

import argparse
import csv
import glob
import io
import itertools
import json
import math
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from stylecam import argtypes, contract, fileout, imageops, limits, metrics
from stylecam.cli import MAX_SIZE, long_side
from stylecam.errors import InputRefused, UserError
from stylecam.folders import make_dirs
from stylecam.styles import find_classifier


PADDING_CHOICES = ("reflect", "zero", "replicate", "prepad")
MAX_CELL_WIDTH = 1024  # px; wider cells only make the sheets huge
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
DEFAULT_VGG_PATH = Path("~/.cache/stylecam/vgg16_relu2_2.onnx")
VGG_HINT = ("make it once with `stylecam-train export-vgg -o PATH` (needs PyTorch and the VGG-16 weights), "
            "pass --vgg-onnx PATH, or leave the VGG distance out with --no-vgg")

#: float32 RGB (1, 3, H, W) 0..255 -> same shape, clamped to 0..255
PassFn = Callable[[np.ndarray], np.ndarray]

#: per-step columns of metrics.csv, in order (identity columns first)
ID_COLUMNS = ("image", "style", "padding", "variant", "step")
METRIC_COLUMNS = (
    "border_index", "border_band", "border_interior",
    "border_index_cum", "border_band_cum", "border_interior_cum",
    "mad_original", "mad_previous", "ssim_original", "ssim_previous", "vgg_original", "vgg_previous",
    "hist_original", "fixed_point_distance",
    "mean_r", "mean_g", "mean_b", "luma", "contrast", "saturation",
    "agree", "p_original", "top1",
)
#: metric -> (axis label, plotted from step 0?)
PLOTTED = {
    "border_index": ("border-artifact index, pass n (band / interior)", False),
    "border_band": ("border band mean |y - r|, pass n (0..255)", False),
    "border_index_cum": ("border-artifact index after n passes", False),
    "border_band_cum": ("border band mean |y_n - R_n| after n passes (0..255)", False),
    "ssim_original": ("SSIM to the original", True),
    "ssim_previous": ("SSIM to the previous step", False),
    "vgg_original": ("VGG relu2_2 distance to the original", True),
    "vgg_previous": ("VGG relu2_2 distance to the previous step", False),
    "mad_original": ("mean |x_n - x_0| (0..255)", True),
    "hist_original": ("colour-histogram distance to the original (0..1)", True),
    "fixed_point_distance": ("fixed-point distance mean |x_n+1 - x_n| (0..255)", True),
    "saturation": ("mean saturation (0..1)", True),
    "luma": ("mean luma (0..255)", True),
    "contrast": ("luma standard deviation (0..255)", True),
    "agree": ("classifier top-1 agreement with the original", True),
    "p_original": ("probability of the original's top-1 label", True),
}
CLASSIFIER_K = 1000  # labels asked of the classifier: all of them, so p_original is never cut off
PROFILE_DEPTH = 48  # rings (px from the edge) in the border profiles
OVERVIEW = ("border_band_cum", "fixed_point_distance", "ssim_original", "vgg_original",
            "hist_original", "saturation")
CHAIN_COMPARISONS = (  # (label, first, second) over the frames A, B, AB (= A then B), BA
    ("A->B vs B", "AB", "B"), ("B->A vs A", "BA", "A"), ("A->B vs B->A", "AB", "BA"),
    ("A vs B", "A", "B"), ("B vs A", "B", "A"), ("A->B vs A", "AB", "A"), ("B->A vs B", "BA", "B"),
)  # "A vs B" is the baseline of "A->B vs B", "B vs A" that of "B->A vs A" (the VGG distance is relative to the second)


@dataclass(frozen=True)
class StudyConfig:
    images: tuple[str, ...]                   # image files, folders or globs
    out: str = "study"                         # output folder
    styles: tuple[str, ...] = ()               # names or .onnx paths; () = every style in the weights folder
    repeat: int = 10                           # passes per style
    paddings: tuple[str, ...] = ("reflect",)   # subset of PADDING_CHOICES
    prepad: int = 16                           # pixels of reflect padding per side for the prepad mode
    margin: int = metrics.DEFAULT_MARGIN       # M: margin of the reference canvas (multiple of 4)
    band: int = metrics.DEFAULT_BAND           # k: width of the border band
    size: int = 384                            # long side the images are resized to (sides multiples of 4)
    variant: str | None = None                 # full or lite; None = full where a style has one, else lite
    chain_pairs: bool = False                  # also study A->B and B->A for every pair of styles
    classifier: str | None = None              # classifier ONNX for top-1 agreement
    vgg_onnx: str | None = None                # VGG-16 relu2_2 ONNX (default ~/.cache/stylecam/...)
    vgg: bool = True                           # compute the VGG distances
    weights_dir: str | None = None             # style models folder (default: weights/)
    device: str = "auto"                       # auto | cpu | cuda | tensorrt
    cell_width: int = 160                      # width of one picture in the contact sheets
    fixed_point_tol: float = 0.5               # fixed point: one more pass changes < tol (0..255)
    max_pixels: int = limits.DEFAULT_MAX_PIXELS  # images with more pixels (width x height) are refused
    progress: bool = True                      # tqdm progress bar

    def check(self) -> None:
        """Raise UserError for values that cannot work."""
        if not 1 <= self.repeat <= limits.MAX_REPEAT:
            raise UserError(f"--repeat must be within 1..{limits.MAX_REPEAT}, got {self.repeat}", "e.g. --repeat 10")
        bad = [p for p in self.paddings if p not in PADDING_CHOICES]
        if bad or not self.paddings:
            raise UserError(f"unknown padding mode {bad[0] if bad else '(none)'!r}",
                            f"use a comma list of {', '.join(PADDING_CHOICES)}")
        if self.margin <= 0 or self.margin % contract.MULTIPLE_OF:
            raise UserError(f"--margin must be a positive multiple of {contract.MULTIPLE_OF}, got {self.margin}",
                            "e.g. --margin 32")
        if self.band < 1:
            raise UserError(f"--band must be ≥ 1, got {self.band}", "e.g. --band 8")
        if self.prepad < 0:
            raise UserError(f"--prepad must be ≥ 0, got {self.prepad}", "e.g. --prepad 16")
        if self.size < 4 * self.band + 16:
            raise UserError(f"--size {self.size} is too small for a border band of {self.band} px",
                            f"use --size {4 * self.band + 16} or more")
        if self.size > MAX_SIZE:
            raise UserError(f"--size must be ≤ {MAX_SIZE}, got {self.size}", "e.g. --size 384")
        if not 32 <= self.cell_width <= MAX_CELL_WIDTH:
            raise UserError(f"--cell-width must be within 32..{MAX_CELL_WIDTH}, got {self.cell_width}",
                            "e.g. --cell-width 160")
        if not 0 <= self.fixed_point_tol <= 255:
            raise UserError(f"--fixed-point-tol must be within 0..255, got {self.fixed_point_tol}",
                            "e.g. --fixed-point-tol 0.5")
        if self.variant is not None and self.variant not in contract.VARIANTS:
            raise UserError(f"unknown variant {self.variant!r}", f"use one of {', '.join(contract.VARIANTS)}")


# =========================================================================== inputs

def find_images(specs: Sequence[str]) -> list[Path]:
    """Files, folders (their images, sorted) and globs -> image paths, each once, in order."""
    from stylecam.sources import special_file

    found: list[Path] = []
    for spec in specs:
        p = Path(spec).expanduser()
        if p.is_dir():
            found += sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_EXTENSIONS and not q.is_dir())
        elif p.is_file():
            found.append(p)
        elif special_file(p):
            raise UserError(f"{spec} is {special_file(p)}, not a regular file", "give image files, folders or quoted globs")
        elif any(ch in spec for ch in "*?["):
            found += sorted(Path(q) for q in glob.glob(spec) if Path(q).suffix.lower() in IMAGE_EXTENSIONS)
        else:
            raise UserError(f"image not found: {spec}", "give image files, folders or quoted globs")
    unique = list(dict.fromkeys(found))
    if not unique:
        raise UserError(f"no images found in {', '.join(specs)}",
                        f"give image files ({', '.join(IMAGE_EXTENSIONS)}), folders or quoted globs")
    return unique


def fit_to_study_size(frame: np.ndarray, long_side: int) -> np.ndarray:
    """uint8 BGR (H, W, 3) -> uint8 BGR resized so the long side is about ``long_side`` and both
    sides are multiples of 4 (so the runtime's pad-to-4 does not add its own border)."""
    h, w = frame.shape[:2]
    scale = long_side / max(h, w)
    m = contract.MULTIPLE_OF
    nh, nw = max(m, round(h * scale / m) * m), max(m, round(w * scale / m) * m)
    return imageops.resize_to(frame, nh, nw)


def load_images(paths: Sequence[Path], long_side: int, unreadable: list[str] | None = None,
                max_pixels: int | None = limits.DEFAULT_MAX_PIXELS) -> list[tuple[str, np.ndarray]]:
    """(name, uint8 BGR frame) for each readable image; unreadable ones, and those of more than
    ``max_pixels`` pixels (checked in the header, before decoding), are reported, skipped and
    appended to ``unreadable`` when given. A single image that is refused raises InputRefused."""
    from stylecam.sources import SourceError, read_image

    out, names = [], set()
    for path in paths:
        try:
            frame = read_image(path, max_pixels)
        except (SourceError, InputRefused) as err:
            if isinstance(err, InputRefused) and len(paths) == 1:
                raise
            print(f"stylecam: warning: skipped {path}: {err}" if isinstance(err, InputRefused) else
                  f"stylecam: warning: cannot read image {path}, skipped", file=sys.stderr)
            if unreadable is not None:
                unreadable.append(str(path))
            continue
        name = path.stem
        while name in names:
            name += "_"
        names.add(name)
        out.append((name, fit_to_study_size(frame, long_side)))
    if not out:
        raise UserError("none of the images could be read", "check that they are JPEG/PNG image files")
    return out


# =========================================================================== models

@dataclass
class StyleRun:
    """One style in one padding mode, ready to run."""
    style: str
    padding: str          # reflect | zero | replicate | prepad
    variant: str
    path: str
    prepad: int
    apply: PassFn = field(repr=False)
    reference: PassFn | None = field(default=None, repr=False)   # the same model without prepad (None: apply)


def style_variant(spec: str, cfg: StudyConfig, registry) -> str:
    """The variant studied for ``spec``: cfg.variant (None: full), or the other one when the style has only that."""
    wanted = cfg.variant or "full"
    try:
        return registry.resolve(spec, variant=wanted).variant
    except UserError:
        return wanted


def make_style_run(spec: str, mode: str, variant: str, cfg: StudyConfig, registry) -> StyleRun:
    """Build the pass function of style ``spec`` (name or path) in padding ``mode`` and ``variant``.

    A model file is used as is: it can be studied in its own padding mode and in prepad only.
    Raises UserError when no model of that variant exists for that padding mode.
    """
    from stylecam.pipeline import Stylizer  # late: the study's pure parts need no onnxruntime
    from stylecam.styles import is_path_like

    padding = "reflect" if mode == "prepad" else mode
    if is_path_like(spec):
        entry = registry.resolve(spec, variant=variant)
        if mode != "prepad" and entry.padding != padding:
            raise UserError(f"{spec} is a {entry.padding}-padding model; a model file is used as is",
                            f"study it with --padding {entry.padding} or prepad, or give --styles {entry.name} "
                            f"to use the weights folder's {padding}-padding model")
    else:
        entry = registry.find(spec, variant=variant, padding=padding)
    if entry.variant != variant:
        raise UserError(f"style {entry.name!r} has no {variant} {padding}-padding model",
                        f"export one with `stylecam-train export weights/{entry.name}.{variant}.onnx -o weights/padding/{entry.name}.{variant}."
                        f"{padding}.onnx --padding {padding}`")
    prepad = cfg.prepad if mode == "prepad" else 0
    stylizer = Stylizer(styles=[str(entry.path)], repeat=1, device=cfg.device, variant=entry.variant,
                        prepad=prepad, padding=entry.padding, registry=registry)
    plain = None
    if prepad:  # the reference canvas of every mode is made with the model alone, without the prepad
        plain = Stylizer(styles=[str(entry.path)], repeat=1, device=cfg.device, variant=entry.variant,
                         prepad=0, padding=entry.padding, registry=registry).run_float
    return StyleRun(style=entry.name, padding=mode, variant=entry.variant, path=str(entry.path),
                    prepad=prepad, apply=stylizer.run_float, reference=plain)


def resolve_vgg_path(path: str | None, allow_build: bool = True) -> Path:
    """The VGG-16 relu2_2 ONNX to use: ``path`` (must exist), else the cache file, built if missing.

    Building needs PyTorch (trainer/export_vgg.py); without it raise UserError saying how to make it.
    """
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise UserError(f"VGG features model not found: {p}", VGG_HINT)
        return p
    p = DEFAULT_VGG_PATH.expanduser()
    if p.is_file():
        return p
    if allow_build:
        try:
            import torch  # noqa: F401  (only to know whether the trainer can run here)
        except ImportError:
            pass
        else:
            from trainer.export_vgg import export_vgg
            print(f"stylecam: building the VGG-16 relu2_2 features model at {p} (once)", file=sys.stderr)
            export_vgg(p)
            return p
    raise UserError(f"no VGG features model at {p} and PyTorch is not installed to build it", VGG_HINT)


def check_vgg_file(path: str | Path) -> None:
    """Raise UserError unless ``path`` is a features model (metadata stylecam.kind = features)."""
    from stylecam.styles import read_onnx_metadata

    meta = read_onnx_metadata(path)
    kind = meta.get(contract.KEY_KIND)
    if kind == "features":
        return
    if kind == "style":
        what = (f"a style model ({meta.get(contract.KEY_NAME, '?')}, {meta.get(contract.KEY_VARIANT, '?')}, "
                f"{meta.get(contract.KEY_PADDING, '?')} padding)")
    elif kind == "classifier":
        what = f"a classifier model ({meta.get(contract.KEY_NAME, '?')})"
    elif kind is None:
        what = "an ONNX model without stylecam.kind metadata"
    else:
        what = f"a {kind!r} model"
    raise UserError(f"{path} is {what}, not a VGG features model (stylecam.kind=features)", VGG_HINT)


class VggFeatures:
    """VGG-16 relu2_2 features: float32 RGB (1, 3, H, W) 0..255 -> float32 (1, 128, H/2, W/2).

    Raises UserError when ``path`` is not a features model (e.g. a style model)."""

    def __init__(self, path: str | Path, device: str = "auto"):
        from stylecam.session import load_model
        check_vgg_file(path)
        self.model = load_model(str(path), device=device)
        self.path = str(path)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.model.run(np.ascontiguousarray(x, dtype=np.float32))


def load_classifier(path: str, device: str):
    """A stylecam.classify classifier (top_k on uint8 BGR frames)."""
    from stylecam.classify import load_classifier as _load
    return _load(path, device)


# =========================================================================== measuring

def _hwc(x: np.ndarray) -> np.ndarray:
    """float32 RGB (1, 3, H, W) -> float32 RGB (H, W, 3) view."""
    return x[0].transpose(1, 2, 0)


def _pad_nchw(x: np.ndarray, margin: int) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0), (margin, margin), (margin, margin)), mode="reflect")


def _crop_nchw(x: np.ndarray, margin: int) -> np.ndarray:
    return x[..., margin:-margin, margin:-margin]


def reference_pass(apply: PassFn, x: np.ndarray, margin: int) -> np.ndarray:
    """crop(f(reflect_pad(x, M)), M) on float32 RGB (1, 3, H, W): the pass with the border M px away."""
    return np.ascontiguousarray(_crop_nchw(apply(_pad_nchw(x, margin)), margin))


def measure_sequence(apply: PassFn, x0: np.ndarray, repeat: int, margin: int = metrics.DEFAULT_MARGIN,
                     band: int = metrics.DEFAULT_BAND, features: Callable | None = None,
                     classifier=None, reference: PassFn | None = None,
                     ) -> tuple[list[dict], list[np.ndarray], dict[str, np.ndarray]]:
    """Pass ``x0`` through ``apply`` ``repeat`` times and measure every step.

    apply: float32 RGB (1, 3, H, W) 0..255 -> same (one pass, clamped). x0: the original, same layout.
    reference: the pass that builds the reference canvas (default ``apply``); the prepad mode gives
    the model without its prepad, so every mode is measured against the same reference.
    features: optional VGG features function on the same layout. classifier: optional, with
    top_k(uint8 BGR frame, k).
    Returns (rows, frames, maps): rows[n] = metrics of step n (0 = original); frames[n] = uint8 BGR
    (H, W, 3) of step n; maps = {"first": d of pass 1, "cumulative": d after the last pass}, float
    (H, W) in 0..255 units.
    """
    x0 = np.ascontiguousarray(x0, dtype=np.float32)
    states, cum_refs, rows = [x0], [x0], []
    maps: dict[str, np.ndarray] = {}
    for n in range(1, repeat + 1):
        prev = states[-1]
        y = np.ascontiguousarray(apply(prev), dtype=np.float32)
        ref = reference_pass(reference or apply, prev, margin)
        cum_ref = reference_pass(reference or apply, cum_refs[-1], margin)
        states.append(y)
        cum_refs.append(cum_ref)
        per_pass = metrics.border_artifact(_hwc(y), _hwc(ref), band=band)
        cumulative = metrics.border_artifact(_hwc(y), _hwc(cum_ref), band=band)
        rows.append({"border_index": per_pass["index"], "border_band": per_pass["band"],
                     "border_interior": per_pass["interior"], "border_index_cum": cumulative["index"],
                     "border_band_cum": cumulative["band"], "border_interior_cum": cumulative["interior"]})
        if n == 1:
            maps["first"] = np.abs(_hwc(y) - _hwc(ref)).mean(axis=2)
        if n == repeat:
            maps["cumulative"] = np.abs(_hwc(y) - _hwc(cum_ref)).mean(axis=2)
    nan = float("nan")
    rows.insert(0, {"border_index": nan, "border_band": nan, "border_interior": nan,
                    "border_index_cum": nan, "border_band_cum": nan, "border_interior_cum": nan})

    feats = [features(s) for s in states] if features is not None else None
    frames = [imageops.nchw_to_bgr(s[0]) for s in states]
    ref_top = classifier.top_k(frames[0], CLASSIFIER_K) if classifier is not None else None
    for n, row in enumerate(rows):
        cur = _hwc(states[n])
        prev = _hwc(states[n - 1]) if n else None
        row["step"] = n
        row["mad_original"] = metrics.mean_abs_diff(cur, _hwc(x0))
        row["mad_previous"] = metrics.mean_abs_diff(cur, prev) if n else nan
        row["ssim_original"] = metrics.ssim(cur, _hwc(x0))
        row["ssim_previous"] = metrics.ssim(cur, prev) if n else nan
        row["vgg_original"] = metrics.feature_distance(feats[n], feats[0]) if feats else nan
        row["vgg_previous"] = metrics.feature_distance(feats[n], feats[n - 1]) if feats and n else nan
        row["hist_original"] = metrics.histogram_distance(cur, _hwc(x0))
        row["fixed_point_distance"] = (metrics.fixed_point_distance(cur, _hwc(states[n + 1]))
                                       if n < repeat else nan)
        row.update(metrics.colour_stats(cur))
        if classifier is not None:
            top = classifier.top_k(frames[n], CLASSIFIER_K)
            row["top1"] = top[0][0]
            row["agree"] = metrics.classifier_agreement([ref_top[0][0]], [top[0][0]])
            row["p_original"] = metrics.probability_of(ref_top[0][0], top)
        else:
            row["top1"], row["agree"], row["p_original"] = "", nan, nan
    return rows, frames, maps


def measure_chain(apply_a: PassFn, apply_b: PassFn, x0: np.ndarray,
                  features: Callable | None = None) -> tuple[list[dict], dict[str, np.ndarray]]:
    """A(x), B(x), B(A(x)) ("A->B") and A(B(x)) ("B->A") compared pairwise (CHAIN_COMPARISONS).

    Layout as in measure_sequence. Returns (rows, frames) with rows
    {comparison, ssim, vgg, mad, hist} and frames {"original", "A", "B", "AB", "BA"} as uint8 BGR.
    """
    x0 = np.ascontiguousarray(x0, dtype=np.float32)
    a = apply_a(x0)
    b = apply_b(x0)
    states = {"A": a, "B": b, "AB": apply_b(a), "BA": apply_a(b)}
    feats = {k: features(v) for k, v in states.items()} if features is not None else None
    rows = []
    for label, p, q in CHAIN_COMPARISONS:
        hp, hq = _hwc(states[p]), _hwc(states[q])
        rows.append({"comparison": label, "ssim": metrics.ssim(hp, hq),
                     "vgg": metrics.feature_distance(feats[p], feats[q]) if feats else float("nan"),
                     "mad": metrics.mean_abs_diff(hp, hq), "hist": metrics.histogram_distance(hp, hq)})
    frames = {"original": imageops.nchw_to_bgr(x0[0])}
    frames.update({k: imageops.nchw_to_bgr(v[0]) for k, v in states.items()})
    return rows, frames


def _nanmean_rows(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Element-wise mean of equal-length arrays ignoring NaN; NaN where every entry is NaN."""
    stack = np.stack(arrays)
    counts = (~np.isnan(stack)).sum(axis=0)
    return np.where(counts > 0, np.nansum(stack, axis=0) / np.maximum(counts, 1), np.nan)


def summarise(rows: Sequence[dict]) -> list[dict]:
    """Mean of every numeric metric over the images, per (style, padding, variant, step); NaN-aware."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["style"], r["padding"], r["variant"], r["step"]), []).append(r)
    out = []
    for (style, padding, variant, step), members in groups.items():
        s = {"style": style, "padding": padding, "variant": variant, "step": step, "images": len(members)}
        for col in METRIC_COLUMNS:
            if col == "top1":
                continue
            values = [m[col] for m in members if isinstance(m.get(col), (int, float)) and not math.isnan(m[col])]
            s[col] = float(np.mean(values)) if values else float("nan")
        out.append(s)
    return out


def fixed_points(summary: Sequence[dict], tol: float) -> list[dict]:
    """Per (style, padding): first step n ≥ 1 whose mean fixed-point distance is ≤ tol (None = not reached)."""
    out = []
    keys = list(dict.fromkeys((r["style"], r["padding"], r["variant"]) for r in summary))
    for style, padding, variant in keys:
        series = sorted((r for r in summary if (r["style"], r["padding"], r["variant"]) == (style, padding, variant)),
                        key=lambda r: r["step"])
        dists = [r["fixed_point_distance"] for r in series if r["step"] >= 1]
        last = [r for r in series if not math.isnan(r["fixed_point_distance"])]
        out.append({"style": style, "padding": padding, "variant": variant, "tol": tol,
                    "fixed_point_step": metrics.fixed_point_step(dists, tol),
                    "last_fixed_point_distance": last[-1]["fixed_point_distance"] if last else None,
                    "final_border_band_cum": series[-1]["border_band_cum"],
                    "final_ssim_original": series[-1]["ssim_original"],
                    "final_vgg_original": series[-1]["vgg_original"]})
    return out


# =========================================================================== writing

def _atomic_write_bytes(path: Path, data: bytes) -> None:
    make_dirs(path.parent)
    fileout.atomic_write_bytes(path, data)


def write_png(path: Path, frame: np.ndarray) -> None:
    """uint8 BGR (H, W, 3) -> PNG file, atomically."""
    ok, buf = cv2.imencode(".png", frame, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise UserError(f"cannot encode {path}", "report the bug")
    _atomic_write_bytes(path, buf.tobytes())


def _clean(value):
    """JSON-safe value: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json(path: Path, data) -> None:
    _atomic_write_bytes(path, (json.dumps(_clean(data), indent=1) + "\n").encode())


def write_csv(path: Path, rows: Sequence[dict], columns: Sequence[str]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c, "")
            if isinstance(v, float):
                v = "" if math.isnan(v) else f"{v:.6g}"
            cells.append(v)
        w.writerow(cells)
    _atomic_write_bytes(path, buf.getvalue().encode())


def heatmap(d: np.ndarray, vmax: float = 32.0) -> np.ndarray:
    """float (H, W) 0..255 differences -> uint8 BGR (H, W, 3) inferno colours, saturating at vmax."""
    scaled = np.clip(d / vmax * 255.0, 0, 255).astype(np.uint8)
    return cv2.applyColorMap(scaled, cv2.COLORMAP_INFERNO)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def sequence_sheet(rows_by_mode: dict[str, list[np.ndarray]], cell_width: int) -> np.ndarray:
    """{padding: [frame step 0..N]} -> one uint8 BGR sheet, a row per padding mode."""
    items = [(f"{mode} {n}" if n else f"{mode} original", frame)
             for mode, frames in rows_by_mode.items() for n, frame in enumerate(frames)]
    return imageops.contact_sheet(items, columns=len(next(iter(rows_by_mode.values()))), cell_width=cell_width)


def border_sheet(maps_by_mode: dict[str, dict[str, np.ndarray]], repeat: int, cell_width: int,
                 vmax: float = 32.0) -> np.ndarray:
    """Heat maps of |y - reference| per padding mode: top row pass 1, bottom row after ``repeat`` passes.

    Colours run from black (0) to pale yellow (``vmax`` or more, 0..255 units).
    """
    items = []
    for key, title in (("first", "pass 1"), ("cumulative", f"after {repeat}")):
        for mode, maps in maps_by_mode.items():
            items.append((f"{mode} {title}", heatmap(maps[key], vmax)))
    return imageops.contact_sheet(items, columns=len(maps_by_mode), cell_width=cell_width)


def chain_sheet(frames: dict[str, np.ndarray], a: str, b: str, cell_width: int) -> np.ndarray:
    """Original, A, B / A->B, B->A, |A->B - B| (x4) as one uint8 BGR sheet."""
    diff = np.abs(frames["AB"].astype(np.int16) - frames["B"].astype(np.int16)).mean(axis=2)
    items = [("original", frames["original"]), (a, frames["A"]), (b, frames["B"]),
             (f"{a} -> {b}", frames["AB"]), (f"{b} -> {a}", frames["BA"]),
             (f"|{a}->{b} - {b}|", heatmap(diff, 64.0))]
    return imageops.contact_sheet(items, columns=3, cell_width=cell_width)


def plot_metrics(summary: Sequence[dict], out_dir: Path, repeat: int) -> list[Path]:
    """One PNG per metric in PLOTTED (those with values) plus overview.png; returns the paths."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    keys = list(dict.fromkeys((r["style"], r["padding"]) for r in summary))
    styles = list(dict.fromkeys(k[0] for k in keys))
    colours = {s: plt.get_cmap("tab10")(i % 10) for i, s in enumerate(styles)}
    dashes = {p: d for p, d in zip(PADDING_CHOICES, ("-", "--", ":", "-."))}

    def draw(ax, metric: str) -> bool:
        label, from_zero = PLOTTED[metric]
        drawn = False
        for style, padding in keys:
            series = sorted((r for r in summary if (r["style"], r["padding"]) == (style, padding)
                             and (from_zero or r["step"] >= 1)), key=lambda r: r["step"])
            xs = [r["step"] for r in series if not math.isnan(r[metric])]
            ys = [r[metric] for r in series if not math.isnan(r[metric])]
            if xs:
                ax.plot(xs, ys, dashes.get(padding, "-"), color=colours[style], marker="o", markersize=3,
                        label=f"{style} / {padding}")
                drawn = True
        ax.set_xlabel("pass n")
        ax.set_title(label, fontsize=9)
        ax.set_xticks(range(0 if from_zero else 1, repeat + 1, max(1, repeat // 10)))
        ax.grid(alpha=0.3)
        return drawn

    def save(fig, path: Path) -> None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        _atomic_write_bytes(path, buf.getvalue())

    written = []
    for metric in PLOTTED:
        fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
        if draw(ax, metric):
            ax.legend(fontsize=7, ncol=2 if len(keys) > 6 else 1)
            save(fig, out_dir / f"{metric}.png")
            written.append(out_dir / f"{metric}.png")
        else:
            plt.close(fig)
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), layout="constrained")
    for ax, metric in zip(axes.ravel(), OVERVIEW):
        draw(ax, metric)
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=7)
    save(fig, out_dir / "overview.png")
    written.append(out_dir / "overview.png")
    return written


def plot_profiles(profile_rows: Sequence[dict], path: Path, repeat: int, band: int) -> Path:
    """Mean |y - reference| against the distance from the edge: pass 1 and after ``repeat`` passes."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    styles = list(dict.fromkeys(r["style"] for r in profile_rows))
    colours = {s: plt.get_cmap("tab10")(i % 10) for i, s in enumerate(styles)}
    dashes = {p: d for p, d in zip(PADDING_CHOICES, ("-", "--", ":", "-."))}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained", sharey=True)
    for ax, key, title in ((axes[0], "first", "pass 1 (per pass)"),
                           (axes[1], "cumulative", f"after {repeat} passes (cumulative)")):
        for r in profile_rows:
            ys = np.asarray(r[key], dtype=float)
            ax.plot(np.arange(ys.size), ys, dashes.get(r["padding"], "-"), color=colours[r["style"]],
                    label=f"{r['style']} / {r['padding']}")
        ax.axvspan(-0.5, band - 0.5, color="0.9", zorder=0)
        ax.set_xlabel("distance from the image edge (px); shaded: the border band")
        ax.set_title(f"mean |y - reference| (0..255), {title}", fontsize=9)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    _atomic_write_bytes(path, buf.getvalue())
    return path


# =========================================================================== the study

def _unique(values: Sequence[str], flag: str) -> tuple[str, ...]:
    """``values`` without repeats (first order kept), with a note naming the repeats dropped."""
    unique = tuple(dict.fromkeys(values))
    if len(unique) < len(values):
        twice = [v for v in unique if list(values).count(v) > 1]
        print(f"stylecam: note: {flag} lists {', '.join(twice)} more than once; each is studied once",
              file=sys.stderr)
    return unique


def run_study(cfg: StudyConfig) -> dict:
    """Run the whole study and write every file into cfg.out; returns the JSON document written.

    Unreadable images are skipped with a warning and listed under "unreadable" in the document.
    """
    from tqdm import tqdm
    from stylecam.styles import Registry

    cfg.check()
    cfg = replace(cfg, styles=_unique(cfg.styles, "--styles"), paddings=_unique(cfg.paddings, "--padding"))
    out = Path(cfg.out)
    try:
        make_dirs(out)                   # removed again, while empty, when the study fails (stylecam.folders)
    except OSError as err:
        raise UserError(f"cannot create output folder {out}: {err.strerror}", "choose another -o") from None
    unreadable: list[str] = []
    images = load_images(find_images(cfg.images), cfg.size, unreadable, cfg.max_pixels)
    small = min(min(f.shape[:2]) for _, f in images)
    if cfg.margin >= small or 2 * cfg.band >= small:
        raise UserError(f"images of {small} px are too small for --margin {cfg.margin} / --band {cfg.band}",
                        "use a larger --size or a smaller margin")
    registry = Registry(cfg.weights_dir)
    specs = list(cfg.styles) or registry.names()
    if not specs:
        raise registry.unknown("(none given)")
    from stylecam.styles import is_path_like
    for spec in specs:
        if not is_path_like(spec) and spec not in registry.names():
            raise registry.unknown(spec)

    runs: dict[tuple[str, str], StyleRun] = {}
    skipped = []
    for spec in specs:
        variant = style_variant(spec, cfg, registry)
        if cfg.variant is not None and variant != cfg.variant:
            print(f"stylecam: warning: --variant applies to styles given by name; {spec} ({variant}) is used as is"
                  if is_path_like(spec) else
                  f"stylecam: warning: {spec} has no {cfg.variant} model; studying its {variant} variant",
                  file=sys.stderr)
        for mode in cfg.paddings:
            try:
                run = make_style_run(spec, mode, variant, cfg, registry)
            except UserError as err:
                if mode in ("reflect", "prepad") and len(cfg.paddings) == 1:
                    raise
                skipped.append({"style": spec, "padding": mode, "reason": err.message})
                print(f"stylecam: warning: {spec} / {mode} skipped: {err}", file=sys.stderr)
                continue
            runs[(spec, mode)] = run
    if not runs:
        raise UserError("no style model to study", "check --styles and --padding against `stylecam --list-styles`")

    features = VggFeatures(resolve_vgg_path(cfg.vgg_onnx), cfg.device) if cfg.vgg else None
    classifier = (load_classifier(str(find_classifier(cfg.classifier, cfg.weights_dir)), cfg.device)
                  if cfg.classifier else None)
    pairs = list(itertools.combinations(specs, 2)) if cfg.chain_pairs else []
    chain_mode = cfg.paddings[0]
    if cfg.chain_pairs and not pairs:
        print("stylecam: warning: --chain-pairs needs at least two styles; chains.csv will have no rows",
              file=sys.stderr)
    for a_spec, b_spec in pairs:
        if (a_spec, chain_mode) not in runs or (b_spec, chain_mode) not in runs:
            missing = a_spec if (a_spec, chain_mode) not in runs else b_spec
            print(f"stylecam: warning: chain {a_spec} / {b_spec} skipped: {missing} has no {chain_mode} run",
                  file=sys.stderr)
    pairs = [(a, b) for a, b in pairs if (a, chain_mode) in runs and (b, chain_mode) in runs]
    total = len(runs) * len(images) + len(pairs) * len(images)
    bar = tqdm(total=total, desc="study", unit="run", disable=not cfg.progress, file=sys.stderr)

    rows: list[dict] = []
    profiles: dict[tuple[str, str], dict[str, list[np.ndarray]]] = {}
    written: list[Path] = []
    for spec in specs:
        modes = [m for m in cfg.paddings if (spec, m) in runs]
        for name, frame in images:
            x0 = imageops.bgr_to_nchw(frame)
            sheet_frames, sheet_maps = {}, {}
            for mode in modes:
                run = runs[(spec, mode)]
                bar.set_postfix_str(f"{run.style}/{mode}/{name}")
                seq_rows, frames, maps = measure_sequence(run.apply, x0, cfg.repeat, cfg.margin, cfg.band,
                                                          features, classifier, reference=run.reference)
                for r in seq_rows:
                    rows.append({"image": name, "style": run.style, "padding": mode, "variant": run.variant, **r})
                sheet_frames[mode], sheet_maps[mode] = frames, maps
                slot = profiles.setdefault((run.style, mode), {"first": [], "cumulative": []})
                for key in slot:
                    slot[key].append(metrics.edge_profile(maps[key], PROFILE_DEPTH))
                bar.update(1)
            if modes:
                style_name = runs[(spec, modes[0])].style
                p = out / "sheets" / f"{_safe(style_name)}__{_safe(name)}.png"
                write_png(p, sequence_sheet(sheet_frames, cfg.cell_width))
                q = out / "sheets" / f"{_safe(style_name)}__{_safe(name)}__border.png"
                write_png(q, border_sheet(sheet_maps, cfg.repeat, cfg.cell_width))
                written += [p, q]

    chain_rows: list[dict] = []
    for a_spec, b_spec in pairs:
        ra, rb = runs[(a_spec, chain_mode)], runs[(b_spec, chain_mode)]
        for name, frame in images:
            bar.set_postfix_str(f"{ra.style}->{rb.style}/{name}")
            c_rows, c_frames = measure_chain(ra.apply, rb.apply, imageops.bgr_to_nchw(frame), features)
            for r in c_rows:
                chain_rows.append({"image": name, "a": ra.style, "b": rb.style, "padding": chain_mode, **r})
            p = out / "chains" / f"{_safe(ra.style)}__{_safe(rb.style)}__{_safe(name)}.png"
            write_png(p, chain_sheet(c_frames, ra.style, rb.style, cfg.cell_width))
            written.append(p)
            bar.update(1)
    bar.close()

    summary = summarise(rows)
    columns = list(ID_COLUMNS) + list(METRIC_COLUMNS)
    write_csv(out / "metrics.csv", rows, columns)
    write_csv(out / "summary.csv", summary, ["style", "padding", "variant", "step", "images"] +
              [c for c in METRIC_COLUMNS if c != "top1"])
    written += [out / "metrics.csv", out / "summary.csv"]
    if cfg.chain_pairs:
        write_csv(out / "chains.csv", chain_rows, ["image", "a", "b", "padding", "comparison", "ssim", "vgg",
                                                    "mad", "hist"])
        written.append(out / "chains.csv")
    profile_rows = [{"style": style, "padding": mode,
                     **{key: _nanmean_rows(v).tolist() for key, v in slot.items()}}
                    for (style, mode), slot in profiles.items()]
    written += plot_metrics(summary, out / "plots", cfg.repeat)
    written.append(plot_profiles(profile_rows, out / "plots" / "border_profile.png", cfg.repeat, cfg.band))
    document = {
        "config": asdict(cfg),
        "models": [{"style": r.style, "padding": r.padding, "variant": r.variant, "path": r.path,
                    "prepad": r.prepad} for r in runs.values()],
        "skipped": skipped,
        "unreadable": unreadable,
        "vgg": features.path if features else None,
        "images": [{"name": n, "height": f.shape[0], "width": f.shape[1]} for n, f in images],
        "fixed_points": fixed_points(summary, cfg.fixed_point_tol),
        "border_profiles": profile_rows,
        "summary": summary,
        "chains": chain_rows,
        "steps": rows,
    }
    written.append(out / "metrics.json")
    document["files"] = sorted(str(p.relative_to(out)) for p in written)
    write_json(out / "metrics.json", document)
    return document


# =========================================================================== command line

def _csv_list(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


EPILOG = """examples:
  stylecam study photos/ --styles wave,muse --repeat 10 -o study/
  stylecam study photo.jpg --styles wave --padding reflect,zero,replicate,prepad --prepad 16 -o study/
  stylecam study photos/ --styles wave,muse,udnie --chain-pairs --classifier cifar10

Metric definitions: docs/study.md.
exit codes: 0 done, 1 some images could not be read (the others are studied and written),
  2 bad input, 130 interrupted."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = ("Measure and show what repeated and chained filtering does: each style is applied "
                     "--repeat times per padding mode; every step is measured (border artifacts, drift, "
                     "colour, fixed point, classifier agreement) and drawn.")
    p.epilog = EPILOG
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files, folders or quoted globs")
    p.add_argument("-o", "--output", default="study", help="output folder (default: study)")
    p.add_argument("--styles", type=_csv_list, default=(),
                   help="comma list of style names or .onnx files (default: every style found)")
    p.add_argument("--repeat", type=int, default=10,
                   help=f"passes per style, 1..{limits.MAX_REPEAT} (default: 10)")
    p.add_argument("--padding", type=_csv_list, default=("reflect",),
                   help=f"comma list of padding modes: {', '.join(PADDING_CHOICES)} (default: reflect). "
                        "zero/replicate use the same weights exported with that padding "
                        "(weights/padding/NAME.VARIANT.MODE.onnx); prepad uses the shipped model")
    p.add_argument("--prepad", type=int, default=16,
                   help="pixels of reflect padding per side in the prepad mode (default: 16)")
    p.add_argument("--margin", type=int, default=metrics.DEFAULT_MARGIN,
                   help=f"margin M of the reference canvas, a multiple of 4 (default: {metrics.DEFAULT_MARGIN})")
    p.add_argument("--band", type=int, default=metrics.DEFAULT_BAND,
                   help=f"width k of the border band in pixels (default: {metrics.DEFAULT_BAND})")
    p.add_argument("--size", type=long_side, default=384,
                   help=f"long side the images are resized to, up to {MAX_SIZE} (default: 384)")
    p.add_argument("--variant", choices=contract.VARIANTS, default=None,
                   help="model variant (default: full where a style has one, else lite)")
    p.add_argument("--chain-pairs", action="store_true", help="also compare A->B, B->A, A and B for every pair")
    p.add_argument("--classifier", metavar="MODEL", default=None,
                   help="classifier ONNX file or shipped name (cifar10, mnist, ...): measure top-1 agreement "
                        "with the original")
    p.add_argument("--vgg-onnx", metavar="PATH", default=None,
                   help=f"VGG-16 relu2_2 ONNX (default: {DEFAULT_VGG_PATH}, built with PyTorch when missing)")
    p.add_argument("--no-vgg", action="store_true", help="skip the VGG feature distances")
    p.add_argument("--weights-dir", default=None, help="folder of style models (default: weights/)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "tensorrt"),
                   help="onnxruntime device (default: auto)")
    p.add_argument("--cell-width", type=int, default=160,
                   help=f"width of one picture in the sheets, 32..{MAX_CELL_WIDTH} (default: 160)")
    p.add_argument("--fixed-point-tol", type=argtypes.float_in(0.0, 255.0), default=0.5,
                   help="fixed point: one more pass changes the image by at most this (0..255, default: 0.5)")
    p.add_argument("--max-pixels", type=argtypes.pixel_count, default=limits.DEFAULT_MAX_PIXELS, metavar="N",
                   help="refuse images of more pixels (width x height), read from their header before decoding; "
                        f"e.g. 100M (default: {limits.DEFAULT_MAX_PIXELS // 1_000_000}M)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace) -> StudyConfig:
    return StudyConfig(images=tuple(args.images), out=args.output, styles=tuple(args.styles),
                       repeat=args.repeat, paddings=tuple(args.padding), prepad=args.prepad, margin=args.margin,
                       band=args.band, size=args.size, variant=args.variant, chain_pairs=args.chain_pairs,
                       classifier=args.classifier, vgg_onnx=args.vgg_onnx, vgg=not args.no_vgg,
                       weights_dir=args.weights_dir, device=args.device, cell_width=args.cell_width,
                       fixed_point_tol=args.fixed_point_tol, progress=not args.no_progress,
                       max_pixels=args.max_pixels)


def run(args: argparse.Namespace) -> int:
    """Run the study from parsed arguments; 1 when some images could not be read, else 0."""
    doc = run_study(config_from_args(args))
    out = Path(args.output)
    print(f"wrote {len(doc['files'])} files to {out}/ ({len(doc['steps'])} step rows, "
          f"{len(doc['models'])} style/padding runs, {len(doc['images'])} images)")
    for fp in doc["fixed_points"]:
        step = fp["fixed_point_step"]
        print(f"  {fp['style']:>16} / {fp['padding']:<9} fixed point "
              f"{'at step ' + str(step) if step else 'not reached'}; "
              f"SSIM to original {fp['final_ssim_original']:.3f}; border band after {args.repeat} "
              f"{fp['final_border_band_cum']:.2f}")
    if doc["unreadable"]:
        total = len(doc["unreadable"]) + len(doc["images"])
        print(f"stylecam: {len(doc['unreadable'])} of {total} images could not be read", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m stylecam.study ...` (the same as `stylecam study ...`)."""
    parser = argparse.ArgumentParser(prog="stylecam study")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except UserError as err:
        print(f"stylecam: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("stylecam: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
