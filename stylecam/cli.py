"""`stylecam`: argv -> RunConfig -> runner. Subcommands: info, demo, study."""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import sys
from pathlib import Path

from stylecam import __version__, argtypes, folders, limits, signals
from stylecam.cluster import options as cluster_options
from stylecam.config import DEFAULT_STYLE, DEVICES, EngineConfig, RunConfig
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

SUBCOMMANDS = ("info", "demo", "study")

log = logging.getLogger("stylecam")


class ArgumentParser(argparse.ArgumentParser):
    """argparse with stylecam's one-line errors: ``PROG: error: MESSAGE (see `PROG --help`)``, exit 2.
    The message is kept in ``last_error`` so that main can repeat it as JSON."""

    last_error: str | None = None

    def error(self, message: str):
        ArgumentParser.last_error = message
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


_int_at_least = argtypes.int_at_least
_positive_int = argtypes.positive_int
_non_negative_int = argtypes.non_negative_int


def _count_or_auto(text: str) -> int | None:
    """argparse type: "auto" (None) or a whole number >= 1."""
    if text == "auto":
        return None
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1 or 'auto', got {text!r}") from None


MAX_SIZE = 8192  # px: the longest --size; larger inference frames only exhaust the memory


def long_side(text: str) -> int:
    """argparse type: a long side in pixels, 8..MAX_SIZE."""
    value = _positive_int(text)
    if value < 8:
        raise argparse.ArgumentTypeError(f"expected a long side of at least 8 pixels, got {text!r}")
    if value > MAX_SIZE:
        raise argparse.ArgumentTypeError(f"expected a long side of at most {MAX_SIZE} pixels, got {text!r}")
    return value


_size = long_side


def long_side_or_auto(text: str) -> int | str:
    """argparse type: "auto" (the camera's adaptive size) or a long side (see long_side)."""
    if text == "auto":
        return "auto"
    try:
        return long_side(text)
    except argparse.ArgumentTypeError as err:
        raise argparse.ArgumentTypeError(f"{err} (or auto, for the camera)") from None


_strength = argtypes.fraction


def _chain(text: str) -> tuple[str, ...]:
    names = tuple(s.strip() for s in text.split(","))
    if not names or not all(names):
        raise argparse.ArgumentTypeError(f"expected style names separated by commas, got {text!r}")
    return names


