"""The pixel size an image file announces in its header, read without decoding the picture.

``image_size(fh)`` reads a few bytes (at most a few hundred for most formats; JPEG segments are
skipped by their lengths) and returns (width, height) in stored pixels, or None when the format is
not one parsed here or the header is damaged. Parsed: PNG (IHDR), JPEG (SOFn), BMP, WebP (VP8,
VP8L, VP8X), TIFF and BigTIFF (first IFD), PBM/PGM/PPM/PAM/PFM, Sun raster, Radiance HDR and
JPEG 2000 (ihdr box), AVIF/HEIF (ispe property). No numpy, no OpenCV: pure byte parsing.
"""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import BinaryIO

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_MAX_SEGMENTS = 4096     # a real JPEG has tens of segments before its frame header
_TEXT_HEADER = 1024           # bytes read for the text headers of PNM, PAM, PFM and HDR


def image_size_of(path: str | Path) -> tuple[int, int] | None:
    """(width, height) from the header of the image file at ``path``; None when unknown or unreadable."""
    try:
        with open(path, "rb") as fh:
            return image_size(fh)
    except OSError:
        return None


def image_size(fh: BinaryIO) -> tuple[int, int] | None:
    """(width, height) from the header of an image file open for binary reading (seekable); None
    when the format is not one of this module's or the header is damaged."""
    head = fh.read(32)
    for parse in (_png, _jpeg, _bmp, _webp, _tiff, _pnm, _sun_raster, _hdr, _jpeg2000, _avif):
        try:
            size = parse(head, fh)
        except (ValueError, IndexError, OSError):
            return None
        if size is not None:
            width, height = size
            return (width, height) if width > 0 and height > 0 else None
    return None


def image_size_of_bytes(data: bytes) -> tuple[int, int] | None:
    """image_size of encoded bytes held in memory."""
    return image_size(io.BytesIO(data))


def _u(data: bytes, at: int, n: int, order: str = "big") -> int:
    if at + n > len(data):
        raise ValueError("header cut short")
    return int.from_bytes(data[at:at + n], order)


def _read_at(fh: BinaryIO, at: int, n: int) -> bytes:
    fh.seek(at)
    data = fh.read(n)
    if len(data) < n:
        raise ValueError("header cut short")
    return data


def _png(head: bytes, fh: BinaryIO):
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return _u(head, 16, 4), _u(head, 20, 4)


def _jpeg(head: bytes, fh: BinaryIO):
    if head[:3] != b"\xff\xd8\xff":
        return None
    at = 2
    for _ in range(_JPEG_MAX_SEGMENTS):
        fh.seek(at)
        if fh.read(1) != b"\xff":
            raise ValueError("not a JPEG marker")
        marker = 0xFF
        while marker == 0xFF:            # fill bytes before the marker code
            byte = fh.read(1)
            if not byte:
                raise ValueError("cut short")
            marker = byte[0]
            at += 1
        at += 1
        if marker in (0x01, *range(0xD0, 0xD8)):   # markers without a segment
            continue
        if marker in (0xD9, 0xDA):       # end of image, start of scan: no frame header before them
            return None
        segment = _read_at(fh, at, 7)
        if marker in _JPEG_SOF:
            height, width = _u(segment, 3, 2), _u(segment, 5, 2)
            return (width, height) if height else None   # height 0: given later (DNL), unknown here
        at += _u(segment, 0, 2)
    return None


def _bmp(head: bytes, fh: BinaryIO):
    if head[:2] != b"BM":
        return None
    if _u(head, 14, 4, "little") == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sides
        return _u(head, 18, 2, "little"), _u(head, 20, 2, "little")
    width = int.from_bytes(head[18:22], "little", signed=True)
    height = int.from_bytes(head[22:26], "little", signed=True)   # negative: stored top-down
    return abs(width), abs(height)


