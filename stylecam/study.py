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

The work is split: stylecam.study_measure measures (pure, on pass functions), stylecam.study_report
writes the tables, sheets and plots; this module finds the inputs and models and runs the command.
"""
from __future__ import annotations

import argparse
import itertools
import logging
import os
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from stylecam import argtypes, contract, imageops, limits, metrics
from stylecam.config import EngineConfig
from stylecam.errors import InputRefused, UserError
from stylecam.folders import make_dirs
from stylecam.sinks import write_image
from stylecam.sources import IMAGE_EXTS, SourceError, expand_sources, read_image
from stylecam.styles import find_classifier
from stylecam.study_measure import (CACHED_VGG_PATH, ID_COLUMNS, METRIC_COLUMNS, PADDING_CHOICES, PROFILE_DEPTH,
                                    VGG_FILE, PassFn, VggFeatures, find_vgg_model, fixed_points, measure_chain,
                                    measure_sequence, nanmean_rows, summarise)
from stylecam.study_report import (border_sheet, chain_sheet, plot_metrics, plot_profiles, safe_name,
                                   sequence_sheet, write_csv, write_json)

MAX_CELL_WIDTH = 1024  # px; wider cells only make the sheets huge

log = logging.getLogger("stylecam")


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
    vgg_onnx: str | None = None                # VGG-16 relu2_2 ONNX (default: the shipped one)
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
        if self.size > argtypes.MAX_SIZE:
            raise UserError(f"--size must be ≤ {argtypes.MAX_SIZE}, got {self.size}", "e.g. --size 384")
        if not 32 <= self.cell_width <= MAX_CELL_WIDTH:
            raise UserError(f"--cell-width must be within 32..{MAX_CELL_WIDTH}, got {self.cell_width}",
                            "e.g. --cell-width 160")
        if not 0 <= self.fixed_point_tol <= 255:
            raise UserError(f"--fixed-point-tol must be within 0..255, got {self.fixed_point_tol}",
                            "e.g. --fixed-point-tol 0.5")
        if self.variant is not None and self.variant not in contract.VARIANTS:
            raise UserError(f"unknown variant {self.variant!r}", f"use one of {', '.join(contract.VARIANTS)}")


# =========================================================================== inputs

def find_images(specs: Sequence[str], output: str | None = None) -> list[Path]:
    """Files, folders and globs -> image paths, each once, in order.

    Found as `stylecam` finds its inputs (sources.expand_sources): folders recursively, hidden
    files, stylecam's own outputs and anything under ``output`` left out. A file named in ``specs``
    is always taken (one that is no image is reported unreadable later); in folders and globs only
    images count. UserError for a missing path or when no image is found.
    """
    for spec in specs:
        if not os.path.lexists(spec) and not any(ch in spec for ch in "*?["):
            raise UserError(f"image not found: {spec}", "give image files, folders or quoted globs")
    items, notes = expand_sources(specs, output=output)
    for note in notes:
        log.info("stylecam: %s", note)
    named = set(specs)
    unique = list(dict.fromkeys(Path(i.location) for i in items if i.kind == "image" or i.location in named))
    if not unique:
        raise UserError(f"no images found in {', '.join(specs)}",
                        f"give image files ({', '.join(sorted(IMAGE_EXTS))}), folders or quoted globs")
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
    from stylecam.pipeline import Stylizer  # late: `stylecam --help` loads no onnxruntime
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
    engine = EngineConfig(styles=(str(entry.path),), repeat=1, device=cfg.device, variant=entry.variant,
                          prepad=prepad, padding=entry.padding)
    stylizer = Stylizer.from_config(engine, registry=registry)
    plain = None
    if prepad:  # the reference canvas of every mode is made with the model alone, without the prepad
        plain = Stylizer.from_config(replace(engine, prepad=0), registry=registry).run_float
    return StyleRun(style=entry.name, padding=mode, variant=entry.variant, path=str(entry.path),
                    prepad=prepad, apply=stylizer.run_float, reference=plain)


def load_classifier(path: str, device: str):
    """A stylecam.classify classifier (top_k on uint8 BGR frames)."""
    from stylecam.classify import load_classifier as _load
    return _load(path, device)


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
    images = load_images(find_images(cfg.images, cfg.out), cfg.size, unreadable, cfg.max_pixels)
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

    features = VggFeatures(find_vgg_model(cfg.vgg_onnx), cfg.device) if cfg.vgg else None
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
                p = out / "sheets" / f"{safe_name(style_name)}__{safe_name(name)}.png"
                write_image(p, sequence_sheet(sheet_frames, cfg.cell_width))
                q = out / "sheets" / f"{safe_name(style_name)}__{safe_name(name)}__border.png"
                write_image(q, border_sheet(sheet_maps, cfg.repeat, cfg.cell_width))
                written += [p, q]

    chain_rows: list[dict] = []
    for a_spec, b_spec in pairs:
        ra, rb = runs[(a_spec, chain_mode)], runs[(b_spec, chain_mode)]
        for name, frame in images:
            bar.set_postfix_str(f"{ra.style}->{rb.style}/{name}")
            c_rows, c_frames = measure_chain(ra.apply, rb.apply, imageops.bgr_to_nchw(frame), features)
            for r in c_rows:
                chain_rows.append({"image": name, "a": ra.style, "b": rb.style, "padding": chain_mode, **r})
            p = out / "chains" / f"{safe_name(ra.style)}__{safe_name(rb.style)}__{safe_name(name)}.png"
            write_image(p, chain_sheet(c_frames, ra.style, rb.style, cfg.cell_width))
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
                     **{key: nanmean_rows(v).tolist() for key, v in slot.items()}}
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


DESCRIPTION = ("Measure and show what repeated and chained filtering does: each style is applied "
               "--repeat times per padding mode; every step is measured (border artifacts, drift, "
               "color, fixed point, classifier agreement) and drawn.")
EPILOG = """examples:
  stylecam study photos/ --styles wave,muse --repeat 10 -o study/
  stylecam study photo.jpg --styles wave --padding reflect,zero,replicate,prepad --prepad 16 -o study/
  stylecam study photos/ --styles wave,muse,udnie --chain-pairs --classifier cifar10

