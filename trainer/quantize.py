"""`stylecam-train quantize`: an int8 copy of a style model for fast CPU inference.

Static quantization with onnxruntime: the inner convolutions get int8 per-channel weights and
uint8 activations (QDQ format, which the CPU provider runs as integer convolutions with AVX-512
VNNI / AVX2), calibrated on real photos. The first and last convolutions (3 channels in or out:
little arithmetic, most of the rounding error), instance norms, ReLUs and residual adds stay
float32. Input and output stay float32 NCHW RGB 0..255, so the file keeps the style pixel
contract and loads like any other style model. The result is checked against the float32
model on held-out photos (PSNR of the clamped outputs) and refused when any one photo is below
``--min-psnr`` (the worst photo decides, not the mean). The metadata records the calibration and
evaluation folders (relative to the repository or ../shared, trainer.provenance), how many photos
of each were used, the rule and what was measured. Needs no PyTorch.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from stylecam import contract
from stylecam.argtypes import finite_float, float_in, int_at_least, positive_int
from stylecam.errors import UserError
from stylecam.fileout import atomic_output, refuse_overwriting_inputs
from trainer.checkpoints import ensure_writable_file

#: metadata key holding the quantization settings and the measured agreement with float32
KEY_QUANTIZATION = "stylecam.quantization"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: --long-side range: below MIN_LONG_SIDE the style networks' reflect paddings do not fit
MIN_LONG_SIDE, MAX_LONG_SIDE = 32, 4096
CLASSIFIER_HINT = "quantize takes float32 style models (e.g. weights/NAME.lite.onnx); classifiers are not quantized"


def photo_paths(folder: str | Path, limit: int) -> list[Path]:
    """Up to ``limit`` image files of ``folder``, sorted by name (other files are ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"photo folder not found: {folder}", "pass a folder of .jpg/.png photos")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise UserError(f"no photos in {folder}", "pass a folder of .jpg/.png photos")
    return paths[:limit]


