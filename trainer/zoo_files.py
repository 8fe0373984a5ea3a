"""The small files a zoo run writes: loss logs, sample sheets, JPEGs and archives, as bytes.

Images: uint8 (3, H, W) tensors, RGB. Every function returns bytes for an atomic write
(stylecam.fileout.atomic_write_bytes) or reads back what it wrote.
"""
from __future__ import annotations

import csv
import io
import tarfile
import zipfile
from pathlib import Path

import torch

from stylecam.errors import UserError
from stylecam.fileout import encode_image

LOSS_COLUMNS = ("step", "content", "style", "tv", "total")


def losses_zip(histories: dict[str, list[dict]]) -> bytes:
    """A zip archive with NAME.csv (columns step, content, style, tv, total) per style."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, history in histories.items():
            text = io.StringIO()
            writer = csv.writer(text)
            writer.writerow(LOSS_COLUMNS)
            for entry in history:
                writer.writerow([entry["step"], *(f"{entry[k]:.6g}" for k in LOSS_COLUMNS[1:])])
            archive.writestr(f"{name}.csv", text.getvalue())
    return buffer.getvalue()


def read_losses_zip(path: str | Path) -> dict[str, list[dict]]:
    """The loss logs of a losses.zip: {style: [{step, content, style, tv, total}, ...]}."""
    logs = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            rows = list(csv.DictReader(io.StringIO(archive.read(member).decode())))
            logs[Path(member).stem] = [{"step": int(r["step"]), **{k: float(r[k]) for k in LOSS_COLUMNS[1:]}}
                                       for r in rows]
    return logs


def sheet_jpeg(cells: list[tuple[str, torch.Tensor]], columns: int, cell_width: int = 200) -> bytes:
    """A labelled contact sheet of uint8 (3,H,W) RGB cells as JPEG bytes."""
    import cv2
    from stylecam.imageops import contact_sheet
    frames = [(label, image.permute(1, 2, 0).flip(-1).contiguous().numpy()) for label, image in cells]
    data = encode_image(".jpg", contact_sheet(frames, columns=columns, cell_width=cell_width),
                        (cv2.IMWRITE_JPEG_QUALITY, 88))
    if data is None:
        raise UserError("cannot encode the sample sheet as JPEG", "check the OpenCV installation")
    return data


def jpeg_bytes(image: torch.Tensor, quality: int = 95) -> bytes:
    """uint8 (3,H,W) RGB -> JPEG bytes."""
    import cv2
    data = encode_image(".jpg", image.permute(1, 2, 0).flip(-1).contiguous().numpy(), (cv2.IMWRITE_JPEG_QUALITY, quality))
    if data is None:
        raise UserError("cannot encode a JPEG", "check the OpenCV installation")
    return data


def tar_bytes(members: dict[str, bytes]) -> bytes:
    """An uncompressed tar archive of {name: content}."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