Metric definitions: docs/study.md.
exit codes: 0 done, 1 some images could not be read (the others are studied and written),
  2 bad input, 130 interrupted."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of `stylecam study` (and its epilog: examples, exit codes)."""
    p.epilog = EPILOG
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
    p.add_argument("--size", type=argtypes.long_side, default=384,
                   help=f"long side the images are resized to, up to {argtypes.MAX_SIZE} (default: 384)")
    p.add_argument("--variant", choices=contract.VARIANTS, default=None,
                   help="model variant (default: full where a style has one, else lite)")
    p.add_argument("--chain-pairs", action="store_true", help="also compare A->B, B->A, A and B for every pair")
    p.add_argument("--classifier", metavar="MODEL", default=None,
                   help="classifier ONNX file or shipped name (cifar10, mnist, ...): measure top-1 agreement "
                        "with the original")
    p.add_argument("--vgg-onnx", metavar="PATH", default=None,
                   help=f"VGG-16 relu2_2 ONNX (default: the shipped weights/{VGG_FILE.as_posix()}, else "
                        f"{CACHED_VGG_PATH} made by `stylecam-train export-vgg`)")
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
    p.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr (no progress bar)")


def config_from_args(args: argparse.Namespace) -> StudyConfig:
    return StudyConfig(images=tuple(args.images), out=args.output, styles=tuple(args.styles),
                       repeat=args.repeat, paddings=tuple(args.padding), prepad=args.prepad, margin=args.margin,
                       band=args.band, size=args.size, variant=args.variant, chain_pairs=args.chain_pairs,
                       classifier=args.classifier, vgg_onnx=args.vgg_onnx, vgg=not args.no_vgg,
                       weights_dir=args.weights_dir, device=args.device, cell_width=args.cell_width,
                       fixed_point_tol=args.fixed_point_tol, progress=not (args.no_progress or args.quiet),
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
