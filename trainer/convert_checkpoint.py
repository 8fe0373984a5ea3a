"""`stylecam-train convert-checkpoint OLD NEW`: rewrite a checkpoint that holds Python objects.

stylecam-train loads checkpoints with ``torch.load(weights_only=True)`` only (trainer/checkpoints.py):
tensors and plain values, never code. A checkpoint that also holds Python objects (a dataclass
config, a path, numpy numbers or arrays, an argparse namespace: what older or hand-made
checkpoints hold) is refused with a pointer to this command. It reads OLD with the same
weights-only loader, allowing in addition only the known types below (rebuilt, never called
with arguments from the file beyond their own data), and writes NEW with the same content as
plain values: dataclasses and namespaces as dicts, paths as str, numpy numbers as numbers,
numpy arrays as tensors. A file holding anything else is refused: no path of stylecam unpickles
code, so a crafted file is never run, whatever the options.
"""
from __future__ import annotations

import argparse
import pathlib
import warnings
from pathlib import Path

import numpy as np
import torch

from stylecam.errors import UserError
from stylecam.fileout import atomic_output, refuse_overwriting_inputs
from trainer.checkpoints import (
    ensure_writable_file,
    load_weights_only,
    refused_global,
    to_plain,
)


def known_types() -> list:
    """What a checkpoint of this project (or one made by hand from it) may hold besides plain values,
    for torch.serialization.safe_globals: the trainer's config dataclasses, paths, argparse namespaces,
    numpy arrays, numbers and dtypes (except object arrays), under numpy 1 and 2 module names."""
    from trainer.distill import DistillConfig
    from trainer.losses import LossWeights
    from trainer.nets.classifier import ClassifierConfig
    from trainer.nets.transformer import TransformerConfig
    from trainer.train_classifier import TrainConfig
    from trainer.train_style import StyleTrainConfig

    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    numpy_functions = []
    for func in (multiarray._reconstruct, multiarray.scalar):
        numpy_functions += [(func, f"numpy.core.multiarray.{func.__name__}"),
                            (func, f"numpy._core.multiarray.{func.__name__}")]
    dtypes = [type(np.dtype(code)) for code in np.typecodes["All"] if code != "O"]
    return [StyleTrainConfig, DistillConfig, TransformerConfig, ClassifierConfig, TrainConfig, LossWeights,
            pathlib.PosixPath, pathlib.WindowsPath, pathlib.PurePosixPath, pathlib.PureWindowsPath,
            argparse.Namespace, np.ndarray, np.dtype, *dtypes, *numpy_functions]


def read_known(path: Path):
    """The object stored in ``path``: weights-only plus known_types(); with ``trust_code``, full
    unpickling (RUNS any code the file holds) when that is not enough. UserError otherwise."""
    try:
        return load_weights_only(path)
    except UserError as plain_only:
        if not path.is_file() or "refusing to load" not in plain_only.message:
            raise
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals(known_types()):
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - an unknown type, or a file damaged past its header
        what = refused_global(err) or "Python objects"
        raise UserError(f"{path} holds {what}, which no stylecam checkpoint holds; it was not loaded",
                        "stylecam never runs code from a file; retrain, or rebuild the file from its weights") from None


def convert_checkpoint(source: str | Path, target: str | Path) -> dict:
    """Write the plain form (to_plain) of checkpoint ``source`` to ``target`` atomically, after checking
    that it loads weights-only. Returns {"source", "target", "keys"} (the top-level keys).
    UserError when ``source`` cannot be read (read_known) or holds values without a plain form."""
    source, target = Path(source), Path(target)
    ckpt = read_known(source)
    try:
        plain = to_plain(ckpt)
    except TypeError as err:
        raise UserError(f"cannot convert {source}: {err}", "only tensors, numbers, text, lists and dicts convert") from None
    with atomic_output(target) as tmp:
        torch.save(plain, tmp)
        load_weights_only(tmp)                                 # the copy loads safely, or nothing is written
    return {"source": str(source), "target": str(target),
            "keys": sorted(map(str, plain)) if isinstance(plain, dict) else []}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = ("Rewrite a checkpoint that stylecam-train refuses to load because it holds Python objects "
                     "(dataclass configs, paths, numpy values) as one of plain values, which loads safely. "
                     "OLD is read without running code: only known types are rebuilt, anything else is refused.")
    p.add_argument("source", metavar="OLD", help="the checkpoint.pt to convert")
    p.add_argument("target", metavar="NEW", help="the checkpoint to write (not OLD itself)")


def run(args: argparse.Namespace) -> int:
    refuse_overwriting_inputs(args.target, [args.source], "NEW")
    ensure_writable_file(args.target, "NEW")
    report = convert_checkpoint(args.source, args.target)
    print(f"stylecam-train: wrote {report['target']} ({', '.join(report['keys'])}); it loads without running code")
    return 0
