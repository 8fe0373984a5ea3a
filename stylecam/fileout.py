"""Output files: written whole or not at all, and never over one of the inputs.

Every file stylecam and stylecam-train write goes to a temporary name of its own in the target's
folder, ``.STEM.XXXXXXXX.partial.EXT`` (unique per writer, created exclusively, the extension
kept last for tools that pick the format by it), and is renamed onto the target once complete.
A rename within one folder is atomic: a reader sees the old file or the new one, never a mix,
and of two runs writing the same output the last rename wins with a whole file. No temporary
file is left behind on failure. Used by the runtime and by the trainer (no torch here).
"""
from __future__ import annotations

import os
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from stylecam.errors import UserError

#: marks temporary outputs; ``.*partial*`` finds what an interrupted process may leave
TEMP_TAG = "partial"

_UMASK_LOCK = threading.Lock()


def temp_path(final: str | Path) -> Path:
    """Create an empty file with a unique hidden name beside ``final`` and return its path.

    ``clip.mp4`` -> ``.clip.k2j4_x9a.partial.mp4``: the name is reserved (O_EXCL) so no other
    writer, thread or process, gets it. Mode 0600 until ``make_readable``. Raises OSError when
    the folder cannot be written; the folder must exist.
    """
    final = Path(final)
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.stem}.", suffix=f".{TEMP_TAG}{final.suffix}")
    os.close(fd)
    return Path(tmp)


def current_umask() -> int:
    """The process's umask (os.umask can only be read by setting it; a lock keeps threads apart)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def make_readable(path: str | Path) -> None:
    """Give a file made by temp_path / mkstemp (mode 0600) the usual mode, 0666 minus the umask."""
    os.chmod(path, 0o666 & ~current_umask())


@contextmanager
def atomic_output(final: str | Path) -> Iterator[Path]:
    """Yield a unique temporary path beside ``final``; when the block ends without an exception,
    the file written there gets the usual mode and replaces ``final``. On any exception (Ctrl-C
    included) it is removed and ``final`` is left as it was. The folder must exist."""
    final = Path(final)
    tmp = temp_path(final)
    renamed = False
    try:
        yield tmp
        make_readable(tmp)
        os.replace(tmp, final)
        renamed = True
    finally:
        if not renamed:
            tmp.unlink(missing_ok=True)


def atomic_write_bytes(final: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``final`` through atomic_output; returns ``final`` (OSError when unwritable)."""
    with atomic_output(final) as tmp:
        tmp.write_bytes(data)
    return Path(final)


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether paths ``a`` and ``b`` name one file: the same path, or reached through ``..``, a
    symlink or a hard link (same device and inode). A path that does not exist yet is compared by
    its resolved name."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return Path(a).resolve() == Path(b).resolve()


def refuse_overwriting_inputs(output: str | Path, inputs: Mapping[str, str | Path | None] | Iterable[str | Path | None],
                              flag: str = "-o") -> None:
    """UserError when ``output`` is the same file (see same_file) as one of ``inputs``: writing it would
    destroy that input. inputs: paths, or {label: path} to name the option each came from; None and
    "" are skipped. ``flag`` is the option the hint asks to change."""
    labelled = inputs.items() if isinstance(inputs, Mapping) else (("", source) for source in inputs)
    for label, source in labelled:
        if source and same_file(output, source):
            what = f"the input {source}" + (f" (given as {label})" if label else "")
            if not label and str(source) == str(output):
                what = "its input"
            raise UserError(f"output {output} would overwrite {what}", f"choose another {flag}")
