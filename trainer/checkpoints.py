"""Atomic file writes and checkpoint loading with clear errors."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from stylecam.errors import UserError
from stylecam.folders import make_dirs


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


def make_readable(path: str | Path) -> None:
    """Give a file made by mkstemp (mode 0600) the usual mode (0666 minus the umask)."""
    mask = os.umask(0o022)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def atomic_save(obj, path: str | Path) -> Path:
    """torch.save to a temporary file beside ``path``, then rename: a crash never leaves half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        make_readable(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def load_checkpoint(path: str | Path, required: tuple[str, ...] = ("model", "config", "step")) -> dict:
    """Load a checkpoint dict on the CPU; UserError when missing, unreadable or not a stylecam checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}", "pass the checkpoint.pt written by stylecam-train")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise UserError(f"cannot read checkpoint {path}: {type(err).__name__}",
                        "the file is corrupt or not a torch checkpoint") from None
    missing = [k for k in required if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise UserError(f"{path} is not a stylecam style checkpoint (missing {', '.join(missing)})",
                        "pass a checkpoint.pt written by `stylecam-train style`")
    return ckpt
