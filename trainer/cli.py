"""`stylecam-train`: argv -> subcommand module -> run. Nothing else lives here.

Each subcommand module provides ``add_arguments(parser)`` and ``run(args) -> int``.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from stylecam import folders
from stylecam.errors import UserError

#: subcommand -> (module, one-line help)
COMMANDS = {
    "style": ("trainer.train_style", "train a feed-forward style network on a painting and export it to ONNX"),
    "zoo": ("trainer.zoo", "train the full networks of several styles together on one GPU in a time budget"),
    "zoo-export": ("trainer.zoo_export", "a zoo bundle's styles to checked ONNX models (float16-stored weights), "
                   "and its Gatys references into the reports"),
    "distill": ("trainer.distill", "teach a faster network (e.g. the lite one) to reproduce a trained style model"),
    "gatys": ("trainer.gatys", "stylize one photo by optimisation (Gatys et al.), the quality reference"),
    "export": ("trainer.export", "export a style checkpoint to ONNX with checks and metadata"),
    "quantize": ("trainer.quantize", "an int8 copy of a style model for fast CPU inference, checked against float32"),
    "report": ("trainer.report", "quality report of a shipped style: lite, full and Gatys on held-out photos"),
    "export-vgg": ("trainer.export_vgg", "export VGG-16 up to relu2_2 to ONNX for the study's content-drift metric"),
    "classifier": ("trainer.train_classifier", "train a small CNN or a VGG-16 head on MNIST / Fashion-MNIST / CIFAR-10"),
    "sweep": ("trainer.sweep", "run a small grid of classifier trainings under a time budget each"),
    "visualize": ("trainer.visualize", "draw feature maps and first-layer filters of a model"),
    "convert-checkpoint": ("trainer.convert_checkpoint",
                           "rewrite a checkpoint holding Python objects (configs, paths, numpy values) as plain "
                           "values, which load without running code"),
}

EPILOG = """examples:
  stylecam-train style --style-image painting.jpg --data photos/ --name mypainting --config lite
  stylecam-train zoo --styles-dir paintings/ --data photos/ --minutes 8 --out runs/zoo
  stylecam-train zoo-export runs/zoo/zoo.pt --weights-dir weights --gatys-tar runs/zoo/gatys.tar
  stylecam-train distill weights/mypainting.onnx --data photos/ --config lite
  stylecam-train gatys --content photo.jpg --style painting.jpg --out gatys.png --steps 300
  stylecam-train export runs/mypainting/checkpoint.pt -o weights/mypainting.onnx --padding zero
  stylecam-train quantize weights/mypainting.lite.onnx --photos photos/ --eval-photos held_out/
  stylecam-train report mypainting --style-image painting.jpg --photos held_out/ --gatys-steps 300
  stylecam-train classifier --dataset cifar10 --arch cifar-fast --time-budget 60 --out runs/cifar

VGG-16 weights: --vgg-weights PATH or STYLECAM_VGG16=PATH, else torchvision's download.
Checkpoints load as tensors and plain values only, never code; no command writes over one of its inputs."""


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" only where the help does not already say it and X means something."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or action.default in (None, "", False, [], ()):
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stylecam-train", description="Train stylecam models (needs PyTorch).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name == module_name:
                continue  # subcommand not available in this build
            raise
        p = sub.add_parser(name, help=help_text, description=help_text,
                           formatter_class=DefaultsHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with folders.removed_if_empty_on_failure():   # a failed run leaves no empty output folder
            return int(args._module.run(args) or 0)
    except UserError as err:
        print(f"stylecam-train: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("stylecam-train: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
