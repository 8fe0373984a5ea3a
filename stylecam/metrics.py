"""Image metrics of the repeated-filtering study, pure numpy (definitions: docs/study.md).

Unless a function says otherwise, images are arrays of shape (H, W, 3), RGB channel order,
values 0..255 (uint8 or float); distances are returned as Python floats. Nothing here
runs a model: functions that need one (the border reference, VGG features, a classifier)
take its output or a callable.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

#: default width in pixels of the border band of the border-artifact index
DEFAULT_BAND = 8
#: default margin in pixels of the reflect-padded reference canvas (a multiple of 4)
DEFAULT_MARGIN = 32
#: added to denominators so that a perfectly clean interior does not divide by zero
EPS = 1e-3

# ITU-R BT.601 luma weights for R, G, B
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)


def _as_float(image: np.ndarray) -> np.ndarray:
    """(H, W, C) any numeric dtype -> float64 copy-free view where possible."""
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"expected an (H, W, C) image, got shape {image.shape}")
    return image.astype(np.float64, copy=False)


def _same_shape(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")


# --------------------------------------------------------------------------- padding

def reflect_pad(image: np.ndarray, margin: int) -> np.ndarray:
    """(H, W, C) -> (H + 2m, W + 2m, C) mirror padding without repeating the edge pixel.

    Same as numpy/OpenCV "reflect101" and torch's ReflectionPad2d. Needs margin < H and < W.
    """
    image = np.asarray(image)
    if margin == 0:
        return image
    h, w = image.shape[:2]
    if margin < 0 or margin >= h or margin >= w:
        raise ValueError(f"reflect margin {margin} must be >= 0 and smaller than the image ({h}x{w})")
    return np.pad(image, ((margin, margin), (margin, margin), (0, 0)), mode="reflect")


def crop_margin(image: np.ndarray, margin: int) -> np.ndarray:
    """(H + 2m, W + 2m, C) -> (H, W, C): undo ``reflect_pad``."""
    image = np.asarray(image)
    if margin == 0:
        return image
    return image[margin:-margin, margin:-margin]


def border_reference(stylize: Callable[[np.ndarray], np.ndarray], image: np.ndarray,
                     margin: int = DEFAULT_MARGIN) -> np.ndarray:
    """crop(f(reflect_pad(x, M)), M): the output ``stylize`` gives when x's border is M pixels away.

    stylize: (H, W, 3) -> (H, W, 3), any channel order and dtype, applied unchanged.
    """
    return crop_margin(stylize(reflect_pad(image, margin)), margin)


# --------------------------------------------------------------------------- border artifacts

def band_mask(height: int, width: int, band: int = DEFAULT_BAND) -> np.ndarray:
    """(H, W) bool: True for pixels less than ``band`` pixels from any image edge."""
    if band <= 0 or 2 * band >= min(height, width):
        raise ValueError(f"band {band} must be > 0 and leave an interior in a {height}x{width} image")
    mask = np.zeros((height, width), dtype=bool)
    mask[:band], mask[-band:], mask[:, :band], mask[:, -band:] = True, True, True, True
    return mask


def border_artifact(output: np.ndarray, reference: np.ndarray, band: int = DEFAULT_BAND,
                    eps: float = EPS) -> dict[str, float]:
    """Border-artifact measures of ``output`` against its padded-canvas ``reference``.

    d = |output - reference| averaged over channels, per pixel, in 0..255 units.
    Returns {"index": mean(d in band) / (mean(d in interior) + eps),
             "band": mean(d in band), "interior": mean(d in interior)}.
    A clean border gives index about 1 (differences spread evenly) or 0 (no difference at all);
    artifacts concentrated in the border band give an index well above 1.
    """
    out, ref = _as_float(output), _as_float(reference)
    _same_shape(out, ref)
    d = np.abs(out - ref).mean(axis=2)
    mask = band_mask(*d.shape, band=band)
    band_mean = float(d[mask].mean())
    interior_mean = float(d[~mask].mean())
    return {"index": band_mean / (interior_mean + eps), "band": band_mean, "interior": interior_mean}


def border_profile(output: np.ndarray, reference: np.ndarray, depth: int = 32) -> np.ndarray:
    """(depth,) float64: mean |output - reference| (0..255) of the pixels exactly i px from the edge.

    Pixel distance to the edge is min(row, col, H-1-row, W-1-col); index 0 is the outermost ring.
    """
    out, ref = _as_float(output), _as_float(reference)
    _same_shape(out, ref)
    return edge_profile(np.abs(out - ref).mean(axis=2), depth)


def edge_profile(d: np.ndarray, depth: int = 32) -> np.ndarray:
    """(H, W) per-pixel values -> (depth,) float64 means over the rings 0..depth-1 px from the edge.

    Rings deeper than the image has are NaN.
    """
    d = np.asarray(d, dtype=np.float64)
    h, w = d.shape
    rows = np.minimum(np.arange(h), np.arange(h)[::-1])[:, None]
    cols = np.minimum(np.arange(w), np.arange(w)[::-1])[None, :]
    dist = np.minimum(rows, cols)
    sums = np.bincount(dist.ravel(), weights=d.ravel(), minlength=depth)[:depth]
    counts = np.bincount(dist.ravel(), minlength=depth)[:depth]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


# --------------------------------------------------------------------------- distances

def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference over all pixels and channels, 0..255 units."""
    fa, fb = _as_float(a), _as_float(b)
    _same_shape(fa, fb)
    return float(np.abs(fa - fb).mean())


