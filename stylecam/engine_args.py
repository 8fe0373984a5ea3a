"""The engine flags shared by `stylecam` and `stylecam demo`, and the EngineConfig they give."""
from __future__ import annotations

import argparse

from stylecam import argtypes
from stylecam.config import DEVICES, EngineConfig


def add_engine_arguments(parser: argparse.ArgumentParser, size_auto: bool = False) -> None:
    """Flags shared by `stylecam` and `stylecam demo`: device, variant, size (size_auto: N or auto),
    weights folder, --json, progress and -q."""
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
    parser.add_argument("--threads", type=argtypes.positive_int, default=None, metavar="N",
                        help="CPU threads per model")
    if size_auto:
        parser.add_argument("--size", type=argtypes.long_side_or_auto, default=None, metavar="N|auto",
                            help=f"long side of the inference resolution, 8..{argtypes.MAX_SIZE}; results are "
                                 "resized back to the input size; smaller frames keep their own size unless "
                                 "--upscale. auto (camera): the largest size, from the frame's own "
                                 "down to 0.4 of it (not under 96 px), at which the stylizing keeps up with the "
                                 "camera")
    else:
        parser.add_argument("--size", type=argtypes.long_side, default=None, metavar="N",
                            help=f"long side of the inference resolution, 8..{argtypes.MAX_SIZE}; results are "
                                 "resized back to the input size; smaller frames keep their own size unless "
                                 "--upscale")
    parser.add_argument("--upscale", action="store_true",
                        help="let --size enlarge frames smaller than it (default: those are stylized at their own size)")
    parser.add_argument("--weights-dir", default=None, metavar="DIR",
                        help="folder of style models (default: $STYLECAM_WEIGHTS, else weights/ of the installation)")
    parser.add_argument("--json", action="store_true",
                        help="print a machine-readable summary on stdout (for an exit-2 error: an error object)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr (no progress bars)")


def engine_config(args: argparse.Namespace, **settings) -> EngineConfig:
    """The EngineConfig of the flags add_engine_arguments added to ``args`` (--size auto: size None),
    with ``settings`` (e.g. styles, repeat) for the fields those flags do not set."""
    return EngineConfig(variant=args.variant, device=args.device, fp16=args.fp16, int8=args.int8,
                        threads=args.threads, size=None if args.size == "auto" else args.size,
                        upscale=args.upscale, weights_dir=args.weights_dir, **settings)
