"""Measuring for `stylecam study`: a style applied again and again, every step measured.

A pass function maps float32 RGB (1, 3, H, W) 0..255 to the same, clamped (one pass of a style
model). The metrics come from ``stylecam.metrics`` (definitions in docs/study.md); the VGG-16
relu2_2 distances use the features model shipped in weights/features/.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from stylecam import contract, imageops, metrics
from stylecam.errors import UserError
from stylecam.styles import shipped_weights_dir

#: float32 RGB (1, 3, H, W) 0..255 -> same shape, clamped to 0..255
PassFn = Callable[[np.ndarray], np.ndarray]

PADDING_CHOICES = ("reflect", "zero", "replicate", "prepad")   # the modes a style can be studied in
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
CLASSIFIER_K = 1000  # labels asked of the classifier: all of them, so p_original is never cut off
PROFILE_DEPTH = 48  # rings (px from the edge) in the border profiles
CHAIN_COMPARISONS = (  # (label, first, second) over the frames A, B, AB (= A then B), BA
    ("A->B vs B", "AB", "B"), ("B->A vs A", "BA", "A"), ("A->B vs B->A", "AB", "BA"),
    ("A vs B", "A", "B"), ("B vs A", "B", "A"), ("A->B vs A", "AB", "A"), ("B->A vs B", "BA", "B"),
)  # "A vs B" is the baseline of "A->B vs B", "B vs A" that of "B->A vs A" (the VGG distance is relative to the second)

# =========================================================================== the VGG features model

VGG_FILE = Path("features") / "vgg16_relu2_2.onnx"   # in the shipped weights folder
CACHED_VGG_PATH = Path("~/.cache/stylecam/vgg16_relu2_2.onnx")   # where `stylecam-train export-vgg` writes
VGG_HINT = ("make it once with `stylecam-train export-vgg -o PATH` (needs PyTorch and the VGG-16 weights), "
            "pass --vgg-onnx PATH, or leave the VGG distance out with --no-vgg")


def shipped_vgg_path() -> Path:
    """weights/features/vgg16_relu2_2.onnx of the checkout or of the installation (may be missing)."""
    return shipped_weights_dir() / VGG_FILE


def find_vgg_model(path: str | None) -> Path:
    """The VGG-16 relu2_2 ONNX to use: ``path`` (must exist), else the shipped one, else the one
    `stylecam-train export-vgg` wrote to CACHED_VGG_PATH. UserError naming that command otherwise."""
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise UserError(f"VGG features model not found: {p}", VGG_HINT)
        return p
    for p in (shipped_vgg_path(), CACHED_VGG_PATH.expanduser()):
        if p.is_file():
            return p
    raise UserError(f"no VGG features model at {shipped_vgg_path()} or {CACHED_VGG_PATH}", VGG_HINT)


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


# =========================================================================== measuring

def _hwc(x: np.ndarray) -> np.ndarray:
    """float32 RGB (1, 3, H, W) -> float32 RGB (H, W, 3) view."""
    return x[0].transpose(1, 2, 0)


def reference_pass(apply: PassFn, x: np.ndarray, margin: int) -> np.ndarray:
    """crop(f(reflect_pad(x, M)), M) on float32 RGB (1, 3, H, W): the pass with the border M px away."""
    pads = (margin,) * 4
    return np.ascontiguousarray(imageops.crop(apply(imageops.reflect_pad(x, pads)), pads))


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
        row.update(metrics.color_stats(cur))
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


# =========================================================================== summaries

def nanmean_rows(arrays: Sequence[np.ndarray]) -> np.ndarray:
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
