"""Shared fixtures: tiny photo folders and paintings made on the fly (no data from outside), a folder
of fake style models, and the checkpoint of a tiny style training run."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.fakes.onnx_models import make_weights_dir

REPO = Path(__file__).resolve().parents[1]


def _write_png(path: Path, array: np.ndarray) -> Path:
    from PIL import Image
    Image.fromarray(array).save(path)
    return path


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    """A weights folder of fake style models (tests.fakes.onnx_models.make_weights_dir: wave adds 10,
    muse halves; full and lite)."""
    return make_weights_dir(tmp_path / "weights")


@pytest.fixture
def tiny_photos(tmp_path: Path) -> Path:
    """A folder of 8 random 40x52 RGB PNG photos (smooth gradients + noise)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:52]
    for i in range(8):
        base = np.stack([(xx * (3 + i)) % 256, (yy * (5 + i)) % 256, ((xx + yy) * 2 + 30 * i) % 256], -1)
        noise = rng.integers(0, 40, size=base.shape)
        _write_png(folder / f"photo_{i}.png", np.clip(base + noise, 0, 255).astype(np.uint8))
    return folder


@pytest.fixture
def tiny_painting(tmp_path: Path) -> Path:
    """A 48x48 striped RGB painting (strong, simple texture)."""
    yy, xx = np.mgrid[0:48, 0:48]
    stripes = ((xx + yy) // 4) % 2
    img = np.stack([stripes * 230 + 10, (1 - stripes) * 120 + 40, np.full_like(xx, 200)], -1).astype(np.uint8)
    return _write_png(tmp_path / "painting.png", img)


@pytest.fixture
def trained_checkpoint(tiny_photos: Path, tiny_painting: Path, tmp_path: Path) -> Path:
    """checkpoint.pt of a 2-step lite training run (tests.fakes.training.tiny_config) with a VGG stand-in."""
    from tests.fakes.training import LAYERS, tiny_config
    from trainer.nets.vgg import random_vgg_standin
    from trainer.train_style import train_style
    cfg = tiny_config(tiny_photos, tiny_painting, tmp_path, iterations=2)
    return Path(train_style(cfg, loss_net=random_vgg_standin(LAYERS), export=False, progress=False)["checkpoint"])


@pytest.fixture
def vgg_weights_path() -> str | None:
    """Path of real VGG-16 weights when STYLECAM_VGG16 is set, else None."""
    path = os.environ.get("STYLECAM_VGG16")
    return path if path and os.path.isfile(path) else None
