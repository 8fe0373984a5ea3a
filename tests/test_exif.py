"""stylecam.exif: the EXIF orientation read from PNG, WebP and TIFF bytes, and applied to pixels."""
from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from stylecam.exif import exif_orientation, orient


def tiff_block(orientation: int, order: str = "II", extra_tags: int = 1) -> bytes:
    """A TIFF-structured EXIF block whose first directory holds ``extra_tags`` other tags, then the orientation."""
    fmt = "<" if order == "II" else ">"
    magic = b"II*\x00" if order == "II" else b"MM\x00*"
    entries = [struct.pack(fmt + "HHIHH", 0x0100 + i, 3, 1, 7, 0) for i in range(extra_tags)]
    entries.append(struct.pack(fmt + "HHIHH", 0x0112, 3, 1, orientation, 0))
    return magic + struct.pack(fmt + "I", 8) + struct.pack(fmt + "H", len(entries)) + b"".join(entries) \
        + struct.pack(fmt + "I", 0)


def png_chunk(tag: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))


def png_with_exif(block: bytes) -> bytes:
    """A real 2x3 PNG (OpenCV's) with an eXIf chunk put after its header chunk."""
    data = cv2.imencode(".png", np.zeros((2, 3, 3), np.uint8))[1].tobytes()
    after_ihdr = 8 + 12 + 13
    return data[:after_ihdr] + png_chunk(b"eXIf", block) + data[after_ihdr:]


def webp_with_exif(block: bytes) -> bytes:
    """RIFF/WEBP bytes with a VP8X chunk and an odd-sized chunk (padded) before the EXIF chunk."""
    chunks = b"VP8X" + struct.pack("<I", 10) + bytes(10) + b"ICCP" + struct.pack("<I", 3) + b"abc\x00"
    chunks += b"EXIF" + struct.pack("<I", len(block)) + block + (b"\x00" if len(block) % 2 else b"")
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WEBP" + chunks


@pytest.mark.parametrize("order", ["II", "MM"])
@pytest.mark.parametrize("code", range(1, 9))
def test_the_orientation_is_read_from_png_webp_and_tiff_in_both_byte_orders(order, code):
    block = tiff_block(code, order)
    assert exif_orientation(block) == code
    assert exif_orientation(png_with_exif(block)) == code
    assert exif_orientation(webp_with_exif(block)) == code
    assert exif_orientation(webp_with_exif(b"Exif\x00\x00" + block)) == code   # the JPEG-style prefix


def test_no_tag_a_bad_value_or_damage_reads_as_1():
    assert exif_orientation(cv2.imencode(".png", np.zeros((2, 2, 3), np.uint8))[1].tobytes()) == 1  # no eXIf
    assert exif_orientation(tiff_block(0)) == 1 and exif_orientation(tiff_block(9)) == 1
    assert exif_orientation(tiff_block(6)[:12]) == 1                 # cut inside the directory
    assert exif_orientation(b"") == 1 and exif_orientation(b"\xff\xd8\xff\xe1") == 1   # JPEG: OpenCV's own job
    assert exif_orientation(png_with_exif(b"XX" + tiff_block(6)[2:])) == 1   # no byte-order mark
    iend_first = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IEND", b"") + png_chunk(b"eXIf", tiff_block(6))
    assert exif_orientation(iend_first) == 1                        # nothing after the end is read


def test_orient_turns_stored_pixels_as_each_code_says():
    stored = np.arange(6).reshape(2, 3)            # [[0 1 2] [3 4 5]]
    expected = {1: stored, 2: np.fliplr(stored), 3: np.rot90(stored, 2), 4: np.flipud(stored),
                5: stored.T, 6: np.rot90(stored, -1), 7: np.rot90(stored, 2).T, 8: np.rot90(stored, 1)}
    for code, shown in expected.items():
        turned = orient(stored, code)
        np.testing.assert_array_equal(turned, shown, err_msg=f"orientation {code}")
        assert turned.flags["C_CONTIGUOUS"]
    color = np.random.default_rng(0).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    assert orient(color, 6).shape == (5, 4, 3) and orient(color, 0).shape == (4, 5, 3)  # unknown code: as stored
