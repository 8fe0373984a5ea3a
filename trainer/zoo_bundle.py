"""The zoo bundle: every style's weights and settings in one file, loadable without pickle code.

A bundle is a dict of plain values (str, int, float, bool, list, dict) and tensors, saved with
torch.save and read with ``torch.load(weights_only=True)``, so reading one never runs code:

  {"kind": "stylecam-zoo", "format": 1, "settings": {...}, "step": int, "seconds": float,
   "throughput": {...}, "styles": {NAME: {"settings": {...}, "network": {...}, "weights": {k: tensor},
   "crops_seen": int, "history": [{step, content, style, tv, total}, ...], "optimizer": {...}?}}}

Weights are float16 by default (half the size; the exported ONNX keeps float16 weights anyway);
the optimiser state is optional (an exact resume needs it, a warm restart does not). A bundle
larger than a transfer limit is written as PATH.part00, PATH.part01, ... (``split_bytes``);
``load_bundle`` joins them.
"""
from __future__ import annotations

import io
from pathlib import Path

import torch

from stylecam.errors import UserError
from stylecam.fileout import atomic_write_bytes

KIND = "stylecam-zoo"
FORMAT = 1


def part_paths(path: str | Path) -> list[Path]:
    """The existing parts PATH.part00, PATH.part01, ... of a split bundle, in order ([] if none)."""
    path = Path(path)
    parts, i = [], 0
    while (part := path.with_name(f"{path.name}.part{i:02d}")).is_file():
        parts.append(part)
        i += 1
    return parts


def save_bundle(bundle: dict, path: str | Path, split_bytes: int = 0) -> list[Path]:
    """Write ``bundle`` to ``path`` (or to parts of at most ``split_bytes`` each); returns the files written.

    Each file is written to a temporary name and renamed; parts left over from a larger earlier
    bundle, or the single file when writing parts (and the other way round), are removed."""
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(bundle, buffer)
    data = buffer.getvalue()
    old_parts = part_paths(path)
    if split_bytes and len(data) > split_bytes:
        written = []
        for i in range(0, len(data), split_bytes):
            part = path.with_name(f"{path.name}.part{i // split_bytes:02d}")
            atomic_write_bytes(part, data[i:i + split_bytes])
            written.append(part)
        for stale in old_parts[len(written):]:
            stale.unlink()
        if path.is_file():
            path.unlink()
        return written
    atomic_write_bytes(path, data)
    for stale in old_parts:
        stale.unlink()
    return [path]


def load_bundle(path: str | Path) -> dict:
    """Read a bundle (one file, or its parts PATH.part00...) on the CPU with weights_only=True.

    UserError when it is missing, unreadable, needs pickled code, or is not a zoo bundle."""
    path = Path(path)
    if path.is_file():
        data = path.read_bytes()
    elif parts := part_paths(path):
        data = b"".join(p.read_bytes() for p in parts)
    else:
        raise UserError(f"zoo bundle not found: {path}", "pass the zoo.pt (or its zoo.pt.part00 ...) of a zoo run")
    try:
        bundle = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is one message
        raise UserError(f"cannot read zoo bundle {path}: {type(err).__name__}",
                        "the file is truncated, corrupt, a missing part, or not a stylecam zoo bundle") from None
    if not isinstance(bundle, dict) or bundle.get("kind") != KIND:
        raise UserError(f"{path} is not a stylecam zoo bundle", "pass the zoo.pt written by `stylecam-train zoo`")
    if bundle.get("format") != FORMAT:
        raise UserError(f"{path} is zoo bundle format {bundle.get('format')}; this version reads format {FORMAT}",
                        "use the stylecam version that wrote it")
    return bundle


def weights_for_saving(state: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """A state dict on the CPU with floating-point tensors cast to ``dtype`` (others unchanged)."""
    return {k: (v.detach().to("cpu", dtype) if v.is_floating_point() else v.detach().cpu()) for k, v in state.items()}


def weights_for_training(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A saved state dict with floating-point tensors back in float32."""
    return {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
