"""EXIF orientation: the tag read from an encoded PNG, WebP or TIFF, and applied to pixels.

OpenCV turns the color it decodes by the EXIF orientation, but not the alpha channel it hands out
unturned (cv2.IMREAD_UNCHANGED); sources.read_image_alpha turns that alpha to match. No dependency
of the runtime reads the tag: Pillow is none, and OpenCV hands out the raw EXIF bytes only in
recent releases (cv2.imdecodeWithMetadata, not in every OpenCV >= 4.8 that stylecam supports),
without reading them. So the few bytes are parsed here: PNG chunks, RIFF chunks and the first TIFF
directory. Pure bytes and numpy.
"""
from __future__ import annotations

import numpy as np

ORIENTATION_TAG = 0x0112


def exif_orientation(data: bytes) -> int:
    """EXIF orientation 1..8 of an encoded PNG (eXIf chunk), WebP (EXIF chunk) or TIFF; 1 when absent."""
    block = _exif_block(data)
    if block.startswith(b"Exif\x00\x00"):
        block = block[6:]
    order = {b"II": "little", b"MM": "big"}.get(block[:2])
    if order is None or len(block) < 8:
        return 1
    u = lambda at, n: int.from_bytes(block[at:at + n], order)  # noqa: E731
    ifd = u(4, 4)
    for at in range(ifd + 2, min(ifd + 2 + 12 * u(ifd, 2), len(block) - 11), 12):
        if u(at, 2) == ORIENTATION_TAG:
            value = u(at + 8, 2)
            return value if 1 <= value <= 8 else 1
    return 1


def _exif_block(data: bytes) -> bytes:
    """The EXIF (TIFF-structured) bytes of a PNG, WebP or TIFF file; b"" when there are none."""
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return data
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _chunk(data, 8, b"eXIf", png=True)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _chunk(data, 12, b"EXIF", png=False)
    return b""


def _chunk(data: bytes, at: int, wanted: bytes, png: bool) -> bytes:
    """The payload of the first ``wanted`` chunk from offset ``at``: PNG chunks (size BE, tag, data, CRC)
    or RIFF chunks (tag, size LE, data padded to even); b"" when absent."""
    while at + 8 <= len(data):
        tag = data[at + 4:at + 8] if png else data[at:at + 4]
        size = int.from_bytes(data[at:at + 4], "big") if png else int.from_bytes(data[at + 4:at + 8], "little")
        if tag == wanted:
            return data[at + 8:at + 8 + size]
        if tag == b"IEND":
            return b""
        at += 12 + size if png else 8 + size + (size & 1)
    return b""


def orient(image: np.ndarray, code: int) -> np.ndarray:
    """(H, W, ...) stored pixels -> as displayed for EXIF orientation ``code`` 1..8 (a contiguous copy)."""
    turned = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
              5: lambda a: np.swapaxes(a, 0, 1), 6: lambda a: np.swapaxes(a, 0, 1)[:, ::-1],
              7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1], 8: lambda a: np.swapaxes(a, 0, 1)[::-1]}
    return np.ascontiguousarray(turned.get(code, lambda a: a)(image))
