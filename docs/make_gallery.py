"""Draw the README gallery: one photo through every shipped style (reflect padding).

    python docs/make_gallery.py PHOTO [-o docs/gallery.jpg] [--variant lite] [--size 384]

Writes a labelled JPEG grid: the photo, then one cell per style found in weights/.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

from stylecam import imageops
from stylecam.argtypes import int_at_least, positive_int
from stylecam.errors import UserError
from stylecam.pipeline import Stylizer
from stylecam.styles import Registry

PROG = "make_gallery.py"
MIN_SIZE, MAX_SIZE = 64, 4096   # long side of the photo: smaller makes cells of a few pixels
IMAGE_EXTS = (".jpg", ".jpeg", ".png")


def check_output(text: str) -> Path:
    """-o: a .jpg/.jpeg/.png file, not a folder."""
    out = Path(text)
    if out.is_dir() or text.endswith(("/", "\\")):
        raise UserError(f"-o {text} is a folder", f"give an image file name, e.g. -o {out / 'gallery.jpg'}")
    if out.suffix.lower() not in IMAGE_EXTS:
        raise UserError(f"-o must name a {', '.join(IMAGE_EXTS)} file, got {text}", "e.g. -o /tmp/gallery.jpg")
    return out


def make_folder(out: Path) -> None:
    """Create the folder of ``out`` when missing (UserError when impossible)."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create the folder of -o {out}: {err.strerror or err}", "choose a writable folder") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("photo")
    p.add_argument("-o", "--output", default="docs/gallery.jpg", help=f"image file ({', '.join(IMAGE_EXTS)})")
    p.add_argument("--variant", default="lite", choices=("lite", "full"))
    p.add_argument("--size", type=int_at_least(MIN_SIZE, MAX_SIZE), default=384,
                   help=f"long side the photo is resized to ({MIN_SIZE}..{MAX_SIZE})")
    p.add_argument("--columns", type=positive_int, default=7)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except UserError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2


def run(args) -> int:
    out = check_output(args.output)
    frame = cv2.imread(args.photo)  # uint8 BGR (H, W, 3)
    if frame is None:
        raise UserError(f"cannot read {args.photo}", "give a photo OpenCV can read, e.g. a .jpg or .png")
    frame = imageops.resize_long_side(frame, args.size)
    registry = Registry()
    names = [name for name in registry.names() if args.variant in registry.variants(name)]
    if not names:
        have = sorted({e.variant for e in registry.entries if e.padding == "reflect"})
        raise UserError(f"no {args.variant} style models in {registry.root}",
                        f"use --variant {' or --variant '.join(have)}" if have else "get the style models first")
    make_folder(out)
    cells = [("photo", frame)]
    for name in names:
        cells.append((name, Stylizer([name], variant=args.variant, registry=registry)(frame)))
    sheet = imageops.contact_sheet(cells, columns=args.columns, cell_width=240)
    params = [cv2.IMWRITE_JPEG_QUALITY, 85] if out.suffix.lower() in (".jpg", ".jpeg") else []
    try:
        written = cv2.imwrite(str(out), sheet, params)
    except cv2.error:
        written = False
    if not written:
        raise UserError(f"cannot write {out}", "choose a writable folder and a .jpg or .png name")
    print(f"wrote {out} ({len(cells) - 1} styles)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
