"""The settings of a zoo run: one ZooStyle per painting, one ZooConfig for the run (plain values only,
so they travel in the bundle as they are)."""
from __future__ import annotations

import platform
import zlib
from dataclasses import asdict, dataclass, field

import torch

from trainer.losses import DEFAULT_STYLE_LAYERS, LossWeights

CONTENT_LAYER = "relu2_2"


@dataclass(frozen=True)
class ZooStyle:
    name: str                              # registry name, e.g. "wave"
    style_image: str                       # the painting
    style_weight: float = 1e5              # weight of the Gram style term
    content_weight: float = 1.0            # weight of the relu2_2 content term
    tv_weight: float = 1e-7                # weight of total variation
    style_size: int = 384                  # long side the painting is resized to for the Gram targets
    style_layers: dict = field(default_factory=lambda: dict(DEFAULT_STYLE_LAYERS))

    def loss_weights(self) -> LossWeights:
        return LossWeights(content=self.content_weight, style=self.style_weight, tv=self.tv_weight,
                           content_layer=CONTENT_LAYER, style_layers=dict(self.style_layers))


@dataclass(frozen=True)
class ZooConfig:
    styles: tuple                          # ZooStyle, one per style, names unique
    data: str                              # folder of training photos
    variant: str = "full"                  # network configuration (trainer/nets/transformer.py CONFIGS)
    size: int = 256                        # training crop side (pixels, multiple of 4)
    batch_size: int = 8                    # crops per step (every style sees the same crops)
    lr: float = 1e-3                       # Adam learning rate, every style
    seed: int = 0                          # seeds the crops and (with each name) the initial weights
    max_zoom: float = 1.25                 # crops zoom into the photos by a random factor in 1..max_zoom
    holdout: int = 4                       # last N photos (sorted) kept out, shown in the sample sheet
    minutes: float = 0.0                   # wall-clock budget of the training loop (0: none; then --steps)
    steps: int = 0                         # stop at this total step (0: none; then --minutes)
    save_every: float = 60.0               # seconds between writes of the bundle, logs and sheet
    log_every: int = 10                    # steps between loss-log entries
    throughput_seconds: float = 20.0       # throughput is measured over this many seconds after the first step
    out: str = "runs/zoo"                  # output folder
    split_mib: float = 0.0                 # write the bundle in parts of at most this many MiB (0: one file)
    weights_dtype: str = "fp16"            # fp16 | fp32: weights in the bundle
    save_optimizer: bool = False           # also save Adam's state (exact resume; 3x the size)
    device: str = "auto"                   # auto | cpu | cuda
    precision: str = "auto"                # auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16
    vgg_weights: str | None = None         # local VGG-16 features state dict (else $STYLECAM_VGG16 / download)
    gatys_photos: str = ""                 # after training: Gatys references of every style for these photos
    gatys_steps: int = 300                 # L-BFGS steps of each reference
    gatys_size: int = 512                  # long side of the photos for the references
    gatys_minutes: float = 0.0             # start no new photo after this many minutes of Gatys (0: no limit)

    def settings(self) -> dict:
        """The run-wide settings stored in the bundle (plain values)."""
        d = asdict(self)
        d.pop("styles")
        return d


def style_seed(seed: int, name: str) -> int:
    """The seed of a style network's initial weights: a function of (seed, name) only."""
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % (2 ** 62)


def environment() -> dict:
    """Versions and device facts recorded in the summary (and printed at the start)."""
    env = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
           "cuda_available": torch.cuda.is_available(), "processor": platform.processor() or platform.machine()}
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["cudnn"] = torch.backends.cudnn.version()
    return env
