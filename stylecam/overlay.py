"""What a frame loop shows and records: the stylized frame, or original | stylized, with a
classifier's labels when asked (``--classify``). Frames are uint8 BGR (H, W, 3).
"""
from __future__ import annotations

import importlib

import numpy as np

from stylecam import imageops
from stylecam.styles import find_classifier


class LabelOverlay:
    """Top-3 labels of a classifier for the original and the stylized frame, side by side.

    Uses ``stylecam.classify`` (load_classifier, Classifier.top_k, overlay_labels).
    """

    def __init__(self, model: str, device: str = "auto", k: int = 3, weights_dir: str | None = None):
        """model: a classifier .onnx file, or the name of one shipped in <weights>/classifiers/."""
        classify = importlib.import_module("stylecam.classify")   # looked up at run time: tests stand it in
        self._classify = classify
        self.classifier = classify.load_classifier(str(find_classifier(model, weights_dir)), device=device)
        self.k = k

    def compose(self, original: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        """uint8 BGR original and stylized (H, W, 3) -> uint8 BGR (H, 2W, 3) with labels drawn."""
        left = self._classify.overlay_labels(original, self.classifier.top_k(original, k=self.k), "original")
        right = self._classify.overlay_labels(stylized, self.classifier.top_k(stylized, k=self.k), "stylized")
        return imageops.side_by_side(left, right)


def compose(original: np.ndarray, stylized: np.ndarray, overlay: LabelOverlay | None, show_original: bool) -> np.ndarray:
    """What is shown and recorded: the stylized frame, or original | stylized (with labels)."""
    if overlay is not None:
        return overlay.compose(original, stylized)
    if show_original:
        return imageops.side_by_side(original, stylized)
    return stylized