def add_engine_arguments(parser: argparse.ArgumentParser, chain: bool = True, size_auto: bool = False) -> None:
    """Flags shared by `stylecam` and `stylecam demo`: device, variant, size (size_auto: N or auto),
    weights folder."""
    variant = parser.add_mutually_exclusive_group()
    variant.add_argument("--lite", dest="variant", action="store_const", const="lite",
                         help="use the lite (faster) models (default on the CPU)")
    variant.add_argument("--full", dest="variant", action="store_const", const="full",
                         help="use the full models (default on a GPU)")
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="onnxruntime providers: auto tries TensorRT > CUDA > CPU")
    parser.add_argument("--fp16", action="store_true", help="half precision on a GPU (ignored on the CPU)")
    parser.add_argument("--int8", action="store_true",
                        help="int8 copies of the models on the CPU (weights/int8/; faster, within about 2-5 grey "
                             "levels of float32; ignored on a GPU)")
    parser.add_argument("--threads", type=_positive_int, default=None, metavar="N", help="CPU threads per model")
    if size_auto:
        parser.add_argument("--size", type=long_side_or_auto, default=None, metavar="N|auto",
                            help=f"long side of the inference resolution, 8..{MAX_SIZE}; results are resized "
                                 "back to the input size; smaller frames keep their own size unless --upscale. "
                                 "auto (camera): the largest size, from the frame's own "
                                 "down to 0.4 of it (not under 96 px), at which the stylising keeps up with the "
                                 "camera")
    else:
        parser.add_argument("--size", type=_size, default=None, metavar="N",
                            help=f"long side of the inference resolution, 8..{MAX_SIZE}; results are resized back "
                                 "to the input size; smaller frames keep their own size unless --upscale")
    parser.add_argument("--upscale", action="store_true",
                        help="let --size enlarge frames smaller than it (default: those are stylised at their own size)")
    parser.add_argument("--weights-dir", default=None, metavar="DIR",
                        help="folder of style models (default: $STYLECAM_WEIGHTS, else weights/ of the installation)")
    parser.add_argument("--json", action="store_true",
                        help="print a machine-readable summary on stdout (for an exit-2 error: an error object)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr (no progress bars)")


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
    which.add_argument("--chain", type=_chain, default=None, metavar="A,B,...",
                       help="several styles applied in order: A, then B, ...")
    parser.add_argument("--repeat", type=argtypes.int_at_least(1, limits.MAX_REPEAT), default=1, metavar="N",
                        help=f"apply the whole chain N times, 1..{limits.MAX_REPEAT} "
                             "(--chain wave,muse --repeat 3 = 6 passes)")
    parser.add_argument("--list-styles", action="store_true", help="list the styles found and exit")
    parser.add_argument("--strength", type=_strength, default=1.0, metavar="S", help="0 = original .. 1 = fully stylised")
    parser.add_argument("--preserve-color", action="store_true",
                        help="keep the original colours, take the luminance from the stylised frame")
    parser.add_argument("--prepad", type=_non_negative_int, default=0, metavar="P",
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
                        help="camera: also send the stylised frames to a virtual camera that video calls and OBS "
                             "can pick as a webcam (pip install pyvirtualcam; Linux: v4l2loopback, Windows/macOS: "
                             "OBS Studio); with --no-window, no -o is needed")
    parser.add_argument("--virtual-camera-device", default=None, metavar="DEV",
                        help="the virtual camera to use, e.g. /dev/video10 (implies --virtual-camera; default: "
                             "the first found)")
    parser.add_argument("--fullscreen", action="store_true",
                        help="camera: start with the window filling the screen (key f toggles it; no effect "
                             "with --no-window)")
    parser.add_argument("--stabilise", "--stabilize", type=_strength, default=0.0, metavar="A",
                        help="videos and camera: hold the previous output where the scene stood still, "
                             "against flicker (0 = off, 0.5-0.8 = less flicker, 1 = freeze still areas)")
    parser.add_argument("--batch", type=_count_or_auto, default=None, metavar="N|auto",
                        help="frames per inference call for videos (auto: 1; batches measured slower on the "
                             "CPU and on a GPU)")
    parser.add_argument("--workers", type=_count_or_auto, default=None, metavar="N|auto",
                        help="videos and camera: frames stylised at once (auto: one per core, up to 4 "
                             "for videos and, on the CPU, 2 for the camera, the cores split between them unless "
                             "--threads; 1 for the camera on a GPU); with the camera, --workers 1 is one frame at a time, the lower latency "
                             "for slow styles")
    parser.add_argument("--classify", default=None, metavar="MODEL",
                        help="show a classifier's top-3 labels for the original and the stylised frame "
                             "(a .onnx file or a shipped name: cifar10, cifar10-fast, mnist, fashion-mnist)")
    parser.add_argument("--max-frames", type=_positive_int, default=None, metavar="N", help="stop after N frames per source")
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
    auto_size = args.size == "auto"
    engine = EngineConfig(styles=tuple(styles), repeat=args.repeat, variant=args.variant, padding=args.padding,
                          device=args.device, fp16=args.fp16, int8=args.int8, threads=args.threads,
                          size=None if auto_size else args.size, upscale=args.upscale,
                          strength=args.strength, preserve_color=args.preserve_color, prepad=args.prepad,
                          weights_dir=args.weights_dir)
    return RunConfig(engine=engine, sources=tuple(args.sources), output=args.output, window=args.window,
                     mirror=args.mirror, fullscreen=args.fullscreen, camera_size=args.camera_size,
                     camera_fps=args.camera_fps, camera_format=args.camera_format,
                     virtual_camera=args.virtual_camera or args.virtual_camera_device is not None,
                     virtual_camera_device=args.virtual_camera_device, auto_size=auto_size,
                     stabilise=args.stabilise, save_steps=args.save_steps, json=args.json, batch=args.batch,
                     workers=args.workers, classify=args.classify, max_frames=args.max_frames,
                     max_pixels=args.max_pixels,
                     progress=args.progress and not args.quiet)


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.ERROR if quiet else logging.INFO)
    log.propagate = False


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, default=str))


def list_styles(weights_dir: str | None, as_json: bool) -> int:
    from stylecam.styles import GET_STYLES_HINT, Registry, format_table

    registry = Registry(weights_dir)
    rows = registry.table()
    if as_json:
        _print_json({"weights_dir": str(registry.root), "styles": rows,
                     "problems": [{"path": str(p), "error": e} for p, e in registry.problems]})
        return 0
    if rows:
        print(format_table(rows))
    else:
        print(f"no style models in {registry.root} ({GET_STYLES_HINT})")
    for path, error in registry.problems:
        log.warning("stylecam: ignored %s: %s", path, error)
    return 0


