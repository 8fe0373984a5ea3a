"""The model contract shared by the trainer (writes it) and the runtime (checks it).

Every stylecam ONNX file carries string metadata under the keys below. Style models
take and return float32 NCHW RGB images with values 0..255 (the runtime clamps the
output); height and width must be multiples of ``MULTIPLE_OF``.

This module is pure Python: no torch, no onnxruntime.
"""
from __future__ import annotations

import json

FORMAT_VERSION = "1"

#: ONNX graph input/output names of a style model. "stylised" is the file format's name, inside
#: every shipped model file: it keeps this spelling.
STYLE_INPUT = "image"
STYLE_OUTPUT = "stylised"
#: ONNX graph input/output names of a classifier model.
CLASSIFIER_INPUT = "image"
CLASSIFIER_OUTPUT = "logits"

#: Height and width of a style model's input must be multiples of this.
MULTIPLE_OF = 4

#: Smallest height and width the runtime feeds a style model: smaller frames are reflect-padded up
#: to it and cropped back (the networks reflect-pad inside, down to 1/4 of the input size).
MIN_SIDE = 16

#: The pixel contract of every style model, stored as JSON under KEY_PIXEL_CONTRACT.
STYLE_PIXEL_CONTRACT = {
    "layout": "NCHW",
    "channels": "RGB",
    "dtype": "float32",
    "range": [0.0, 255.0],
    "multiple_of": MULTIPLE_OF,
}

KEY_KIND = "stylecam.kind"                  # "style" or "classifier"
KEY_FORMAT = "stylecam.format_version"      # FORMAT_VERSION
KEY_NAME = "stylecam.name"                  # registry name, e.g. "wave"
KEY_PAINTING = "stylecam.painting"          # painting title
KEY_ARTIST = "stylecam.artist"
KEY_YEAR = "stylecam.year"
KEY_SOURCE = "stylecam.source"              # where the painting image came from
KEY_LICENCE = "stylecam.licence"            # copyright / licence note of the painting
KEY_VARIANT = "stylecam.variant"            # "full" or "lite"
KEY_PADDING = "stylecam.padding"            # "reflect", "zero" or "replicate"
KEY_PIXEL_CONTRACT = "stylecam.pixel_contract"  # JSON, see STYLE_PIXEL_CONTRACT
KEY_CONFIG = "stylecam.config"              # JSON: network configuration
KEY_TRAINING = "stylecam.training"          # JSON: training settings and final losses
KEY_CLASSES = "stylecam.classes"            # JSON list of class names (classifiers)
KEY_NORMALISATION = "stylecam.normalisation"  # JSON (classifiers): input size, channels, mean, std, range
KEY_ACCURACY = "stylecam.test_accuracy"     # classifiers: test accuracy 0..1 as text

STYLE_REQUIRED_KEYS = (
    KEY_KIND, KEY_FORMAT, KEY_NAME, KEY_PAINTING, KEY_ARTIST, KEY_YEAR, KEY_SOURCE,
    KEY_LICENCE, KEY_VARIANT, KEY_PADDING, KEY_PIXEL_CONTRACT, KEY_CONFIG, KEY_TRAINING,
)
CLASSIFIER_REQUIRED_KEYS = (
    KEY_KIND, KEY_FORMAT, KEY_NAME, KEY_CLASSES, KEY_NORMALISATION, KEY_CONFIG,
)

PADDING_MODES = ("reflect", "zero", "replicate")
VARIANTS = ("full", "lite")


def contract_problems(metadata: dict[str, str]) -> list[str]:
    """Return what is wrong with a style model's metadata (empty list when it is fine)."""
    problems = [f"missing metadata key {k!r}" for k in STYLE_REQUIRED_KEYS if k not in metadata]
    if metadata.get(KEY_KIND, "style") != "style":
        problems.append(f"{KEY_KIND} is {metadata.get(KEY_KIND)!r}, not 'style'")
    raw = metadata.get(KEY_PIXEL_CONTRACT)
    if raw is not None:
        try:
            contract = json.loads(raw)
        except json.JSONDecodeError:
            problems.append(f"{KEY_PIXEL_CONTRACT} is not JSON")
        else:
            for field, expected in STYLE_PIXEL_CONTRACT.items():
                if contract.get(field) != expected:
                    problems.append(
                        f"pixel contract field {field!r} is {contract.get(field)!r}, expected {expected!r}")
    if metadata.get(KEY_VARIANT, "full") not in VARIANTS:
        problems.append(f"{KEY_VARIANT} is {metadata.get(KEY_VARIANT)!r}, expected one of {VARIANTS}")
    if metadata.get(KEY_PADDING, "reflect") not in PADDING_MODES:
        problems.append(f"{KEY_PADDING} is {metadata.get(KEY_PADDING)!r}, expected one of {PADDING_MODES}")
    return problems
