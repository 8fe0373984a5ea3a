"""Helpers shared by the trainer's commands: image size limits, device choice, output folders,
loss checks, sample sheets and loss curves.

Images here are torch tensors: uint8 (3, H, W) RGB photos, float32 (1, 3, H, W) RGB 0..255
network inputs. Nothing in this module imports another command's module.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch

from stylecam.errors import UserError
from stylecam.fileout import atomic_output, write_image
from trainer.checkpoints import ensure_writable_dir
from trainer.photos import center_crop_multiple

#: smallest image side (pixels) the VGG-16 losses work on: relu4_3 comes after three 2x poolings
MIN_SIZE = 16
#: largest training crop / painting side accepted on the command line
MAX_SIZE = 4096


def pick_device(name: str) -> torch.device:
    """auto -> cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but PyTorch sees no CUDA GPU", "use --device cpu or auto")
    return torch.device(name)


def check_min_side(image: torch.Tensor, flag: str, what: str) -> None:
    """UserError when ``image`` (..., H, W) has a side below MIN_SIZE (too small for VGG-16's poolings)."""
    h, w = image.shape[-2:]
    if min(h, w) < MIN_SIZE:
        raise UserError(f"{flag} makes {what} {w}x{h} pixels; VGG-16 needs at least {MIN_SIZE} on each side",
                        f"use a larger {flag.split()[0]}")


def check_finite_loss(terms: dict[str, float], step: int) -> None:
    """UserError when the loss of ``step`` is NaN or infinite (training diverged: no use going on)."""
    total = terms["total"]
    if not math.isfinite(total):
        raise UserError(f"the loss became {total} at step {step}: training diverged",
                        "lower --lr or the loss weights; checkpoints written before this step are unaffected")


def writable_dir(folder: str | Path, flag: str) -> Path:
    """ensure_writable_dir, with a hint naming the option that chose ``folder``."""
    try:
        return ensure_writable_dir(folder)
    except UserError as err:
        raise UserError(err.message, f"choose another {flag} folder, or fix its permissions") from None


def stylize(net: torch.nn.Module, images: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """Run the network on uint8 (3,H,W) images (H,W cropped to x4); returns uint8 (3,H,W) results."""
    net.eval()
    out = []
    with torch.no_grad():
        for img in images:
            x = center_crop_multiple(img)[None].float().to(device)
            out.append(net(x)[0].clamp(0, 255).round().to(torch.uint8).cpu())
    net.train()
    return out


def save_sample_sheet(net: torch.nn.Module, holdout: list[torch.Tensor], device: torch.device, path: Path) -> Path:
    """PNG with one row per held-out photo: content | stylized."""
    rows = []
    for content, styled in zip(holdout, stylize(net, holdout, device)):
        content = center_crop_multiple(content)
        rows.append(torch.cat([content, styled], dim=2))
    width = max(r.shape[2] for r in rows)
    rows = [torch.nn.functional.pad(r, (0, width - r.shape[2])) for r in rows]
    sheet = torch.cat(rows, dim=1).permute(1, 2, 0).flip(-1).contiguous().numpy()   # uint8 (H, W, 3) BGR
    return write_image(path, sheet, flag="--out")


def save_loss_curve(history: list[dict], path: Path, title: str) -> Path:
    """PNG of the weighted loss terms against the step (log scale)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [h["step"] for h in history]
    for key in ("total", "content", "style", "tv", "stability"):
        if all(key in h for h in history):
            ax.plot(steps, [h[key] for h in history], label=key)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("weighted loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    try:
        with atomic_output(path) as tmp:
            fig.savefig(str(tmp), dpi=100, format="png")
    finally:
        plt.close(fig)
    return path