def photo_tensor(path: str | Path, long_side: int) -> np.ndarray:
    """An image file -> float32 (1, 3, H, W) RGB 0..255, long side ``long_side``, H and W multiples of 4
    and at least contract.MIN_SIDE (a very wide photo's short side is stretched up to it)."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise UserError(f"cannot read image {path}", "use .jpg or .png photos")
    scale = long_side / max(bgr.shape[:2])
    m = contract.MULTIPLE_OF
    h = max(contract.MIN_SIDE, int(round(bgr.shape[0] * scale / m)) * m)
    w = max(contract.MIN_SIDE, int(round(bgr.shape[1] * scale / m)) * m)
    rgb = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA)[:, :, ::-1]
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two arrays on the 0..255 scale (both clamped to 0..255 first); inf when equal."""
    diff = np.clip(a, 0, 255).astype(np.float64) - np.clip(b, 0, 255).astype(np.float64)
    mse = float(np.mean(diff ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def agreement(reference_path: str | Path, candidate_path: str | Path, images: list[np.ndarray]) -> dict:
    """How closely ``candidate`` reproduces ``reference`` on ``images`` (float32 (1,3,H,W) 0..255 each).

    Returns {psnr_db: mean PSNR, psnr_min_db, mean_abs_diff: grey levels, max_abs_diff}.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    ref = ort.InferenceSession(str(reference_path), options, providers=["CPUExecutionProvider"])
    cand = ort.InferenceSession(str(candidate_path), options, providers=["CPUExecutionProvider"])
    name = ref.get_inputs()[0].name
    scores, mads, maxes = [], [], []
    for x in images:
        a = np.clip(ref.run(None, {name: x})[0], 0, 255)
        b = np.clip(cand.run(None, {name: x})[0], 0, 255)
        scores.append(psnr(a, b))
        mads.append(float(np.abs(a - b).mean()))
        maxes.append(float(np.abs(a - b).max()))
    return {"psnr_db": float(np.mean(scores)), "psnr_min_db": float(np.min(scores)),
            "mean_abs_diff": float(np.mean(mads)), "max_abs_diff": float(np.max(maxes))}


CALIBRATION_METHODS = ("minmax", "percentile", "entropy")


def common_crop(images: list[np.ndarray]) -> list[np.ndarray]:
    """Centre-crop (1, 3, H, W) images to the smallest H and W among them (multiples of 4)."""
    h = min(x.shape[-2] for x in images) // 4 * 4
    w = min(x.shape[-1] for x in images) // 4 * 4
    out = []
    for x in images:
        top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
        out.append(np.ascontiguousarray(x[..., top:top + h, left:left + w]))
    return out


def quantize_style(model_path: str | Path, out_path: str | Path, calibration: list[np.ndarray],
                   evaluation: list[np.ndarray], min_psnr: float = 30.0, method: str = "minmax",
                   percentile: float = 99.999, sources: dict | None = None) -> dict:
    """Write an int8 (QDQ) copy of the float32 style model ``model_path`` to ``out_path``.

    calibration / evaluation: float32 (1, 3, H, W) RGB 0..255 images (calibration sets the
    activation ranges; evaluation measures PSNR against the float32 model). The copy keeps every
    metadata key, with ``stylecam.precision`` = "int8" and KEY_QUANTIZATION (JSON: settings and
    the measured agreement). method: how activation ranges are set from the calibration images:
    "minmax" (the full range seen), "percentile" (the ``percentile``-th percentile of the
    magnitudes seen: a few outliers no longer widen the int8 steps) or "entropy". sources: where those
    images came from, recorded as given (the CLI: calibration_photos, calibration_selection,
    evaluation_photos, long_side). Raises UserError for a model that is not a float32 style model, or when
    the PSNR of any evaluation image (the worst) is below ``min_psnr`` (the file is then not written).
    Returns {path, **agreement, calibration_images}.
    """
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from stylecam.styles import entry_from_metadata, read_onnx_metadata

    metadata = read_onnx_metadata(model_path)
    if metadata.get(contract.KEY_KIND) == "classifier":
        raise UserError(f"{model_path} is a classifier model, not a style", CLASSIFIER_HINT)
    entry = entry_from_metadata(model_path, metadata)   # validates the style contract
    precision = entry.metadata.get("stylecam.precision", "fp32")
    if precision != "fp32":
        raise UserError(f"{model_path} is a {precision} model", "quantize the float32 export of the style")
    refuse_overwriting_inputs(out_path, [model_path], "-o")
    out_path = ensure_writable_file(out_path, "-o")     # before any work: not a folder, folder writable
    if not calibration or not evaluation:
        raise UserError("quantization needs calibration and evaluation photos", "pass --photos and --eval-photos")
    if method not in CALIBRATION_METHODS:
        raise UserError(f"unknown calibration method {method!r}", f"use one of {', '.join(CALIBRATION_METHODS)}")
    if not 50.0 < percentile <= 100.0:
        raise UserError(f"calibration percentile {percentile} is out of range", "use a value in (50, 100], e.g. 99.99")
    calibrate = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                 "entropy": CalibrationMethod.Entropy}[method]

    if method != "minmax":  # these collect activations of every image into one array: one shape for all
        calibration = common_crop(calibration)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._items = iter([{contract.STYLE_INPUT: x} for x in calibration])

        def get_next(self):
            return next(self._items, None)

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quantized = Path(tmp) / "int8.onnx"
        quant_pre_process(str(model_path), str(prepared), skip_symbolic_shape=True)
        convs = [node.name for node in onnx.load(str(prepared)).graph.node if node.op_type == "Conv"]
        kept_float = [convs[0], convs[-1]] if len(convs) > 2 else []
        quantize_static(str(prepared), str(quantized), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["Conv"], nodes_to_exclude=kept_float, calibrate_method=calibrate,
                        extra_options={"CalibPercentile": percentile} if method == "percentile" else {})
        measured = agreement(model_path, quantized, evaluation)
        if measured["psnr_min_db"] < min_psnr:
            raise UserError(f"int8 copy of {model_path} agrees with float32 at only {measured['psnr_min_db']:.1f} dB "
                            f"on its worst evaluation photo (< {min_psnr} dB; mean {measured['psnr_db']:.1f} dB); "
                            "not written",
                            "try --calibration-method percentile, calibrate on more varied photos, "
                            "or keep the float32 model")
        model = onnx.load(str(quantized))
        method_name = {"minmax": "MinMax", "percentile": f"Percentile {percentile:g}", "entropy": "Entropy"}[method]
        settings = {"method": f"static QDQ, {method_name} calibration", "ops": ["Conv"],
                    "int8_convs": len(convs) - len(kept_float), "float32_convs": len(kept_float),
                    "weights": "int8 per channel",
                    "activations": "uint8", **(sources or {}), "calibration_images": len(calibration),
                    "calibration_size": list(calibration[0].shape[-2:]), "evaluation_images": len(evaluation),
                    "gate": f"PSNR against float32 at least {min_psnr:g} dB on every evaluation photo",
                    **{k: round(v, 3) for k, v in measured.items()}}
        meta = {**entry.metadata, "stylecam.precision": "int8", KEY_QUANTIZATION: json.dumps(settings)}
        del model.metadata_props[:]
        for key, value in meta.items():
            model.metadata_props.add(key=key, value=value)
        with atomic_output(out_path) as tmp_out:
            onnx.save(model, tmp_out)
    return {"path": str(out_path), **measured, "calibration_images": len(calibration)}


def default_output(model_path: str | Path) -> Path:
    """weights/NAME.lite.onnx -> weights/int8/NAME.lite.int8.onnx."""
    model_path = Path(model_path)
    return model_path.parent / "int8" / (model_path.name[:-len(".onnx")] + ".int8.onnx")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="+", metavar="MODEL.onnx", help="float32 style models to quantize")
    p.add_argument("--photos", required=True, metavar="DIR",
                   help="folder of photos for calibration (activation ranges)")
    p.add_argument("--eval-photos", required=True, metavar="DIR",
                   help="folder of held-out photos to measure PSNR against float32")
    p.add_argument("-o", "--output", default=None, metavar="FILE.onnx",
                   help="output file (one model only; default: int8/NAME.VARIANT.int8.onnx beside each model)")
    p.add_argument("--calibration-images", type=positive_int, default=32, metavar="N",
                   help="at most this many photos of --photos used for calibration")
    p.add_argument("--long-side", type=int_at_least(MIN_LONG_SIDE, MAX_LONG_SIDE), default=640, metavar="PIXELS",
                   help=f"long side of the calibration and evaluation images ({MIN_LONG_SIDE}..{MAX_LONG_SIDE})")
    p.add_argument("--min-psnr", type=finite_float, default=30.0, metavar="DB",
                   help="refuse an int8 copy whose PSNR vs float32 is below this on any evaluation photo (dB)")
    p.add_argument("--calibration-method", choices=CALIBRATION_METHODS, default="minmax",
                   help="activation ranges: the full range seen (minmax), a percentile of it (percentile, "
                        "for models whose rare extreme activations cost precision) or entropy")
    p.add_argument("--calibration-percentile", type=float_in(50.0, 100.0, low_open=True), default=99.999,
                   metavar="P", help="with --calibration-method percentile: the percentile kept, in (50, 100] "
                   "(lower clips more)")


def run(args: argparse.Namespace) -> int:
    if args.output and len(args.models) > 1:
        raise UserError("-o/--output takes one model", "leave -o out to write int8/NAME.int8.onnx beside each model")
    if args.output:  # check before decoding photos and calibrating (minutes)
        refuse_overwriting_inputs(args.output, args.models, "-o")
        ensure_writable_file(args.output, "-o")
    from trainer.provenance import portable_path
    calibration_paths = photo_paths(args.photos, args.calibration_images)
    evaluation_paths = photo_paths(args.eval_photos, 1000)
    calibration = [photo_tensor(p, args.long_side) for p in calibration_paths]
    evaluation = [photo_tensor(p, args.long_side) for p in evaluation_paths]
    sources = {"calibration_photos": portable_path(args.photos),
               "calibration_selection": f"the first {len(calibration_paths)} image files by name",
               "evaluation_photos": portable_path(args.eval_photos), "long_side": args.long_side}
    failed = []
    for model in args.models:
        out = Path(args.output) if args.output else default_output(model)
        try:
            report = quantize_style(model, out, calibration, evaluation, min_psnr=args.min_psnr,
                                    method=args.calibration_method, percentile=args.calibration_percentile,
                                    sources=sources)
        except UserError as err:
            if len(args.models) == 1:
                raise
            print(f"stylecam-train: error: {err}", file=sys.stderr)
            failed.append(model)
            continue
        print(f"stylecam-train: wrote {report['path']} (int8): PSNR vs float32 {report['psnr_db']:.1f} dB "
              f"(min {report['psnr_min_db']:.1f}), mean |diff| {report['mean_abs_diff']:.2f} grey levels")
    if failed:
        print(f"stylecam-train: {len(failed)} of {len(args.models)} models not quantized: {', '.join(failed)}",
              file=sys.stderr)
        return 1
    return 0
