"""`stylecam`: argv -> RunConfig -> runner. Nothing else lives here (--list-styles: stylecam.info).

Subcommands (COMMANDS) are modules that provide ``DESCRIPTION``, ``add_arguments(parser)`` and
``run(args) -> int``.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys

from stylecam import __version__, argtypes, demo, folders, info, limits, signals, study
from stylecam.cluster import options as cluster_options
from stylecam.config import DEFAULT_STYLE, RunConfig
from stylecam.engine_args import add_engine_arguments, engine_config
from stylecam.errors import UserError

DESCRIPTION = """Turn a webcam, video files, images or folders into moving paintings.

Chain and repeat: --chain a,b applies style a, then style b. --repeat N applies the whole
chain N times. So `stylecam --chain wave,muse --repeat 3` makes six passes:
wave, muse, wave, muse, wave, muse."""

EPILOG = """examples:
  stylecam                                   camera 0, default style, a window
  stylecam --size auto --virtual-camera      camera 0 at its frame rate, also as a webcam for video calls
  stylecam clip.mp4 -o out.mp4 --style wave  a video, audio kept
  stylecam photos/ -o styled/ --style muse   a folder (mirrored into styled/)
  stylecam --chain wave,muse --repeat 3 photo.jpg --save-steps
  stylecam clip.mp4 --int8 --size 480          fastest on a CPU: int8 models, 480 px inference
  stylecam --list-styles | stylecam info | stylecam demo
  stylecam study IMAGES... --styles wave,muse --repeat 10 -o study/

live keys: n/p next/previous style, 1-9 pick style, c chain on/off, +/- repeat,
  [ ] strength, o original side by side, m mirror, f fullscreen, s snapshot, r record, space pause, q/Esc quit.
exit codes: 0 done, 1 some inputs could not be read (in full), 2 bad input,
  128 + the signal when stopped: 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP (videos kept, playable; docs/failure.md).