def info(argv: list[str]) -> int:
    parser = ArgumentParser(prog="stylecam info",
                            description="version, onnxruntime providers, styles and cameras found")
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="onnxruntime providers to report: auto tries TensorRT > CUDA > CPU")
    parser.add_argument("--weights-dir", default=None, metavar="DIR",
                        help="folder of style models (default: $STYLECAM_WEIGHTS, else weights/ of the installation)")
    parser.add_argument("--json", action="store_true", help="print the same facts as JSON on stdout")
    parser.add_argument("--no-cameras", dest="cameras", action="store_false",
                        help="do not look for cameras (opening each index can take a moment)")
    cluster_options.add_info_argument(parser)   # cluster hook: --cluster [ADDRESS]
    args = parser.parse_args(argv)
    from stylecam.session import runtime_info
    from stylecam.sources import CAMERA_PROBE, describe_cameras
    from stylecam.styles import Registry, classifier_files

    registry = Registry(args.weights_dir)
    data = {"stylecam": __version__, "python": sys.version.split()[0], **runtime_info(args.device),
            "weights_dir": str(registry.root), "styles": registry.table(),
            "classifiers": [str(p) for p in classifier_files(registry.root)]}
    if args.cameras:
        data["cameras"] = describe_cameras(CAMERA_PROBE)
    data["cluster"] = cluster_options.info_facts(args.cluster)   # cluster hook
    if args.json:
        _print_json(data)
        return 0
    print(f"stylecam {data['stylecam']} (python {data['python']}, onnxruntime {data['onnxruntime']})")
    print(f"providers available: {', '.join(data['providers_available'])}")
    print(f"providers used ({args.device}): {', '.join(data['providers_used'])}")
    for provider, why in data["providers_unusable"].items():
        print(f"  {provider} not usable: {why}")
    print(f"styles in {data['weights_dir']}: "
          + (", ".join(sorted({r['name'] for r in data['styles']})) or "none"))
    print(f"classifiers: {', '.join(Path(p).name for p in data['classifiers']) or 'none'}")
    if args.cameras:
        print("cameras: " + (", ".join(_camera_text(c) for c in data["cameras"])
                             or f"none opened at indices 0..{CAMERA_PROBE - 1}"))
    print("\n".join(cluster_options.info_lines(data["cluster"])))   # cluster hook
    return 0


def _camera_text(camera: dict) -> str:
    """{"index": 0, "size": "640x480", "fps": 30.0} -> "0 (640x480, 30 FPS)"."""
    facts = [camera["size"]] if camera["size"] else []
    facts += [f"{camera['fps']:g} FPS"] if camera["fps"] else []
    return f"{camera['index']}" + (f" ({', '.join(facts)})" if facts else "")


def study(argv: list[str]) -> int:
    try:
        module = importlib.import_module("stylecam.study")
    except ModuleNotFoundError as err:
        if err.name != "stylecam.study":
            raise
        raise UserError("`stylecam study` is not available: this installation has no stylecam.study module",
                        "install the complete stylecam package") from None
    parser = ArgumentParser(prog="stylecam study",
                            description="what repeated and chained filtering does: sheets, metrics, plots")
    module.add_arguments(parser)
    with contextlib.suppress(argparse.ArgumentError):  # unless the study has its own -q
        parser.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr (no progress bar)")
    args = parser.parse_args(argv)
    _setup_logging(args.quiet)
    if args.quiet:
        args.no_progress = True
    return int(module.run(args) or 0)


def demo(argv: list[str]) -> int:
    from stylecam import demo as demo_module

    parser = ArgumentParser(prog="stylecam demo", description=demo_module.DESCRIPTION,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    demo_module.add_arguments(parser)
    add_engine_arguments(parser)
    args = parser.parse_args(argv)
    _setup_logging(args.quiet)
    args.progress = args.progress and not args.quiet
    return demo_module.run(args)


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
            if argv and argv[0] in SUBCOMMANDS:
                return {"info": info, "demo": demo, "study": study}[argv[0]](argv[1:])
            args = build_parser().parse_args(argv)
            _setup_logging(args.quiet)
            if args.list_styles:
                return list_styles(args.weights_dir, args.json)
            config = config_from_args(args)
            if args.cluster is not None:   # cluster hook: the files on a Ray cluster
                code, summary = cluster_options.run_from_args(args, config)
            else:
                from stylecam.runner import run

                code, summary = run(config)
            if config.json:
                _print_json(summary)
            return code
    except UserError as err:
        print(f"stylecam: error: {err}", file=sys.stderr)
        if wants_json(argv):
            _print_json(json_error(err.message, err.hint, err.exit_code))
        return err.exit_code
    except SystemExit as exit_:  # argparse: --help (0) or a bad flag (2, message already printed)
        code = exit_.code if isinstance(exit_.code, int) else 2
        if code == 2 and ArgumentParser.last_error is not None and wants_json(argv):
            _print_json(json_error(ArgumentParser.last_error, None, 2))
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
