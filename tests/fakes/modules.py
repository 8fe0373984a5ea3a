"""Stand-ins for optional modules, installed into sys.modules with monkeypatch: pyvirtualcam (a
virtual camera that keeps what it is sent) and stylecam.classify (labels by the dominant color).
"""
from __future__ import annotations

import sys
import types

import cv2
import numpy as np


def fake_pyvirtualcam(monkeypatch, fail: str | None = None) -> tuple[list, list]:
    """Installs a stand-in pyvirtualcam; returns (frames sent, cameras opened)."""
    sent, opened = [], []

    class Camera:
        def __init__(self, width, height, fps, fmt=None, device=None):
            if fail:
                raise RuntimeError(fail)
            self.width, self.height, self.fps, self.fmt = width, height, fps, fmt
            self.device, self.closed = device or "/dev/video7", False
            opened.append(self)

        def send(self, frame):
            assert frame.shape == (self.height, self.width, 3) and frame.dtype == np.uint8
            sent.append(frame.copy())

        def close(self):
            self.closed = True

    module = types.ModuleType("pyvirtualcam")
    module.Camera, module.PixelFormat = Camera, types.SimpleNamespace(BGR="bgr")
    monkeypatch.setitem(sys.modules, "pyvirtualcam", module)
    return sent, opened


def stub_classify_module():
    """Stands in for stylecam.classify: labels by the dominant BGR channel."""
    module = types.ModuleType("stylecam.classify")

    class Classifier:
        def top_k(self, frame, k=3):
            means = frame.reshape(-1, 3).mean(0)
            names = ["blue", "green", "red"]
            order = np.argsort(-means)[:k]
            return [(names[i], float(means[i] / max(1e-6, means.sum()))) for i in order]

    module.load_classifier = lambda path, device="auto": Classifier()
    module.overlay_labels = lambda frame, labels, title: cv2.putText(
        frame.copy(), f"{title}: {labels[0][0]}", (1, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (255, 255, 255))
    module.calls = []
    return module
