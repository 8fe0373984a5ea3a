"""Reporting for `stylecam study`: tables (CSV, JSON), contact sheets and plots, each written atomically
(the sheets by stylecam.sinks.write_image).

Frames are uint8 BGR (H, W, 3); difference maps are float (H, W) in 0..255 units.
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from stylecam import fileout, imageops
from stylecam.folders import make_dirs
from stylecam.study_measure import PADDING_CHOICES

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
    "hist_original": ("color-histogram distance to the original (0..1)", True),
    "fixed_point_distance": ("fixed-point distance mean |x_n+1 - x_n| (0..255)", True),
    "saturation": ("mean saturation (0..1)", True),
    "luma": ("mean luma (0..255)", True),
    "contrast": ("luma standard deviation (0..255)", True),
    "agree": ("classifier top-1 agreement with the original", True),
    "p_original": ("probability of the original's top-1 label", True),
}
OVERVIEW = ("border_band_cum", "fixed_point_distance", "ssim_original", "vgg_original",
            "hist_original", "saturation")


# =========================================================================== files

def _atomic_write_bytes(path: Path, data: bytes) -> None:
    make_dirs(path.parent)
    fileout.atomic_write_bytes(path, data)


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
    """One row per dict, the ``columns`` in order; floats with 6 significant digits, NaN empty."""
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


def safe_name(name: str) -> str:
    """A style or image name usable in a file name: other characters than letters, digits, -_. become _."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


# =========================================================================== sheets

def heatmap(d: np.ndarray, vmax: float = 32.0) -> np.ndarray:
    """float (H, W) 0..255 differences -> uint8 BGR (H, W, 3) inferno colors, saturating at vmax."""
    scaled = np.clip(d / vmax * 255.0, 0, 255).astype(np.uint8)
    return cv2.applyColorMap(scaled, cv2.COLORMAP_INFERNO)


def sequence_sheet(rows_by_mode: dict[str, list[np.ndarray]], cell_width: int) -> np.ndarray:
    """{padding: [frame step 0..N]} -> one uint8 BGR sheet, a row per padding mode."""
    items = [(f"{mode} {n}" if n else f"{mode} original", frame)
             for mode, frames in rows_by_mode.items() for n, frame in enumerate(frames)]
    return imageops.contact_sheet(items, columns=len(next(iter(rows_by_mode.values()))), cell_width=cell_width)


def border_sheet(maps_by_mode: dict[str, dict[str, np.ndarray]], repeat: int, cell_width: int,
                 vmax: float = 32.0) -> np.ndarray:
    """Heat maps of |y - reference| per padding mode: top row pass 1, bottom row after ``repeat`` passes.

    Colors run from black (0) to pale yellow (``vmax`` or more, 0..255 units).
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


# =========================================================================== plots

def plot_metrics(summary: Sequence[dict], out_dir: Path, repeat: int) -> list[Path]:
    """One PNG per metric in PLOTTED (those with values) plus overview.png; returns the paths."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    keys = list(dict.fromkeys((r["style"], r["padding"]) for r in summary))
    styles = list(dict.fromkeys(k[0] for k in keys))
    colors = {s: plt.get_cmap("tab10")(i % 10) for i, s in enumerate(styles)}
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
                ax.plot(xs, ys, dashes.get(padding, "-"), color=colors[style], marker="o", markersize=3,
                        label=f"{style} / {padding}")
                drawn = True
        ax.set_xlabel("pass n")
        ax.set_title(label, fontsize=9)
        ax.set_xticks(range(0 if from_zero else 1, repeat + 1, max(1, repeat // 10)))
        ax.grid(alpha=0.3)
        return drawn

    written = []
    for metric in PLOTTED:
        fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
        if draw(ax, metric):
            ax.legend(fontsize=7, ncol=2 if len(keys) > 6 else 1)
            _save_figure(fig, out_dir / f"{metric}.png")
            written.append(out_dir / f"{metric}.png")
        else:
            plt.close(fig)
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), layout="constrained")
    for ax, metric in zip(axes.ravel(), OVERVIEW):
        draw(ax, metric)
    handles, labels = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=7)
    _save_figure(fig, out_dir / "overview.png")
    written.append(out_dir / "overview.png")
    return written


def plot_profiles(profile_rows: Sequence[dict], path: Path, repeat: int, band: int) -> Path:
    """Mean |y - reference| against the distance from the edge: pass 1 and after ``repeat`` passes."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    styles = list(dict.fromkeys(r["style"] for r in profile_rows))
    colors = {s: plt.get_cmap("tab10")(i % 10) for i, s in enumerate(styles)}
    dashes = {p: d for p, d in zip(PADDING_CHOICES, ("-", "--", ":", "-."))}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained", sharey=True)
    for ax, key, title in ((axes[0], "first", "pass 1 (per pass)"),
                           (axes[1], "cumulative", f"after {repeat} passes (cumulative)")):
        for r in profile_rows:
            ys = np.asarray(r[key], dtype=float)
            ax.plot(np.arange(ys.size), ys, dashes.get(r["padding"], "-"), color=colors[r["style"]],
                    label=f"{r['style']} / {r['padding']}")
        ax.axvspan(-0.5, band - 0.5, color="0.9", zorder=0)
        ax.set_xlabel("distance from the image edge (px); shaded: the border band")
        ax.set_title(f"mean |y - reference| (0..255), {title}", fontsize=9)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    _save_figure(fig, path)
    return path


def _save_figure(fig, path: Path) -> None:
    """A matplotlib figure -> PNG file at 100 dpi, atomically; the figure is closed."""
    from matplotlib import pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    _atomic_write_bytes(path, buf.getvalue())
