"""`stylecam-train convert-checkpoint OLD NEW`: rewrite a checkpoint that needs code to load.

stylecam-train loads checkpoints with ``torch.load(weights_only=True)`` only (trainer/checkpoints.py):
tensors and plain values, never code. A checkpoint holding other Python objects (a dataclass
config, numpy numbers, paths, ...) is refused with a pointer to this command. It loads OLD with
full unpickling, which runs whatever code OLD holds, so it is meant for files the user trusts
(made by themselves, or by an older stylecam-train), and writes NEW with the same content in
plain form (dataclasses as dicts, paths as str, numpy values as numbers and tensors).
"""
from __future__ import annotations

import argparse

from stylecam.fileout import refuse_overwriting_inputs
from trainer.checkpoints import ensure_writable_file, make_plain_copy


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = ("Rewrite a checkpoint that stylecam-train refuses to load (it holds Python objects, which "
                     "loading would run as code) as one that loads safely. Reading OLD runs any code it holds: "
                     "use this only on files you trust, e.g. made by yourself or by an older stylecam-train.")
    p.add_argument("source", metavar="OLD", help="the checkpoint.pt to convert (trusted files only)")
    p.add_argument("target", metavar="NEW", help="the checkpoint to write (not OLD itself)")


def run(args: argparse.Namespace) -> int:
    refuse_overwriting_inputs(args.target, [args.source], flag="NEW")
    ensure_writable_file(args.target, "NEW")
    report = make_plain_copy(args.source, args.target)
    print(f"stylecam-train: wrote {report['target']} ({', '.join(report['keys'])}); it loads without running code")
    return 0
