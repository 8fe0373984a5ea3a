"""Image sizes read from file headers without decoding (stylecam.imageheader): every format OpenCV
writes here, crafted headers that claim huge sizes, and damaged headers."""
from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from stylecam.imageheader import image_size_of, image_size_of_bytes

WIDTH, HEIGHT = 53, 37


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG (about 70 bytes) whose IHDR claims width x height; its pixel data is cut short."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


def jpeg_claiming(width: int, height: int, exif_bytes: int = 0) -> bytes:
    """A JPEG header (SOI, an APP1 segment of ``exif_bytes``, SOF0 claiming width x height, EOI)."""
    app1 = b"\xff\xe1" + struct.pack(">H", exif_bytes + 2) + b"\x00" * exif_bytes if exif_bytes else b""
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8" + app1 + b"\xff\xff" + sof + b"\xff\xd9"   # \xff\xff: a fill byte before the marker


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp", ".tiff", ".ppm", ".pgm", ".pbm", ".pam",
                                 ".pfm", ".sr", ".hdr", ".jp2", ".avif"])
def test_every_format_opencv_writes_gives_its_true_size(ext):
    image = np.random.default_rng(0).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    if ext in (".pfm", ".hdr"):
        image = image.astype(np.float32) / 255
    if ext in (".pgm", ".pbm"):
        image = image[..., 0]
    try:
        ok, encoded = cv2.imencode(ext, image)
    except cv2.error:
        pytest.skip(f"this OpenCV has no {ext} encoder")
    assert ok
    data = encoded.tobytes()
    assert image_size_of_bytes(data) == (WIDTH, HEIGHT)
    assert cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED).shape[:2] == (HEIGHT, WIDTH)


def test_webp_lossless_and_lossy_and_bmp_top_down():
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    for quality in (100, 101):           # 101: lossless VP8L
        ok, encoded = cv2.imencode(".webp", image, [cv2.IMWRITE_WEBP_QUALITY, quality])
        assert image_size_of_bytes(encoded.tobytes()) == (WIDTH, HEIGHT)
    ok, encoded = cv2.imencode(".bmp", image)
    data = bytearray(encoded.tobytes())
    data[22:26] = struct.pack("<i", -HEIGHT)   # a negative height: rows stored top-down
    assert image_size_of_bytes(bytes(data)) == (WIDTH, HEIGHT)


def test_crafted_png_claims_its_huge_size_in_a_few_bytes(tmp_path):
    data = png_claiming(50000, 50000)
    assert len(data) < 200
    path = tmp_path / "huge.png"
    path.write_bytes(data)
    assert image_size_of(path) == (50000, 50000)


def test_jpeg_frame_header_is_found_after_a_large_exif_segment():
    assert image_size_of_bytes(jpeg_claiming(60000, 40000, exif_bytes=60000)) == (60000, 40000)
    assert image_size_of_bytes(jpeg_claiming(640, 480)) == (640, 480)


@pytest.mark.parametrize("data", [
    b"", b"\x89PNG\r\n\x1a\n", png_claiming(50000, 50000)[:20],      # cut short
    b"\xff\xd8\xff\xe1\x00",                                          # JPEG cut inside a segment length
    b"\xff\xd8\xff\xda\x00\x08" + b"\x00" * 16,                       # scan before any frame header
    jpeg_claiming(640, 0),                                            # height given later (DNL)
    b"II*\x00\xff\xff\xff\x7f" + b"\x00" * 8,                         # TIFF whose IFD lies past the end
    b"P6\nwide tall\n255\n",                                          # PPM with words for sides
    b"GIF89a\x10\x00\x10\x00", b"random bytes, not an image at all",  # not parsed / not an image
    png_claiming(0, 10),                                              # zero pixels: no size
])
def test_damaged_or_unknown_headers_give_none(data):
    assert image_size_of_bytes(data) is None


def test_missing_file_gives_none(tmp_path):
    assert image_size_of(tmp_path / "missing.png") is None
