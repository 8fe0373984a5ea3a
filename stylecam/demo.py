"""`stylecam demo`: the bundled clip through --chain wave,muse --repeat 3, headless.

Writes the stylized clip and a contact sheet of every step of the middle frame.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from stylecam import signals
from stylecam.argtypes import positive_int
from stylecam.engine_args import add_engine_arguments, engine_config
from stylecam.errors import UserError

DEMO_CHAIN = ("wave", "muse")
DEMO_REPEAT = 3
DEFAULT_CLIP = Path(__file__).resolve().parent / "data" / "default.mp4"

DESCRIPTION = f"""Run the bundled clip (people walking, OpenCV sample data) through
--chain {','.join(DEMO_CHAIN)} --repeat {DEMO_REPEAT} (six passes) and write the result and a contact
sheet of every step. Needs no camera and no display."""

log = logging.getLogger("stylecam")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", default="stylecam-demo", help="output folder")
    parser.add_argument("--input", default=str(DEFAULT_CLIP), help="clip to use instead of the bundled one")
    parser.add_argument("--max-frames", type=positive_int, default=None, metavar="N", help="stop after N frames")
    add_engine_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Stylize the clip (or --input) and write it and the contact sheet into --output; 0, or 128 + the
    signal's number when stopped (the video holds the frames done so far)."""
    from stylecam.imageops import contact_sheet
    from stylecam.pipeline import Stylizer
    from stylecam.runner import Interrupted, process_video
    from stylecam.sinks import write_image
    from stylecam.sources import SourceError, VideoFileSource
    from stylecam.styles import Registry

    registry = Registry(args.weights_dir)
    missing = [name for name in DEMO_CHAIN if name not in registry.names()]
    if missing:
        raise UserError(
            f"the demo needs the styles {' and '.join(DEMO_CHAIN)}; missing in {registry.root}: {', '.join(missing)}",
            "train them with `stylecam-train style --style-image PAINTING.jpg --name wave` (and muse), "
            "or point --weights-dir / STYLECAM_WEIGHTS at a folder that has them")
    if not Path(args.input).is_file():
        raise UserError(f"demo clip not found: {args.input}", "reinstall stylecam or pass --input CLIP")
    stylizer = Stylizer.from_config(engine_config(args, styles=DEMO_CHAIN, repeat=DEMO_REPEAT), registry=registry)
    out_dir = Path(args.output)
    out_video = out_dir / f"demo_{'-'.join(DEMO_CHAIN)}_x{DEMO_REPEAT}.mp4"
    try:
        source = VideoFileSource(args.input)
    except SourceError as err:
        raise UserError(str(err), "pass a readable clip with --input") from None
    count = source.frame_count or 1
    if args.max_frames:
        count = min(count, args.max_frames)
    middle = None
    for i, frame in enumerate(source):
        if i == count // 2:
            middle = frame
            break
    source.close()
    try:
        summary = process_video(args.input, out_video, stylizer, max_frames=args.max_frames,
                                progress=args.progress and not args.quiet)
    except Interrupted as stop:
        log.warning("stylecam: %s: %s holds the frames done so far", signals.describe(), stop.summary.get("output"))
        return signals.exit_code()
    sheet_path = write_image(out_dir / "demo_steps.png", contact_sheet(stylizer.steps(middle), columns=4))
    summary.update({"contact_sheet": str(sheet_path), "stylecam": stylizer.describe()})
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        log.info("stylecam: wrote %s (%d frames, %.1f FPS) and %s", out_video, summary["frames"],
                 summary["fps"] or 0, sheet_path)
    return 0
