"""Output folders a command creates, and their removal when the command fails before filling them.

``make_dirs(path)`` is ``mkdir -p`` that remembers each folder it created. A command run inside
``removed_if_empty_on_failure()`` that ends with an exception (a UserError, Ctrl-C, a crash) or
calls ``remove_new_empty_folders()`` leaves none of those folders behind while they are still
empty; folders holding files (results, logs) stay.
"""
from __future__ import annotations

import contextlib
import threading
from pathlib import Path

_lock = threading.Lock()
_made: list[Path] = []   # folders made by make_dirs since the command started, parents first


def make_dirs(path: str | Path) -> Path:
    """Create the folder ``path`` and any missing parents (like mkdir -p); returns it as a Path.
    Raises OSError as Path.mkdir does."""
    path = Path(path)
    missing = []
    for folder in (path, *path.parents):
        if folder.exists() or folder.is_symlink():
            break
        missing.append(folder)
    path.mkdir(parents=True, exist_ok=True)
    with _lock:
        _made.extend(reversed(missing))
    return path


def remove_new_empty_folders() -> list[Path]:
    """Remove the folders make_dirs created that are empty now, deepest first (a parent left empty by
    its removed children goes too); returns those removed. Forgets every folder made so far."""
    removed = []
    with _lock:
        made, _made[:] = list(_made), []
    for folder in reversed(made):
        try:
            folder.rmdir()               # only succeeds on an empty folder
        except OSError:
            continue
        removed.append(folder)
    return removed


@contextlib.contextmanager
def removed_if_empty_on_failure():
    """Around one command: the folders make_dirs creates inside are removed again, while empty,
    when the command raises."""
    with _lock:
        _made.clear()
    try:
        yield
    except BaseException:
        remove_new_empty_folders()
        raise
    with _lock:
        _made.clear()