with --json, an exit-2 error is also written to stdout as {"error": ..., "hint": ..., "exit_code": 2}."""

#: subcommand -> its module: DESCRIPTION, add_arguments(parser), run(args) -> int
COMMANDS = {"info": info, "demo": demo, "study": study}

log = logging.getLogger("stylecam")


class ArgumentParser(argparse.ArgumentParser):
    """argparse with stylecam's one-line errors: ``PROG: error: MESSAGE (see `PROG --help`)``, exit 2.
    The message is kept in ``last_error`` so that main can repeat it as JSON."""

    last_error: str | None = None

    def error(self, message: str):
        ArgumentParser.last_error = message
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="stylecam", description=DESCRIPTION, epilog=EPILOG,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", nargs="*", metavar="SOURCE",
                        help="camera index, video, image, folder or glob (default: camera 0)")
    parser.add_argument("-o", "--output", default=None,
                        help="output file or folder (default: NAME_stylised.EXT next to each input); "
                             "videos: .mp4, .mkv, .mov, .webm, .avi, or .gif for an animated GIF")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--style", default=None, metavar="NAME|FILE.onnx",
                       help=f"one style, by name or model file (default: {DEFAULT_STYLE})")
    which.add_argument("--chain", type=argtypes.style_names, default=None, metavar="A,B,...",
                       help="several styles applied in order: A, then B, ...")
    parser.add_argument("--repeat", type=argtypes.int_at_least(1, limits.MAX_REPEAT), default=1, metavar="N",
                        help=f"apply the whole chain N times, 1..{limits.MAX_REPEAT} "
                             "(--chain wave,muse --repeat 3 = 6 passes)")
    parser.add_argument("--list-styles", action="store_true", help="list the styles found and exit")
    parser.add_argument("--strength", type=argtypes.fraction, default=1.0, metavar="S", help="0 = original .. 1 = fully stylized")
    parser.add_argument("--preserve-color", action="store_true",
                        help="keep the original colors, take the luminance from the stylized frame")
    parser.add_argument("--prepad", type=argtypes.non_negative_int, default=0, metavar="P",
                        help="reflect-pad the frame by P pixels before each pass and crop after")
    parser.add_argument("--padding", default="reflect", choices=("reflect", "zero", "replicate"),
                        help="use the style models trained/exported with this padding mode")
    parser.add_argument("--save-steps", action="store_true",
                        help="also write every step of chain x repeat (first frame of videos) and a contact sheet")
    parser.add_argument("--no-window", dest="window", action="store_false",
                        help="camera without a window: record to -o (or send to --virtual-camera) until stopped")
    parser.add_argument("--mirror", action="store_true",
                        help="camera: flip the picture left-right, like a mirror (key m toggles it)")
    parser.add_argument("--camera-size", type=argtypes.frame_size, default=None, metavar="WxH",
                        help="camera: ask it for frames of WIDTHxHEIGHT pixels, each 16..8192, e.g. 1280x720 "
                             "(default: its own; a camera that gives another size is said so, and its size is used)")
    parser.add_argument("--camera-fps", type=argtypes.float_in(1.0, 240.0), default=None, metavar="FPS",
                        help="camera: ask it for this many frames a second, 1..240 (default: its own)")
    parser.add_argument("--camera-format", type=argtypes.fourcc, default=None, metavar="FOURCC",
                        help="camera: ask it for this pixel format, e.g. MJPG (many USB webcams give 1280x720 "
                             "and above at 30 FPS only as MJPEG) or YUYV (default: its own)")
    parser.add_argument("--virtual-camera", action="store_true",
                        help="camera: also send the stylized frames to a virtual camera that video calls and OBS "
                             "can pick as a webcam (pip install pyvirtualcam; Linux: v4l2loopback, Windows/macOS: "
                             "OBS Studio); with --no-window, no -o is needed")
    parser.add_argument("--virtual-camera-device", default=None, metavar="DEV",
                        help="the virtual camera to use, e.g. /dev/video10 (implies --virtual-camera; default: "
                             "the first found)")
    parser.add_argument("--fullscreen", action="store_true",
                        help="camera: start with the window filling the screen (key f toggles it; no effect "
                             "with --no-window)")
    stabilize = parser.add_argument(
        "--stabilize", type=argtypes.fraction, default=0.0, metavar="A",
        help="videos and camera: hold the previous output where the scene stood still, "
             "against flicker (0 = off, 0.5-0.8 = less flicker, 1 = freeze still areas)")
    argtypes.add_hidden_alias(parser, "--stabilise", stabilize)
    parser.add_argument("--batch", type=argtypes.count_or_auto, default=None, metavar="N|auto",
                        help="frames per inference call for videos (auto: 1; batches measured slower on the "
                             "CPU and on a GPU)")
    parser.add_argument("--workers", type=argtypes.count_or_auto, default=None, metavar="N|auto",
                        help="videos and camera: frames stylized at once (auto: one per core, up to 4 "
                             "for videos and, on the CPU, 2 for the camera, the cores split between them unless "
                             "--threads; 1 for the camera on a GPU); with the camera, --workers 1 is one frame at a time, the lower latency "
                             "for slow styles")
    parser.add_argument("--classify", default=None, metavar="MODEL",
                        help="show a classifier's top-3 labels for the original and the stylized frame "
                             "(a .onnx file or a shipped name: cifar10, cifar10-fast, mnist, fashion-mnist)")
    parser.add_argument("--max-frames", type=argtypes.positive_int, default=None, metavar="N", help="stop after N frames per source")
    parser.add_argument("--max-pixels", type=argtypes.pixel_count, default=limits.DEFAULT_MAX_PIXELS, metavar="N",
                        help="refuse pictures and video frames of more pixels (width x height; images are checked "
                             "in their header, before decoding), e.g. 100M; in a folder such files are skipped "
                             f"(default: {limits.DEFAULT_MAX_PIXELS // 1_000_000}M)")
    parser.add_argument("--version", action="version", version=f"stylecam {__version__}")
    add_engine_arguments(parser, size_auto=True)
    cluster_options.add_arguments(parser)   # cluster hook: --cluster [ADDRESS] (stylecam.cluster)
    return parser


def config_from_args(args: argparse.Namespace) -> RunConfig:
    styles = args.chain or ((args.style,) if args.style else (DEFAULT_STYLE,))
    engine = engine_config(args, styles=tuple(styles), repeat=args.repeat, padding=args.padding,
                           strength=args.strength, preserve_color=args.preserve_color, prepad=args.prepad)
    return RunConfig(engine=engine, sources=tuple(args.sources), output=args.output, window=args.window,
                     mirror=args.mirror, fullscreen=args.fullscreen, camera_size=args.camera_size,
                     camera_fps=args.camera_fps, camera_format=args.camera_format,
                     virtual_camera=args.virtual_camera or args.virtual_camera_device is not None,
                     virtual_camera_device=args.virtual_camera_device, auto_size=args.size == "auto",
                     stabilize=args.stabilize, save_steps=args.save_steps, json=args.json, batch=args.batch,
                     workers=args.workers, classify=args.classify, max_frames=args.max_frames,
                     max_pixels=args.max_pixels,
                     progress=args.progress and not args.quiet)


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.ERROR if quiet else logging.INFO)
    log.propagate = False


def build_command_parser(name: str) -> argparse.ArgumentParser:
    """The parser of subcommand ``name`` (a key of COMMANDS), its flags added by its module."""
    module = COMMANDS[name]
    parser = ArgumentParser(prog=f"stylecam {name}", description=module.DESCRIPTION,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    return parser


def run_subcommand(name: str, argv: list[str]) -> int:
    """Parse ``argv`` for subcommand ``name`` and run it; its exit code."""
    args = build_command_parser(name).parse_args(argv)
    _setup_logging(getattr(args, "quiet", False))   # `stylecam info` prints its facts whatever the flags
    return int(COMMANDS[name].run(args) or 0)


def wants_json(argv: list[str]) -> bool:
    """Whether the command line asks for JSON output (``--json`` before any ``--``)."""
    return "--json" in (argv[:argv.index("--")] if "--" in argv else argv)


def json_error(message: str, hint: str | None, exit_code: int) -> dict:
    """The object written on stdout for an error under --json: {"error", "hint", "exit_code"}."""
    return {"error": message, "hint": hint, "exit_code": exit_code}


def main(argv: list[str] | None = None) -> int:
    """Entry point of `stylecam`; returns the exit code. SIGTERM and SIGHUP stop it as Ctrl-C does
    (stylecam.signals): outputs finalised, one line, exit code 128 + the signal's number."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _setup_logging(quiet=False)  # until the command's own flags are parsed
    # FFmpeg's own lines ("moov atom not found") only repeat the one-line errors stylecam prints;
    # set OPENCV_FFMPEG_LOGLEVEL (e.g. 24 = warnings) to see them
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    with signals.stop_on_signals():
        return _run_command(argv)


