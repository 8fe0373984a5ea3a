"""Tiny style-training runs for the trainer tests: photos of 32 px, a 48 px painting, 20 steps on the
CPU; the VGG-16 layers of the losses (use trainer.nets.vgg.random_vgg_standin(LAYERS) for a stand-in)."""
from __future__ import annotations

from pathlib import Path

from trainer.train_style import StyleTrainConfig

LAYERS = ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]


def tiny_config(photos: Path, painting: Path, out: Path, **over) -> StyleTrainConfig:
    values = dict(name="tiny", style_image=str(painting), data=str(photos), variant="lite", size=32, batch_size=2,
                  iterations=20, style_size=48, holdout=2, checkpoint_every=10, log_every=1, out=str(out / "run"),
                  weights_dir=str(out / "weights"), device="cpu", seed=3)
    values.update(over)
    return StyleTrainConfig(**values)