def fixed_point_distance(current: np.ndarray, following: np.ndarray) -> float:
    """Change made by one more pass: mean |x_{n+1} - x_n| in 0..255 units (0 at a fixed point)."""
    return mean_abs_diff(current, following)


def static_mask(previous: np.ndarray, current: np.ndarray, threshold: float = 2.0) -> np.ndarray:
    """Pixels that did not change between two consecutive input frames: bool (H, W).

    A pixel is static when none of its channels moved by more than ``threshold`` grey levels.
    """
    fa, fb = _as_float(previous), _as_float(current)
    _same_shape(fa, fb)
    return np.abs(fa - fb).max(axis=-1) <= threshold


def temporal_flicker(previous_in: np.ndarray, current_in: np.ndarray, previous_out: np.ndarray,
                     current_out: np.ndarray, threshold: float = 2.0) -> float:
    """Flicker of a stylized video: mean |out_t - out_{t-1}| over the pixels whose input stood still.

    previous_in/current_in are two consecutive input frames, previous_out/current_out the model's
    outputs for them, all (H, W, 3) 0..255 in the same channel order. Where the scene did not change
    (``static_mask``) a stable model gives the same output again; whatever it changes there is
    flicker, in grey levels (0 = none). NaN when no pixel stood still.
    """
    mask = static_mask(previous_in, current_in, threshold)
    fa, fb = _as_float(previous_out), _as_float(current_out)
    _same_shape(fa, fb)
    if fa.shape[:2] != mask.shape:
        raise ValueError(f"outputs are {fa.shape[:2]}, inputs {mask.shape}: give outputs at the input size")
    if not mask.any():
        return math.nan
    return float(np.abs(fa - fb)[mask].mean())


def fixed_point_step(distances: Sequence[float], tol: float = 0.5) -> int | None:
    """First step n (1-based) whose fixed-point distance d(x_n, x_{n+1}) is <= ``tol``, else None.

    distances[i] is the fixed-point distance of step i + 1; NaN entries are skipped.
    """
    for i, value in enumerate(distances):
        if value is not None and not math.isnan(value) and value <= tol:
            return i + 1
    return None


