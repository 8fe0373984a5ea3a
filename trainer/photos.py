"""Photo folders for style training: listing, decoding, deterministic batches.

Decoded photos are uint8 tensors (3, H, W), RGB, short side resized to the training
size. Batches are float32 (B, 3, S, S), RGB, 0..255, and depend only on (seed, step), so a
resumed run sees exactly the batches an uninterrupted run would.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from stylecam.errors import UserError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def load_rgb(path: str | Path, short_side: int | None = None, long_side: int | None = None) -> torch.Tensor:
    """Decode an image file to a uint8 tensor (3, H, W), RGB; optionally resize (bicubic, antialiased).

    Raises UserError naming the file when it is missing or not a readable image.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"image not found: {path}", "check the path")
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            w, h = img.size
            scale = None
            if short_side:
                scale = short_side / min(w, h)
            elif long_side:
                scale = long_side / max(w, h)
            if scale is not None and abs(scale - 1.0) > 1e-6:
                img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BICUBIC)
            array = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise UserError(f"cannot read image {path}: {err.__class__.__name__}",
                        "use a JPEG/PNG/BMP/WebP/TIFF image file") from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


@dataclass
class PhotoSet:
    train: list[torch.Tensor]     # uint8 (3, H, W) RGB, short side = size
    holdout: list[torch.Tensor]   # same, kept out of training for sample sheets
    skipped: list[str]            # files that were not readable images


def load_photo_set(folder: str | Path, size: int, holdout: int = 4) -> PhotoSet:
    """Decode every image in ``folder`` (recursively). The last ``holdout`` files (sorted) are held out.

    Non-image and unreadable files are skipped and listed. Raises UserError when none is left.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"photo folder not found: {folder}", "pass --data DIR, a folder of training photos")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    photos, skipped = [], []
    for path in files:
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            skipped.append(str(path))
            continue
        try:
            img = load_rgb(path, short_side=size)
        except UserError:
            skipped.append(str(path))
            continue
        photos.append(img)
    if len(photos) <= holdout:
        raise UserError(f"photo folder {folder} has {len(photos)} readable image(s), need more than {holdout}",
                        "put JPEG/PNG photos in it (a few hundred or more for good results)")
    return PhotoSet(train=photos[:len(photos) - holdout] if holdout else photos,
                    holdout=photos[len(photos) - holdout:] if holdout else [], skipped=skipped)


def _generator(*key: int) -> torch.Generator:
    seed = 0
    for k in key:
        seed = (seed * 1_000_003 + int(k)) % (2 ** 62)
    return torch.Generator().manual_seed(seed)


def batch_indices(step: int, batch_size: int, n: int, seed: int) -> list[int]:
    """Photo indices of batch ``step``: consecutive slices of a per-epoch seeded permutation."""
    out = []
    for position in range(step * batch_size, (step + 1) * batch_size):
        epoch, offset = divmod(position, n)
        out.append(int(torch.randperm(n, generator=_generator(seed, 1, epoch))[offset]))
    return out


def make_batch(photos: list[torch.Tensor], step: int, batch_size: int, size: int, seed: int) -> torch.Tensor:
    """Random size x size crops (and horizontal flips) of the photos of batch ``step``.

    Returns float32 (B, 3, size, size), RGB, 0..255; a pure function of its arguments.
    """
    g = _generator(seed, 2, step)
    crops = []
    for index in batch_indices(step, batch_size, len(photos), seed):
        img = photos[index]
        _, h, w = img.shape
        if h < size or w < size:
            scale = size / min(h, w)
            img = torch.nn.functional.interpolate(img[None].float(), size=(max(size, round(h * scale)), max(size, round(w * scale))),
                                                  mode="bilinear", align_corners=False)[0].round().clamp(0, 255).to(torch.uint8)
            _, h, w = img.shape
        top = int(torch.randint(0, h - size + 1, (1,), generator=g))
        left = int(torch.randint(0, w - size + 1, (1,), generator=g))
        crop = img[:, top:top + size, left:left + size]
        if bool(torch.randint(0, 2, (1,), generator=g)):
            crop = crop.flip(-1)
        crops.append(crop)
    return torch.stack(crops).float()


def center_crop_multiple(img: torch.Tensor, multiple: int = 4) -> torch.Tensor:
    """Crop (C, H, W) centrally so H and W are multiples of ``multiple``."""
    _, h, w = img.shape
    nh, nw = h - h % multiple, w - w % multiple
    top, left = (h - nh) // 2, (w - nw) // 2
    return img[:, top:top + nh, left:left + nw]
