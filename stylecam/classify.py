"""Label frames with a stylecam classifier (ONNX), and draw the labels onto frames. No torch here.

A classifier model has the metadata of ``stylecam.contract`` with kind "classifier", its class names
(JSON list) and its input normalisation (JSON)::

    {"height": H, "width": W, "channels": "RGB" or "GRAY", "scale": 1/255, "mean": [...], "std": [...]}

meaning: the frame is centre-cropped to the W:H aspect ratio, resized to W x H, converted to RGB or
gray, and then input = ((pixel * scale) - mean) / std per channel, float32 NCHW (N, 3 or 1, H, W),
where pixel is the uint8 value 0..255. (The older form {"size": [H, W], "range": [lo, hi], ...}
with pixel * (hi - lo) / 255 + lo is also read.) The graph maps input "image" to output "logits"
(N, classes); probabilities are the softmax of the logits.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import cv2
import numpy as np

from stylecam import contract
from stylecam.errors import UserError
from stylecam.session import LoadedModel, load_model


@dataclass(frozen=True)
class Normalisation:
    """What a classifier expects as input (see the module docstring)."""
    height: int
    width: int
    channels: str                 # "RGB" or "GRAY"
    scale: float                  # pixel (0..255) * scale + offset, then - mean, / std
    offset: float
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @staticmethod
    def from_json(text: str) -> "Normalisation":
        """Parse the KEY_NORMALISATION metadata; ValueError naming the problem."""
        d = json.loads(text)
        if not isinstance(d, dict):
            raise ValueError("not a JSON object")
        if "size" in d:
            height, width = (int(v) for v in d["size"])
        else:
            height, width = int(d["height"]), int(d["width"])
        channels = str(d.get("channels", "RGB")).upper()
        if channels not in ("RGB", "GRAY"):
            raise ValueError(f"channels is {channels!r}, expected 'RGB' or 'GRAY'")
        if "range" in d:
            lo, hi = (float(v) for v in d["range"])
            scale, offset = (hi - lo) / 255.0, lo
        else:
            scale, offset = float(d.get("scale", 1.0 / 255.0)), 0.0
        n = 3 if channels == "RGB" else 1
        mean = tuple(float(v) for v in np.broadcast_to(np.asarray(d.get("mean", 0.0), float).reshape(-1), (n,)))
        std = tuple(float(v) for v in np.broadcast_to(np.asarray(d.get("std", 1.0), float).reshape(-1), (n,)))
        if height < 1 or width < 1 or min(std) <= 0:
            raise ValueError(f"bad size {height}x{width} or std {std}")
        return Normalisation(height, width, channels, scale, offset, mean, std)


def preprocess(frame_bgr: np.ndarray, norm: Normalisation, crop: bool = True) -> np.ndarray:
    """uint8 (H, W, 3) BGR frame -> float32 (1, C, norm.height, norm.width) model input.

    crop: centre-crop to the model's aspect ratio first (otherwise the frame is squashed).
    """
    if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) BGR frame, got shape {frame_bgr.shape}")
    h, w = frame_bgr.shape[:2]
    if crop:
        target = norm.width / norm.height
        if w / h > target:
            cw = max(1, round(h * target))
            frame_bgr = frame_bgr[:, (w - cw) // 2:(w - cw) // 2 + cw]
        else:
            ch = max(1, round(w / target))
            frame_bgr = frame_bgr[(h - ch) // 2:(h - ch) // 2 + ch]
    shrinking = frame_bgr.shape[0] > norm.height or frame_bgr.shape[1] > norm.width
    small = cv2.resize(frame_bgr, (norm.width, norm.height),
                       interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    if norm.channels == "GRAY":
        pixels = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)[None]             # (1, H, W)
    else:
        pixels = cv2.cvtColor(small, cv2.COLOR_BGR2RGB).transpose(2, 0, 1)  # (3, H, W)
    x = pixels.astype(np.float32) * np.float32(norm.scale) + np.float32(norm.offset)
    mean = np.asarray(norm.mean, np.float32).reshape(-1, 1, 1)
    std = np.asarray(norm.std, np.float32).reshape(-1, 1, 1)
    return ((x - mean) / std)[None].astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of float (N, K) logits -> probabilities (N, K) summing to 1."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


class Classifier:
    """A loaded classifier model: class names, normalisation and top-k labelling of BGR frames."""

    def __init__(self, model: LoadedModel):
        self.model = model
        meta = model.metadata
        if meta.get(contract.KEY_KIND) != "classifier":
            raise UserError(f"{model.path} is not a classifier model ({contract.KEY_KIND} is "
                            f"{meta.get(contract.KEY_KIND)!r})",
                            "pass a model from weights/classifiers/ or one written by stylecam-train classifier")
        missing = [k for k in contract.CLASSIFIER_REQUIRED_KEYS if k not in meta]
        if missing:
            raise UserError(f"classifier {model.path} lacks metadata {', '.join(missing)}",
                            "re-export it with stylecam-train classifier")
        try:
            classes = json.loads(meta[contract.KEY_CLASSES])
            if not isinstance(classes, list) or not classes:
                raise ValueError("not a non-empty list")
            self.class_names: list[str] = [str(c) for c in classes]
            self.normalisation = Normalisation.from_json(meta[contract.KEY_NORMALISATION])
        except (ValueError, TypeError, KeyError) as err:
            raise UserError(f"classifier {model.path} has bad class or normalisation metadata: {err}",
                            "re-export it with stylecam-train classifier") from None
        self.name = meta.get(contract.KEY_NAME, "classifier")
        try:
            self.test_accuracy: float | None = float(meta[contract.KEY_ACCURACY])
        except (KeyError, ValueError):
            self.test_accuracy = None
        out_dim = model.session.get_outputs()[0].shape[-1]
        if isinstance(out_dim, int) and out_dim != len(self.class_names):
            raise UserError(f"classifier {model.path} outputs {out_dim} scores but names "
                            f"{len(self.class_names)} classes", "re-export it with stylecam-train classifier")

    def probabilities(self, frame_bgr: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) BGR frame -> float32 (classes,) probabilities."""
        x = preprocess(frame_bgr, self.normalisation)
        logits = self.model.run(x)
        return softmax(logits.reshape(1, -1))[0]

    def top_k(self, frame_bgr: np.ndarray, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most probable labels of a uint8 (H, W, 3) BGR frame: [(name, probability), ...]."""
        p = self.probabilities(frame_bgr)
        order = np.argsort(-p, kind="stable")[:max(1, k)]
        return [(self.class_names[i], float(p[i])) for i in order]


def load_classifier(path: str, device: str = "auto") -> Classifier:
    """Load a classifier ONNX model; UserError when it is missing, corrupt or not a classifier."""
    return Classifier(load_model(path, device=device))


def overlay_labels(frame_bgr: np.ndarray, labels: list[tuple[str, float]], title: str | None = None) -> np.ndarray:
    """A copy of ``frame_bgr`` (uint8 H x W x 3) with ``title`` and "label  87%" lines and bars drawn top-left."""
    out = frame_bgr.copy()
    h, w = out.shape[:2]
    lines = ([title] if title else []) + [f"{name}  {p:.0%}" for name, p in labels]
    if not lines:
        return out
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = max(0.35, min(1.0, h / 720))
    thick = 1 if scale < 0.7 else 2
    text_h = cv2.getTextSize("Ag", font, scale, thick)[0][1]
    step = text_h + max(8, text_h // 2) + 6          # baseline to baseline: text, gap, bar
    margin = max(4, text_h // 3)
    width = max(cv2.getTextSize(t, font, scale, thick)[0][0] for t in lines) + 2 * margin
    x1, y1 = min(w, 4 + width), min(h, 4 + step * len(lines) + margin)
    region = out[4:y1, 4:x1]
    region[:] = (region.astype(np.float32) * 0.35).astype(np.uint8)   # darken behind the text
    x, y = 4 + margin, 4 + margin + text_h
    if title:
        cv2.putText(out, title, (x, y), font, scale, (255, 255, 255), thick, cv2.LINE_AA)
        y += step
    for name, p in labels:
        cv2.putText(out, f"{name}  {p:.0%}", (x, y), font, scale, (255, 255, 255), thick, cv2.LINE_AA)
        bar = int((width - 2 * margin) * max(0.0, min(1.0, p)))
        if bar:
            cv2.rectangle(out, (x, y + 4), (x + bar, y + 4 + max(2, text_h // 5)), (0, 200, 255), -1)
        y += step
    return out


def labelled_pair(classifier: Classifier, original_bgr: np.ndarray, stylized_bgr: np.ndarray,
                  k: int = 3) -> np.ndarray:
    """Original and stylized uint8 BGR frames side by side, each with its own top-k labels drawn on.

    Both frames must have the same height; returns uint8 (H, W1 + W2, 3).
    """
    if original_bgr.shape[0] != stylized_bgr.shape[0]:
        raise ValueError(f"frame heights differ: {original_bgr.shape[0]} and {stylized_bgr.shape[0]}")
    left = overlay_labels(original_bgr, classifier.top_k(original_bgr, k), "original")
    right = overlay_labels(stylized_bgr, classifier.top_k(stylized_bgr, k), "stylized")
    return np.hstack([left, right])