def _gaussian_kernel(sigma: float = 1.5, radius: int = 5) -> np.ndarray:
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _filter_valid(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable 2-D filter of (H, W, C) with a 1-D kernel, 'valid' region only."""
    from numpy.lib.stride_tricks import sliding_window_view
    n = kernel.size
    rows = sliding_window_view(image, n, axis=0) @ kernel          # (H-n+1, W, C)
    return sliding_window_view(rows, n, axis=1) @ kernel           # (H-n+1, W-n+1, C)


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Structural similarity (Wang et al. 2004) averaged over the RGB channels, -1..1 (1 = same).

    Gaussian window sigma 1.5 (11 taps), K1 = 0.01, K2 = 0.03, statistics over the 'valid'
    region (no padding), mean over pixels then over channels. Images smaller than 11 px
    on a side raise ValueError.
    """
    fa, fb = _as_float(a), _as_float(b)
    _same_shape(fa, fb)
    kernel = _gaussian_kernel()
    if min(fa.shape[:2]) < kernel.size:
        raise ValueError(f"SSIM needs images at least {kernel.size} px on a side, got {fa.shape[:2]}")
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = _filter_valid(fa, kernel), _filter_valid(fb, kernel)
    var_a = _filter_valid(fa * fa, kernel) - mu_a ** 2
    var_b = _filter_valid(fb * fb, kernel) - mu_b ** 2
    cov = _filter_valid(fa * fb, kernel) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(s.mean(axis=(0, 1)).mean())


def feature_distance(features: np.ndarray, reference: np.ndarray, eps: float = 1e-8) -> float:
    """Relative L2 distance of feature maps: ||f - f_ref|| / ||f_ref|| (0 = same features).

    features, reference: arrays of the same shape, e.g. VGG-16 relu2_2 maps (N, 128, H/2, W/2).
    Scale-free, so its values do not depend on the input resolution.
    """
    f = np.asarray(features, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if f.shape != r.shape:
        raise ValueError(f"feature maps differ in shape: {f.shape} vs {r.shape}")
    return float(np.linalg.norm(f - r) / (np.linalg.norm(r) + eps))


# --------------------------------------------------------------------------- color

def saturation(image: np.ndarray) -> np.ndarray:
    """(H, W) float64 HSV saturation 0..1: (max - min) / max over RGB, 0 where max is 0."""
    f = _as_float(image)
    hi, lo = f.max(axis=2), f.min(axis=2)
    return np.where(hi > 0, (hi - lo) / np.maximum(hi, 1e-12), 0.0)


def color_stats(image: np.ndarray) -> dict[str, float]:
    """Color statistics of an RGB image 0..255.

    mean_r, mean_g, mean_b: channel means (0..255); luma: mean BT.601 luma (0..255);
    contrast: standard deviation of luma (0..255); saturation: mean HSV saturation (0..1).
    """
    f = _as_float(image)
    if f.shape[2] != 3:
        raise ValueError(f"color statistics need 3 channels (RGB), got {f.shape[2]}")
    luma = f @ LUMA
    means = f.mean(axis=(0, 1))
    return {"mean_r": float(means[0]), "mean_g": float(means[1]), "mean_b": float(means[2]),
            "luma": float(luma.mean()), "contrast": float(luma.std()),
            "saturation": float(saturation(f).mean())}



def color_histograms(image: np.ndarray, bins: int = 32) -> np.ndarray:
    """(3, bins) float64: per-channel histograms of values 0..255, each summing to 1."""
    f = _as_float(image)
    edges = np.linspace(0.0, 256.0, bins + 1)
    hists = np.stack([np.histogram(np.clip(f[..., c], 0, 255), bins=edges)[0] for c in range(f.shape[2])])
    return hists / np.maximum(hists.sum(axis=1, keepdims=True), 1)


def histogram_distance(a: np.ndarray, b: np.ndarray, bins: int = 32) -> float:
    """Color-histogram distance 0..1: total variation 0.5 * sum|h_a - h_b| per channel, mean over channels.

    0 = same color distribution, 1 = no overlap at all. Spatial layout is ignored.
    """
    fa, fb = _as_float(a), _as_float(b)
    if fa.shape[2] != fb.shape[2]:
        raise ValueError(f"images differ in channels: {fa.shape[2]} vs {fb.shape[2]}")
    ha, hb = color_histograms(fa, bins), color_histograms(fb, bins)
    return float((0.5 * np.abs(ha - hb).sum(axis=1)).mean())


# --------------------------------------------------------------------------- classifier

def classifier_agreement(reference_labels: Sequence[str], labels: Sequence[str]) -> float:
    """Fraction 0..1 of positions where ``labels`` equals ``reference_labels`` (top-1 agreement)."""
    if len(reference_labels) != len(labels):
        raise ValueError(f"label lists differ in length: {len(reference_labels)} vs {len(labels)}")
    if not labels:
        return float("nan")
    return sum(r == x for r, x in zip(reference_labels, labels)) / len(labels)


def probability_of(label: str, top: Sequence[tuple[str, float]]) -> float:
    """Probability a top-k list [(label, prob), ...] gives ``label``; 0.0 when it is not listed."""
    for name, prob in top:
        if name == label:
            return float(prob)
    return 0.0


def grid_pattern(image: np.ndarray, period: int = 4) -> float:
    """Strength of a fixed pattern repeating every ``period`` pixels (grid/checkerboard artifacts), grey levels.

    The image's detail (grey (H, W) minus its 5x5 box mean) is averaged per phase (y mod p, x mod p);
    content averages out over the phases, a pattern tied to the pixel grid does not. Returns the
    mean |phase average|: about 0 for a clean image, the pattern's amplitude for a tiled one.
    Catches networks whose strided/shuffled layers stamp the same texture into every p x p block.
    """
    grey = _as_float(image) @ LUMA if np.asarray(image).shape[-1] == 3 else _as_float(image)[..., 0]
    padded = np.pad(grey, 2, mode="reflect")
    box = sum(padded[dy:dy + grey.shape[0], dx:dx + grey.shape[1]] for dy in range(5) for dx in range(5)) / 25.0
    detail = grey - box
    phases = [detail[i::period, j::period].mean() for i in range(period) for j in range(period)]
    return float(np.mean(np.abs(phases)))