def _webp(head: bytes, fh: BinaryIO):
    if head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        return None
    chunk = head[12:16]
    if chunk == b"VP8 ":
        return _u(head, 26, 2, "little") & 0x3FFF, _u(head, 28, 2, "little") & 0x3FFF
    if chunk == b"VP8L":
        bits = _u(head, 21, 4, "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return _u(head, 24, 3, "little") + 1, _u(head, 27, 3, "little") + 1
    return None


def _tiff(head: bytes, fh: BinaryIO):
    order = {b"II": "little", b"MM": "big"}.get(head[:2])
    if order is None:
        return None
    magic = _u(head, 2, 2, order)
    if magic == 42:
        count_size, entry_size, offset = 2, 12, _u(head, 4, 4, order)
    elif magic == 43:                    # BigTIFF: 8-byte offsets and counts
        count_size, entry_size, offset = 8, 20, _u(head, 8, 8, order)
    else:
        return None
    count = _u(_read_at(fh, offset, count_size), 0, count_size, order)
    entries = _read_at(fh, offset + count_size, min(count, 4096) * entry_size)
    sides: dict[int, int] = {}
    value_at = 8 if magic == 42 else 12
    for i in range(0, len(entries), entry_size):
        tag, kind = _u(entries, i, 2, order), _u(entries, i + 2, 2, order)
        if tag in (256, 257):            # ImageWidth, ImageLength: SHORT (3) or LONG (4) or LONG8 (16)
            width = {3: 2, 4: 4, 16: 8}.get(kind)
            if width is None:
                raise ValueError("odd TIFF size type")
            sides[tag] = _u(entries, i + value_at, width, order)
    return (sides[256], sides[257]) if 256 in sides and 257 in sides else None


def _text_tokens(fh: BinaryIO, start: int) -> list[bytes]:
    """Whitespace-separated tokens of a PNM/PFM header, '#' comments left out."""
    fh.seek(start)
    text = re.sub(rb"#[^\n\r]*", b" ", fh.read(_TEXT_HEADER))
    return text.split()


def _pnm(head: bytes, fh: BinaryIO):
    magic = head[:2]
    if magic in (b"P1", b"P2", b"P3", b"P4", b"P5", b"P6", b"PF", b"Pf") and head[2:3].isspace():
        tokens = _text_tokens(fh, 2)
        return int(tokens[0]), int(tokens[1])
    if magic == b"P7" and head[2:3].isspace():   # PAM: "WIDTH n" and "HEIGHT n" lines up to ENDHDR
        fields = dict(re.findall(rb"^(WIDTH|HEIGHT)\s+(\d+)", _read_at(fh, 0, 0) + fh.read(_TEXT_HEADER),
                                 flags=re.MULTILINE))
        return int(fields[b"WIDTH"]), int(fields[b"HEIGHT"])
    return None


def _sun_raster(head: bytes, fh: BinaryIO):
    if head[:4] != b"\x59\xa6\x6a\x95":
        return None
    return _u(head, 4, 4), _u(head, 8, 4)


_HDR_RESOLUTION = re.compile(rb"\n([-+])Y (\d+) ([-+])X (\d+)\n")


def _hdr(head: bytes, fh: BinaryIO):
    if not head.startswith((b"#?RADIANCE", b"#?RGBE")):
        return None
    match = _HDR_RESOLUTION.search(_read_at(fh, 0, 0) + fh.read(_TEXT_HEADER))
    if match is None:
        return None
    return int(match[4]), int(match[2])


def _jpeg2000(head: bytes, fh: BinaryIO):
    if head[:12] != b"\x00\x00\x00\x0cjP  \r\n\x87\n":
        return None
    data = _read_at(fh, 0, 0) + fh.read(_TEXT_HEADER)
    at = data.find(b"ihdr")              # image header box inside jp2h: height, width (4 bytes each)
    if at < 0:
        return None
    return _u(data, at + 8, 4), _u(data, at + 4, 4)


def _avif(head: bytes, fh: BinaryIO):
    if head[4:8] != b"ftyp" or head[8:12] not in (b"avif", b"avis", b"heic", b"heix", b"mif1"):
        return None
    data = _read_at(fh, 0, 0) + fh.read(16 * _TEXT_HEADER)
    at = data.find(b"ispe")              # image spatial extents: version/flags, width, height
    if at < 0:
        return None
    return _u(data, at + 8, 4), _u(data, at + 12, 4)
