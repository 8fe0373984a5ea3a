"""What a cluster run has finished, kept beside its outputs, so that running the same command again
skips it.

Each output folder holds one ``.stylecam-manifest.json``: for every output file written there,
the key it was made under and the size it had. The key is a digest of the input's content and of
every setting that changes the output (``settings_digest``), so a changed input, another style,
strength or size, or a retrained model file, gives another key and the file is made again. A file
counts as done only while it is still there with the size recorded.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Mapping

from stylecam import fileout

MANIFEST_NAME = ".stylecam-manifest.json"
FORMAT = 1


def file_digest(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def settings_digest(settings: Mapping) -> str:
    """sha256 (hex) of JSON-able settings, independent of the order of their keys."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def work_key(input_digest: str, settings: str) -> str:
    """The key of one output: its input's content digest and the settings digest, combined."""
    return hashlib.sha256(f"{input_digest}:{settings}".encode()).hexdigest()


def manifest_path(output: str | Path) -> Path:
    """The manifest that records ``output``: MANIFEST_NAME in the output's folder."""
    return Path(output).parent / MANIFEST_NAME


def _read(path: Path) -> dict:
    """The entries of one manifest file ({} when it is missing or unreadable: then nothing is skipped)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("files"), dict):
        return {}
    return data["files"]


def is_done(output: str | Path, key: str) -> bool:
    """Whether ``output`` was recorded under ``key`` and is still there with the size recorded."""
    output = Path(output)
    entry = _read(manifest_path(output)).get(output.name)
    if not isinstance(entry, dict) or entry.get("key") != key:
        return False
    try:
        return output.is_file() and output.stat().st_size == entry.get("size")
    except OSError:
        return False


def record(output: str | Path, key: str, facts: Mapping | None = None) -> None:
    """Note ``output`` (written whole) as made under ``key``, with its size and ``facts`` (JSON-able:
    frames, seconds, ...). The manifest is rewritten atomically (fileout), entries of other files kept."""
    output = Path(output)
    path = manifest_path(output)
    files = _read(path)
    files[output.name] = {"key": key, "size": output.stat().st_size, **dict(facts or {})}
    text = json.dumps({"format": FORMAT, "files": files}, indent=1, sort_keys=True, default=str)
    fileout.atomic_write_bytes(path, text.encode())
