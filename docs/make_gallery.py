"""Draw the README gallery: one photo through every shipped style (reflect padding).

    python docs/make_gallery.py PHOTO [-o docs/gallery.jpg] [--variant lite] [--size 384]

Writes a labelled JPEG grid: the photo, then one cell per style found in weights/.
"""
from __future__ import annotations

import argparse
import sys

import cv2

from stylecam import imageops
from stylecam.pipeline import Stylizer
from stylecam.styles import Registry


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("photo")
    p.add_argument("-o", "--output", default="docs/gallery.jpg")
    p.add_argument("--variant", default="lite", choices=("lite", "full"))
    p.add_argument("--size", type=int, default=384, help="long side the photo is resized to")
    p.add_argument("--columns", type=int, default=7)
    args = p.parse_args(argv)

    frame = cv2.imread(args.photo)  # uint8 BGR (H, W, 3)
    if frame is None:
        print(f"cannot read {args.photo}", file=sys.stderr)
        return 2
    frame = imageops.resize_long_side(frame, args.size)
    registry = Registry()
    cells = [("photo", frame)]
    for name in registry.names():
        entry = registry.find(name, variant=args.variant)
        if entry.variant == args.variant:
            cells.append((name, Stylizer([name], variant=args.variant)(frame)))
    sheet = imageops.contact_sheet(cells, columns=args.columns, cell_width=240)
    cv2.imwrite(args.output, sheet, [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {args.output} ({len(cells) - 1} styles)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
