"""Gatys references of several styles for one photo, optimised together in one batch.

The K images (one per style) start as the photo and are optimised by a batched L-BFGS that
keeps a separate history per image: each image follows the same steps as `stylecam-train
gatys` would take for it alone (torch.optim.LBFGS, lr 1, one iteration per step, no line
search, pixels clamped to 0..255 after each step), while every step costs one VGG-16 pass
over the whole batch. The losses are separable (MultiStyleLoss: one term per image), so
nothing couples the images but the pass they share.
Images: float32 (K, 3, H, W), RGB, 0..255.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch

from stylecam.errors import UserError
from stylecam.fileout import atomic_write_bytes
from trainer.losses import MultiStyleLoss


class BatchedLBFGS:
    """torch.optim.LBFGS(lr, max_iter=1, history_size, line_search_fn=None) run on each row of a batch alone.

    ``step(x, grad)`` moves x (K, N) in place, each row with its own curvature pairs."""

    def __init__(self, count: int, size: int, history_size: int = 50, lr: float = 1.0,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9, device=None):
        self.lr, self.m = lr, history_size
        self.tolerance_grad, self.tolerance_change = tolerance_grad, tolerance_change
        self.steps_s = torch.zeros(count, history_size, size, device=device)     # s_i = t d
        self.steps_y = torch.zeros(count, history_size, size, device=device)     # y_i = g_new - g_old
        self.rho = torch.zeros(count, history_size, device=device)               # 1 / (y_i . s_i), 0 where unused
        self.used = torch.zeros(count, dtype=torch.long, device=device)          # pairs held per row
        self.h_diag = torch.ones(count, device=device)
        self.direction = torch.zeros(count, size, device=device)
        self.t = torch.zeros(count, device=device)
        self.prev_grad: torch.Tensor | None = None
        self.iteration = torch.zeros(count, dtype=torch.long, device=device)

    def _push(self, rows: torch.Tensor, s: torch.Tensor, y: torch.Tensor, ys: torch.Tensor) -> None:
        """Append (s, y) to the history of the rows in the bool mask ``rows`` (the oldest pair drops out when full)."""
        full = rows & (self.used == self.m)
        if full.any():
            for buffer in (self.steps_s, self.steps_y):
                buffer[full] = torch.roll(buffer[full], -1, dims=1)
            self.rho[full] = torch.roll(self.rho[full], -1, dims=1)
            self.used[full] -= 1
        index = torch.nonzero(rows).flatten()
        slot = self.used[index]
        self.steps_s[index, slot] = s[index]
        self.steps_y[index, slot] = y[index]
        self.rho[index, slot] = 1.0 / ys[index]
        self.used[index] += 1

    def step(self, x: torch.Tensor, grad: torch.Tensor) -> None:
        """One L-BFGS step of every row of ``x`` (K, N) given its gradient ``grad`` (K, N)."""
        active = grad.abs().amax(1) > self.tolerance_grad
        first = self.iteration == 0
        if self.prev_grad is not None:
            y = grad - self.prev_grad
            s = self.direction * self.t[:, None]
            ys = (y * s).sum(1)
            update = active & ~first & (ys > 1e-10)
            if update.any():
                self._push(update, s, y, ys)
                self.h_diag = torch.where(update, ys / (y * y).sum(1).clamp_min(1e-30), self.h_diag)
        # two-loop recursion over each row's pairs (unused slots have rho 0 and change nothing)
        q = -grad.clone()
        alphas = torch.zeros(x.shape[0], self.m, device=x.device)
        for i in range(self.m - 1, -1, -1):
            alphas[:, i] = (self.steps_s[:, i] * q).sum(1) * self.rho[:, i]
            q -= alphas[:, i, None] * self.steps_y[:, i]
        r = q * self.h_diag[:, None]
        for i in range(self.m):
            beta = (self.steps_y[:, i] * r).sum(1) * self.rho[:, i]
            r += (alphas[:, i] - beta)[:, None] * self.steps_s[:, i]
        direction = torch.where(first[:, None], -grad, r)
        t = torch.where(first, torch.clamp(1.0 / grad.abs().sum(1), max=1.0) * self.lr,
                        torch.full_like(self.t, self.lr))
        moving = active & ((grad * direction).sum(1) <= -self.tolerance_change)
        self.direction = torch.where(active[:, None], direction, self.direction)
        self.t = torch.where(active, t, self.t)
        self.prev_grad = grad.clone() if self.prev_grad is None else torch.where(active[:, None], grad, self.prev_grad)
        self.iteration += active.long()
        x += torch.where(moving[:, None], self.direction * self.t[:, None], torch.zeros_like(x))


def gatys_styles(content: torch.Tensor, loss: MultiStyleLoss, steps: int = 300,
                 history_size: int = 50) -> tuple[torch.Tensor, dict[str, list[float]]]:
    """Optimise one image per style of ``loss`` from the photo ``content`` float32 (1, 3, H, W) RGB 0..255.

    Returns (images uint8 (K, 3, H, W) RGB, final weighted terms {content, style, tv, total: K floats}
    of the returned, rounded images). Raises UserError when a loss becomes NaN or infinite.
    """
    k = loss.count
    with torch.no_grad():
        content_features = loss.content_features(content)
    image = content.detach().repeat(k, 1, 1, 1).contiguous()
    opt = BatchedLBFGS(k, image[0].numel(), history_size=history_size, device=image.device)
    for step in range(steps):
        image.requires_grad_(True)
        terms = loss.terms(image, content_features=content_features)
        total = terms["total"]
        if not torch.isfinite(total).all():
            raise UserError(f"a Gatys loss became {total.tolist()} after {step} steps", "lower that style's weights")
        (grad,) = torch.autograd.grad(total.sum(), image)
        image = image.detach()
        with torch.no_grad():
            flat = image.view(k, -1)
            opt.step(flat, grad.reshape(k, -1))
            image.clamp_(0, 255)
    result = image.detach().round()
    with torch.no_grad():
        final = loss.terms(result, content_features=content_features)
    values = {key: [float(v) for v in final[key]] for key in ("content", "style", "tv", "total")}
    if not all(math.isfinite(v) for v in values["total"]):
        raise UserError(f"a Gatys loss became {values['total']}", "lower that style's weights")
    return result.to(torch.uint8), values


def gatys_references(loss: MultiStyleLoss, names: list[str], photos_dir: str | Path, out: Path, steps: int = 300,
                     size: int = 512, minutes: float = 0.0, settings: dict | None = None, log=print) -> dict:
    """Gatys references of every style of ``loss`` (``names``, in its order) for each photo of ``photos_dir``,
    loaded as `stylecam-train report` loads them (long side ``size``), one batch per photo, on the loss's
    device. After each photo OUT/gatys.tar is rewritten: NAME/NN.jpg per style and photo, and gatys.json
    (steps, size, ``settings``, per photo its seconds and each style's final weighted terms). No new
    photo is started after ``minutes`` (0: no limit). Returns {photos, steps, size, seconds}."""
    from trainer.report import list_photos, load_photo
    from trainer.zoo_files import jpeg_bytes, tar_bytes
    photos = list_photos(photos_dir, limit=10 ** 6)
    device = next(loss.buffers()).device
    images: dict[str, bytes] = {}
    record = {"steps": steps, "size": size, "styles": list(names), **(settings or {}), "photos": []}
    started = time.perf_counter()
    for i, photo in enumerate(photos):
        if minutes and time.perf_counter() - started >= minutes * 60:
            log(f"stylecam-train zoo: Gatys budget spent after {i} of {len(photos)} photos")
            break
        t0 = time.perf_counter()
        content = load_photo(photo, size)[None].float().to(device)
        result, terms = gatys_styles(content, loss, steps=steps)
        for k, name in enumerate(names):
            images[f"{name}/{i:02d}.jpg"] = jpeg_bytes(result[k].cpu(), quality=95)
        record["photos"].append({"photo": photo.name, "index": i, "seconds": round(time.perf_counter() - t0, 2),
                                 "terms": {name: {key: terms[key][k] for key in terms} for k, name in enumerate(names)}})
        atomic_write_bytes(out / "gatys.tar", tar_bytes({**images, "gatys.json": json.dumps(record, indent=2).encode()}))
        log(f"stylecam-train zoo: Gatys {photo.name}: {steps} steps for {len(names)} styles in "
            f"{time.perf_counter() - t0:.1f} s")
    return {"photos": len(record["photos"]), "steps": steps, "size": size,
            "seconds": round(time.perf_counter() - started, 2)}
