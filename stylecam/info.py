"""`stylecam info`: version, onnxruntime providers, styles, classifiers and cameras found; and
`stylecam --list-styles`."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from stylecam import __version__
from stylecam.cluster import options as cluster_options
from stylecam.config import DEVICES

DESCRIPTION = "version, onnxruntime providers, styles and cameras found"

log = logging.getLogger("stylecam")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="onnxruntime providers to report: auto tries TensorRT > CUDA > CPU")
    parser.add_argument("--weights-dir", default=None, metavar="DIR",
                        help="folder of style models (default: $STYLECAM_WEIGHTS, else weights/ of the installation)")
    parser.add_argument("--json", action="store_true", help="print the same facts as JSON on stdout")
    parser.add_argument("--no-cameras", dest="cameras", action="store_false",
                        help="do not look for cameras (opening each index can take a moment)")
    cluster_options.add_info_argument(parser)   # cluster hook: --cluster [ADDRESS]


def run(args: argparse.Namespace) -> int:
    """Print the facts (as text, or as JSON with --json); always 0."""
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
        print_json(data)
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
        print("cameras: " + (", ".join(camera_text(c) for c in data["cameras"])
                             or f"none opened at indices 0..{CAMERA_PROBE - 1}"))
    print("\n".join(cluster_options.info_lines(data["cluster"])))   # cluster hook
    return 0


def camera_text(camera: dict) -> str:
    """{"index": 0, "size": "640x480", "fps": 30.0} -> "0 (640x480, 30 FPS)"."""
    facts = [camera["size"]] if camera["size"] else []
    facts += [f"{camera['fps']:g} FPS"] if camera["fps"] else []
    return f"{camera['index']}" + (f" ({', '.join(facts)})" if facts else "")


def list_styles(weights_dir: str | None, as_json: bool) -> int:
    """`stylecam --list-styles`: the style table (or JSON with the files ignored); always 0."""
    from stylecam.styles import GET_STYLES_HINT, Registry, format_table

    registry = Registry(weights_dir)
    rows = registry.table()
    if as_json:
        print_json({"weights_dir": str(registry.root), "styles": rows,
                    "problems": [{"path": str(p), "error": e} for p, e in registry.problems]})
        return 0
    if rows:
        print(format_table(rows))
    else:
        print(f"no style models in {registry.root} ({GET_STYLES_HINT})")
    for path, error in registry.problems:
        log.warning("stylecam: ignored %s: %s", path, error)
    return 0


def print_json(data) -> None:
    """``data`` as indented JSON on stdout (paths and other objects as their text)."""
    print(json.dumps(data, indent=2, default=str))
