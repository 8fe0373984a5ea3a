"""Checkpoints that load without running code, atomic saves, and output checks with clear errors.

A checkpoint is a dict of plain values only: tensors, str, int, float, bool, None, bytes, torch
dtypes and devices, and dicts / lists / tuples / sets of them (dataclass configs are stored as dicts). That is what
``torch.load(weights_only=True)`` accepts, and the only way stylecam-train loads a ``.pt`` file:
unpickling anything else could run code hidden in the file. A file that needs more is refused
with the command that converts it (``stylecam-train convert-checkpoint``, trainer/convert_checkpoint.py).
"""
from __future__ import annotations

import argparse
import dataclasses
import enum
import pickle
import re
import tempfile
import warnings
from collections import OrderedDict
from pathlib import Path, PurePath

import numpy as np
import torch

from stylecam.errors import UserError
from stylecam.folders import make_dirs
from stylecam.fileout import atomic_output

#: types stored as they are; ``to_plain`` turns the rest into these or refuses them
PLAIN_SCALARS = (type(None), bool, int, float, str, bytes)


def ensure_writable_dir(folder: str | Path) -> Path:
    """Create ``folder`` if needed; UserError when it cannot be created or written."""
    folder = Path(folder)
    try:
        make_dirs(folder)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-", delete=True)
        probe.close()
    except OSError as err:
        reason = "a file is in the way" if isinstance(err, (FileExistsError, NotADirectoryError)) else \
            err.strerror or err
        raise UserError(f"cannot write to {folder}: {reason}",
                        "choose another output folder, or fix its permissions") from None
    return folder


def ensure_writable_file(path: str | Path, flag: str = "-o") -> Path:
    """Check before any work that ``path`` can be written as a file: not a folder, its folder creatable
    and writable. Returns ``path``; UserError naming ``flag`` otherwise."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder, not a file name", f"give {flag} a file name, e.g. {path / 'out'}{path.suffix}")
    try:
        ensure_writable_dir(path.parent if str(path.parent) else Path("."))
    except UserError as err:
        raise UserError(err.message, f"choose another {flag}") from None
    return path


def to_plain(value, where: str = "checkpoint"):
    """``value`` with every part made of plain types (see the module docstring).

    Dataclasses and argparse namespaces become dicts, paths and enums their str / value, numpy
    scalars Python numbers, numpy arrays tensors, named tuples tuples, frozensets sets.
    Raises TypeError naming the place (``where``, e.g. "checkpoint['config']['x']") of anything else.
    """
    if isinstance(value, torch.Tensor):
        return value.detach() if isinstance(value, torch.nn.Parameter) else value
    if isinstance(value, (torch.dtype, torch.device)):
        return value
    if isinstance(value, enum.Enum):
        return to_plain(value.value, where)
    if isinstance(value, PLAIN_SCALARS):
        base = next(t for t in PLAIN_SCALARS if isinstance(value, t))
        return value if type(value) is base else base(value)  # a subclass of str, int, ... -> the plain type
    if isinstance(value, torch.Size):
        return tuple(value)
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value))
    if isinstance(value, PurePath):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    elif isinstance(value, argparse.Namespace):
        value = vars(value)
    if isinstance(value, dict):
        kind = OrderedDict if isinstance(value, OrderedDict) else dict
        return kind((to_plain(k, f"{where} key"), to_plain(v, f"{where}[{k!r}]")) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        items = [to_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, (set, frozenset)):
        return {to_plain(v, f"{where} item") for v in value}
    raise TypeError(f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which a checkpoint cannot hold")


def atomic_save(obj: dict, path: str | Path) -> Path:
    """torch.save the plain form of ``obj`` (to_plain) to a temporary file beside ``path``, then rename:
    a crash never leaves half a file, and the file loads with weights_only=True."""
    path = Path(path)
    plain = to_plain(obj)
    with atomic_output(path) as tmp:
        torch.save(plain, tmp)
    return path


def convert_hint(path: str | Path) -> str:
    """The hint for a checkpoint that needs more than plain values to load: the command that converts it."""
    return f"convert it once with `stylecam-train convert-checkpoint {path} NEW.pt` and use NEW.pt"


def refused_global(err: Exception) -> str | None:
    """The Python object (module.name) that torch's weights-only loader refused, from its message."""
    match = re.search(r"GLOBAL ([\w.]+)|([\w.]+) was not an allowed global", str(err))
    return (match.group(1) or match.group(2)) if match else None


def _looks_pickled(path: Path) -> bool:
    """Whether the file starts like a torch zip checkpoint or a pickle stream (not random bytes)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
    except OSError:
        return False
    return head == b"PK" or (len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5)


def load_weights_only(path: str | Path):
    """``torch.load(path, weights_only=True)`` on the CPU, torch's warnings silenced.

    Raises UserError: not found; needs code to load (with convert_hint); unreadable or corrupt.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}", "pass a checkpoint.pt written by stylecam-train")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only load failed" in str(err).lower() and _looks_pickled(path):
            what = refused_global(err)
            raise UserError(f"refusing to load {path}: it holds Python objects"
                            f"{f' ({what})' if what else ''}, and loading them could run code",
                            convert_hint(path)) from None
        raise UserError(f"cannot read checkpoint {path}: {type(err).__name__}",
                        "the file is corrupt or not a torch checkpoint") from None
    except Exception as err:  # noqa: BLE001 - zip, EOF, key errors: all mean an unreadable file
        raise UserError(f"cannot read checkpoint {path}: {type(err).__name__}",
                        "the file is corrupt or not a torch checkpoint") from None


def read_checkpoint(path: str | Path, required: tuple[str, ...] = ("model", "config", "step"),
                    written_by: str = "stylecam-train style") -> dict:
    """The checkpoint dict of ``path`` (see load_weights_only); UserError when a ``required`` key is
    missing, naming the command (``written_by``) that writes such checkpoints."""
    ckpt = load_weights_only(path)
    missing = [k for k in required if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise UserError(f"{path} is not a checkpoint of `{written_by}` (missing {', '.join(missing)})",
                        f"pass a checkpoint.pt written by `{written_by}`")
    return ckpt
