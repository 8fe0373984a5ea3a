"""Pure image operations between the camera (uint8 BGR HxWx3) and the models (float32 NCHW RGB 0..255).

No onnxruntime here; cv2 for resizing, drawing text and the per-pixel blend of ``stabilize``.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from stylecam.contract import MIN_SIDE, MULTIPLE_OF

# BT.601 luma weights on RGB, as in JPEG's YCbCr
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def bgr_to_nchw(frame: np.ndarray) -> np.ndarray:
    """uint8 BGR (H, W, 3) or a list/array of them (N, H, W, 3) -> float32 RGB (N, 3, H, W), 0..255."""
    arr = np.asarray(frame)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"expected (H, W, 3) or (N, H, W, 3) BGR frames, got shape {arr.shape}")
    return np.ascontiguousarray(arr[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)


def nchw_to_bgr(x: np.ndarray) -> np.ndarray:
    """float RGB (N, 3, H, W) or (3, H, W), any range -> uint8 BGR (N, H, W, 3) or (H, W, 3).

    Values are clamped to 0..255 and rounded to the nearest integer (half to even).
    """
    single = x.ndim == 3
    x = x[None] if single else x
    n, _, h, w = x.shape
    out = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):  # cv2.merge interleaves planes far faster than a numpy transpose copy
        hwc = cv2.merge([np.asarray(x[i, 2], np.float32), np.asarray(x[i, 1], np.float32),
                         np.asarray(x[i, 0], np.float32)])
        np.clip(hwc, 0, 255, out=hwc)
        np.rint(hwc, out=hwc)
        out[i] = hwc
    return out[0] if single else out


def pad_amounts(height: int, width: int, multiple: int = MULTIPLE_OF, extra: int = 0,
                minimum: int = MIN_SIDE) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) padding so that H and W become multiples of ``multiple``.

    ``extra`` pixels are added on every side first; then each axis grows to at least ``minimum``
    and to the next multiple, the added pixels split with the larger half at the bottom/right.
    """
    h, w = height + 2 * extra, width + 2 * extra
    dh = max(minimum - h, 0) + (-max(h, minimum)) % multiple
    dw = max(minimum - w, 0) + (-max(w, minimum)) % multiple
    return extra + dh // 2, extra + dh - dh // 2, extra + dw // 2, extra + dw - dw // 2


def reflect_pad(x: np.ndarray, pads: tuple[int, int, int, int]) -> np.ndarray:
    """Reflect-pad the last two axes of (N, C, H, W) by (top, bottom, left, right).

    Pads wider than the image are reflected repeatedly; a 1-pixel axis is repeated.
    """
    top, bottom, left, right = pads
    if not any(pads):
        return x
    widths = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
    mode = "reflect" if min(x.shape[-2:]) > 1 else "edge"
    return np.pad(x, widths, mode=mode)


def crop(x: np.ndarray, pads: tuple[int, int, int, int]) -> np.ndarray:
    """Undo ``reflect_pad``: remove (top, bottom, left, right) pixels from the last two axes."""
    top, bottom, left, right = pads
    h, w = x.shape[-2:]
    return x[..., top:h - bottom, left:w - right]


