"""argparse types shared by `stylecam` and `stylecam-train`: each parses one value or raises
argparse.ArgumentTypeError with a message naming what was expected (argparse then exits 2).
output_file checks an output path before any work and raises UserError (the scripts' one-line error)."""
from __future__ import annotations

import argparse
import math
import os
import re
import tempfile
from pathlib import Path

from stylecam.errors import UserError
from stylecam.folders import make_dirs


def int_at_least(minimum: int, maximum: int | None = None):
    """A whole number >= minimum (and <= maximum when given)."""
    span = f"≥ {minimum}" if maximum is None else f"within {minimum}..{maximum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected a whole number {span}, got {text!r}")
        return value
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def float_in(low: float = -math.inf, high: float = math.inf, low_open: bool = False, high_open: bool = False):
    """A finite number within low..high (ends excluded when *_open); NaN and inf are refused."""
    if high == math.inf:
        span = "" if low == -math.inf else f" {'>' if low_open else '≥'} {low:g}"
    else:
        excluded = " and ".join(f"{v:g}" for v, o in ((low, low_open), (high, high_open)) if o)
        span = f" within {low:g}..{high:g}" + (f", excluding {excluded}" if excluded else "")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        ok = math.isfinite(value) and (value > low if low_open else value >= low) and \
            (value < high if high_open else value <= high)
        if not ok:
            raise argparse.ArgumentTypeError(f"expected a {'finite ' if not span else ''}number{span}, got {text!r}")
        return value
    return parse


finite_float = float_in()
non_negative_float = float_in(0.0)
positive_float = float_in(0.0, low_open=True)
fraction = float_in(0.0, 1.0)

def count_or_auto(text: str) -> int | None:
    """"auto" (None) or a whole number >= 1."""
    if text == "auto":
        return None
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1 or 'auto', got {text!r}") from None


MAX_SIZE = 8192  # px: the longest --size; larger inference frames only exhaust the memory


def long_side(text: str) -> int:
    """A long side in pixels, 8..MAX_SIZE."""
    value = positive_int(text)
    if value < 8:
        raise argparse.ArgumentTypeError(f"expected a long side of at least 8 pixels, got {text!r}")
    if value > MAX_SIZE:
        raise argparse.ArgumentTypeError(f"expected a long side of at most {MAX_SIZE} pixels, got {text!r}")
    return value


def long_side_or_auto(text: str) -> int | str:
    """"auto" (the camera's adaptive size) or a long side (see long_side)."""
    if text == "auto":
        return "auto"
    try:
        return long_side(text)
    except argparse.ArgumentTypeError as err:
        raise argparse.ArgumentTypeError(f"{err} (or auto, for the camera)") from None


def style_names(text: str) -> tuple[str, ...]:
    """Style names separated by commas, none empty: "wave, muse" -> ("wave", "muse")."""
    names = tuple(s.strip() for s in text.split(","))
    if not names or not all(names):
        raise argparse.ArgumentTypeError(f"expected style names separated by commas, got {text!r}")
    return names


_MEGAPIXELS = re.compile(r"(\d+(?:\.\d+)?)\s*(?:M|MP)", re.IGNORECASE)


def pixel_count(text: str) -> int:
    """A number of pixels ≥ 1: a whole number (50000000) or megapixels with M or MP (50M, 12.5MP)."""
    match = _MEGAPIXELS.fullmatch(text.strip())
    try:
        value = round(float(match[1]) * 1_000_000) if match else int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of pixels such as 50000000 or 50M, got {text!r}")
    return value


_SIZE = re.compile(r"(\d+)[xX](\d+)")


def frame_size(text: str) -> tuple[int, int]:
    """WIDTHxHEIGHT, both whole numbers within 16..8192, e.g. 1280x720 -> (1280, 720)."""
    match = _SIZE.fullmatch(text.strip())
    size = (int(match[1]), int(match[2])) if match else None
    if size is None or not all(16 <= side <= 8192 for side in size):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT with each side within 16..8192, e.g. 1280x720; "
                                         f"got {text!r}")
    return size


def fourcc(text: str) -> str:
    """A video FOURCC: four letters, digits or spaces, e.g. MJPG or YUYV (returned upper-case)."""
    if len(text) != 4 or not all(c.isalnum() or c == " " for c in text) or not text.isascii():
        raise argparse.ArgumentTypeError(f"expected a four-character pixel format such as MJPG or YUYV, got {text!r}")
    return text.upper()


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def file_stem(text: str) -> str:
    """A name usable as a file stem: letters, digits, '_', '-', '.'; no folder parts, not starting with '.'."""
    if not _NAME.fullmatch(text) or ".." in text:
        raise argparse.ArgumentTypeError(
            f"expected a plain name (letters, digits, '_', '-', '.'; no '/', no leading '.'), got {text!r}")
    return text


def output_file(text: str, flag: str, suffixes: tuple[str, ...], example: str, hint: str = "") -> Path:
    """An output file name given to ``flag``: one of ``suffixes`` (e.g. (".json",)), not a folder, in a
    folder that exists (or can be made) and can be written. ``example``: a file name for the hints;
    ``hint``: added to the hint for a wrong suffix. UserError otherwise; call it before any work."""
    out = Path(text)
    if out.is_dir() or text.endswith(("/", os.sep)):
        raise UserError(f"{flag} {text} is a folder", f"give a file name, e.g. {flag} {out / example}")
    if out.suffix.lower() not in suffixes:
        raise UserError(f"{flag} must name a {' or '.join(suffixes)} file, got {text}",
                        f"e.g. {flag} /tmp/{example}{hint}")
    try:
        make_dirs(out.parent)
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.stem}.", suffix=".probe"):
            pass
    except OSError as err:
        raise UserError(f"cannot write {flag} {text}: {err.strerror or err} ({out.parent})",
                        "choose a writable folder") from None
    return out


def add_hidden_alias(parser: argparse.ArgumentParser, flag: str, option: argparse.Action) -> None:
    """Accept ``flag`` (an earlier spelling) for ``option``: same value type and destination, not in --help."""
    parser.add_argument(flag, dest=option.dest, type=option.type, metavar=option.metavar,
                        default=argparse.SUPPRESS, help=argparse.SUPPRESS)
