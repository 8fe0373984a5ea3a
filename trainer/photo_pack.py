"""Training photos held on the training device as one uint8 tensor; crops, flips and zoom made there.

The photos are decoded once (short side = the crop size), padded into one uint8 tensor
(N, 3, Hmax, Wmax), RGB, and moved to the device. A batch is one ``grid_sample`` over the
chosen photos: each sample gets its own square window (random position, random zoom in
[1, max_zoom], random horizontal flip). The random numbers come from a CPU generator keyed by
(seed, step), so a batch depends only on (seed, step) and not on the device or on what else
is trained: a resumed run, or a style trained alone, sees the same crops.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from stylecam.errors import UserError
from trainer.photos import batch_indices, load_photo_set


def _generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + 7919 * step + 3) % (2 ** 62))


@dataclass
class PhotoPack:
    images: torch.Tensor        # uint8 (N, 3, Hmax, Wmax) RGB, each photo top-left aligned, zero padded
    sizes: torch.Tensor         # int64 (N, 2): each photo's (height, width), on the CPU
    holdout: list               # uint8 (3, H, W) RGB photos kept out of training (sample sheets)

    @property
    def count(self) -> int:
        return int(self.images.shape[0])

    def to(self, device: torch.device) -> "PhotoPack":
        return PhotoPack(self.images.to(device), self.sizes, self.holdout)

    def crop_windows(self, step: int, batch_size: int, seed: int, max_zoom: float) -> tuple[list[int], torch.Tensor]:
        """(photo indices, windows float64 (B, 4) = top, left, side, flip) of batch ``step``, in pixels of the
        photo; top and left are whole pixels, so at zoom 1 a crop is an exact copy of the photo's pixels."""
        indices = batch_indices(step, batch_size, self.count, seed)
        g = _generator(seed, step)
        u = torch.rand(batch_size, 4, generator=g, dtype=torch.float64)
        windows = torch.empty(batch_size, 4, dtype=torch.float64)
        for row, index in enumerate(indices):
            h, w = (int(v) for v in self.sizes[index])
            side = min(h, w) / (1.0 + (max_zoom - 1.0) * float(u[row, 0]))
            top, left = math.floor(float(u[row, 1]) * (h - side)), math.floor(float(u[row, 2]) * (w - side))
            windows[row] = torch.tensor([top, left, side,
                                         float(u[row, 3] < 0.5)], dtype=torch.float64)
        return indices, windows

    def batch(self, step: int, batch_size: int, size: int, seed: int, max_zoom: float = 1.25) -> torch.Tensor:
        """Crops of batch ``step``: float32 (B, 3, size, size), RGB, 0..255, on the pack's device.

        Each crop is a square window of a photo (side = short side / zoom, zoom uniform in
        [1, max_zoom]) resampled bilinearly to ``size`` and flipped left-right with probability 1/2.
        """
        indices, windows = self.crop_windows(step, batch_size, seed, max_zoom)
        hmax, wmax = self.images.shape[-2:]
        top, left, side, flip = windows.unbind(1)
        sign = 1.0 - 2.0 * flip
        # affine_grid (align_corners=False) maps output x in [-1, 1] to source x_norm = a*x + b;
        # the window [left, left + side) of a Wmax-wide tensor needs a = side/Wmax, b = (2*left + side)/Wmax - 1
        theta = torch.zeros(batch_size, 2, 3, dtype=torch.float64)
        theta[:, 0, 0] = sign * side / wmax
        theta[:, 0, 2] = (2 * left + side) / wmax - 1
        theta[:, 1, 1] = side / hmax
        theta[:, 1, 2] = (2 * top + side) / hmax - 1
        device = self.images.device
        source = self.images[torch.tensor(indices, device=device)].float()
        grid = F.affine_grid(theta.float().to(device), [batch_size, 3, size, size], align_corners=False)
        out = F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return out.clamp_(0.0, 255.0)


def pack_photos(photos: list[torch.Tensor], holdout: list[torch.Tensor]) -> PhotoPack:
    """Pad uint8 (3, H, W) photos into one uint8 (N, 3, Hmax, Wmax) tensor (on the CPU)."""
    hmax = max(p.shape[1] for p in photos)
    wmax = max(p.shape[2] for p in photos)
    images = torch.zeros(len(photos), 3, hmax, wmax, dtype=torch.uint8)
    for i, photo in enumerate(photos):
        images[i, :, :photo.shape[1], :photo.shape[2]] = photo
    sizes = torch.tensor([[p.shape[1], p.shape[2]] for p in photos], dtype=torch.int64)
    return PhotoPack(images, sizes, list(holdout))


def load_photo_pack(folder: str | Path, size: int, holdout: int = 4) -> PhotoPack:
    """Decode ``folder`` (recursively, short side = ``size``) into a PhotoPack on the CPU; the last ``holdout``
    files (sorted) are held out. UserError when the folder has too few readable photos."""
    photos = load_photo_set(folder, size, holdout)
    if not photos.train:
        raise UserError(f"no training photos left in {folder} after holding out {holdout}", "lower --holdout")
    return pack_photos(photos.train, photos.holdout)