def _run_command(argv: list[str]) -> int:
    ArgumentParser.last_error = None
    try:
        with folders.removed_if_empty_on_failure():   # a failed run leaves no empty output folder
            if argv and argv[0] in COMMANDS:
                return run_subcommand(argv[0], argv[1:])
            args = build_parser().parse_args(argv)
            _setup_logging(args.quiet)
            if args.list_styles:
                return info.list_styles(args.weights_dir, args.json)
            config = config_from_args(args)
            if args.cluster is not None:   # cluster hook: the files on a Ray cluster
                code, summary = cluster_options.run_from_args(args, config)
            else:
                from stylecam.runner import run

                code, summary = run(config)
            if config.json:
                info.print_json(summary)
            return code
    except UserError as err:
        print(f"stylecam: error: {err}", file=sys.stderr)
        if wants_json(argv):
            info.print_json(json_error(err.message, err.hint, err.exit_code))
        return err.exit_code
    except SystemExit as exit_:  # argparse: --help (0) or a bad flag (2, message already printed)
        code = exit_.code if isinstance(exit_.code, int) else 2
        if code == 2 and ArgumentParser.last_error is not None and wants_json(argv):
            info.print_json(json_error(ArgumentParser.last_error, None, 2))
        return code
    except KeyboardInterrupt:
        with contextlib.suppress(OSError):   # after a SIGHUP there may be no terminal to print to
            print(f"stylecam: {signals.describe()}", file=sys.stderr)
        return signals.exit_code()
    except BrokenPipeError:  # output piped into a reader that stopped early, e.g. `| head`
        try:  # keep the interpreter from failing again when it flushes stdout at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 0


if __name__ == "__main__":
    sys.exit(main())