def blend(original: np.ndarray, stylized: np.ndarray, strength: float) -> np.ndarray:
    """Linear blend, same shape/dtype float: ``original + strength * (stylized - original)``.

    strength 0 gives the original, 1 the stylized image.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be within 0..1, got {strength}")
    if strength == 1.0:
        return stylized
    return original + np.float32(strength) * (stylized - original)


def luma(x: np.ndarray) -> np.ndarray:
    """BT.601 luma of float RGB (N, 3, H, W) -> (N, 1, H, W), same range as the input."""
    return np.tensordot(_LUMA, x, axes=([0], [1]))[:, None] if x.ndim == 4 else \
        np.tensordot(_LUMA, x, axes=([0], [0]))[None]


def preserve_color(original: np.ndarray, stylized: np.ndarray) -> np.ndarray:
    """Keep the original's color, take the stylized image's luminance (float RGB NCHW 0..255).

    In Y/Cb/Cr terms: Y from ``stylized``, Cb and Cr from ``original``. Since Cb/Cr are
    linear in RGB, this equals ``original + (Y_stylized - Y_original)`` on every channel.
    Not clamped (the caller clamps once at the end).
    """
    return original + (luma(stylized) - luma(original))


def resize_long_side(frame: np.ndarray, long_side: int) -> np.ndarray:
    """uint8/float (H, W, C) -> same dtype, resized so max(H, W) == long_side (aspect kept, ≥ 1 px)."""
    h, w = frame.shape[:2]
    scale = long_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if size == (w, h):
        return frame
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(frame, size, interpolation=interp)


def resize_to(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize (H, W, C) to (height, width, C), same dtype."""
    if frame.shape[:2] == (height, width):
        return frame
    interp = cv2.INTER_AREA if height * width < frame.shape[0] * frame.shape[1] else cv2.INTER_CUBIC
    return cv2.resize(frame, (width, height), interpolation=interp)


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two uint8 BGR frames of the same height -> one frame (H, W1 + W2, 3)."""
    if left.shape[0] != right.shape[0]:
        right = resize_to(right, left.shape[0], round(right.shape[1] * left.shape[0] / right.shape[0]))
    return np.concatenate([left, right], axis=1)


def draw_text_lines(frame: np.ndarray, lines: Sequence[str], origin: tuple[int, int] = (8, 8),
                    scale: float | None = None) -> np.ndarray:
    """Draw white text with a dark backing box on a copy of a uint8 BGR frame; returns the copy."""
    out = frame.copy()
    if not lines:
        return out
    scale = scale or max(0.35, min(0.7, out.shape[0] / 720))
    thickness = 1
    sizes = [cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0] for line in lines]
    line_h = max(s[1] for s in sizes) + int(8 * scale) + 2
    x0, y0 = origin
    box_w = max(s[0] for s in sizes) + 8
    box_h = line_h * len(lines) + 4
    x1, y1 = min(out.shape[1], x0 + box_w), min(out.shape[0], y0 + box_h)
    region = out[y0:y1, x0:x1]
    region[:] = (region.astype(np.uint16) * 2 // 5).astype(np.uint8)  # darken 60 %
    for i, line in enumerate(lines):
        cv2.putText(out, line, (x0 + 4, y0 + (i + 1) * line_h - 4), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return out


def contact_sheet(items: Sequence[tuple[str, np.ndarray]], columns: int | None = None,
                  cell_width: int = 320, gap: int = 4) -> np.ndarray:
    """Labelled grid of uint8 BGR frames -> one uint8 BGR image.

    Each cell is resized to ``cell_width`` wide (aspect kept, the first frame's aspect for all).
    """
    if not items:
        raise ValueError("contact_sheet needs at least one frame")
    columns = columns or min(len(items), 4)
    h0, w0 = items[0][1].shape[:2]
    cell_h = max(1, round(h0 * cell_width / w0))
    rows = (len(items) + columns - 1) // columns
    sheet = np.full((rows * cell_h + (rows + 1) * gap, columns * cell_width + (columns + 1) * gap, 3),
                    32, np.uint8)
    for i, (label, frame) in enumerate(items):
        r, c = divmod(i, columns)
        cell = draw_text_lines(resize_to(frame, cell_h, cell_width), [label], scale=0.45)
        y, x = gap + r * (cell_h + gap), gap + c * (cell_width + gap)
        sheet[y:y + cell_h, x:x + cell_width] = cell
    return sheet


#: input change (grey levels, largest channel) at which --stabilize stops holding the previous output
STABILIZE_MOTION = 8.0


def stabilize(previous_in: np.ndarray, current_in: np.ndarray, previous_out: np.ndarray,
              current_out: np.ndarray, amount: float, motion: float = STABILIZE_MOTION) -> np.ndarray:
    """Hold the previous output where the scene stood still, to cut the flicker of per-frame stylization.

    All four frames are (H, W, 3) uint8 0..255 in one channel order (BGR from the CLI); returns uint8
    (H, W, 3): ``current_out + amount * w * (previous_out - current_out)``, where the per-pixel weight
    w = 1 - (largest channel change of the input) / ``motion``, clipped to 0..1: 1 where the input did
    not change, 0 where it moved by ``motion`` grey levels or more (moving things are never smeared).
    amount 0 returns ``current_out`` unchanged.
    """
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"amount must be within 0..1, got {amount}")
    if amount == 0.0:
        return current_out
    # cv2 throughout: several times faster than the same arithmetic in numpy
    change = cv2.absdiff(current_in, previous_in)
    largest = np.maximum(np.maximum(change[..., 0], change[..., 1]), change[..., 2])  # uint8 (H, W)
    table = np.float32(amount) * np.clip(1.0 - np.arange(256, dtype=np.float32) / np.float32(motion), 0.0, 1.0)
    hold = cv2.LUT(largest, table.astype(np.float32))                               # float32 (H, W)
    return cv2.blendLinear(previous_out, current_out, hold, np.float32(1.0) - hold)


class Stabilizer:
    """Stateful ``stabilize`` over a stream of frames: call it with each (input, output) pair in order.

    Keeps the last input and the last *returned* output, so a still scene settles to a running
    average of the model's outputs. A frame of another size (or the first one) passes unchanged.
    """

    def __init__(self, amount: float, motion: float = STABILIZE_MOTION):
        if not 0.0 <= amount <= 1.0:
            raise ValueError(f"amount must be within 0..1, got {amount}")
        self.amount, self.motion = amount, motion
        self._last: tuple[np.ndarray, np.ndarray] | None = None

    def __call__(self, frame_in: np.ndarray, frame_out: np.ndarray) -> np.ndarray:
        last = self._last
        if self.amount > 0 and last is not None and last[0].shape == frame_in.shape \
                and last[1].shape == frame_out.shape:
            frame_out = stabilize(last[0], frame_in, last[1], frame_out, self.amount, self.motion)
        self._last = (frame_in, frame_out)
        return frame_out

    def reset(self) -> None:
        self._last = None


#: The first spelling of Stabilizer, as documented for the Python API before.
Stabiliser = Stabilizer
