"""VGG-16 feature extractor for the perceptual losses (and the classifiers' frozen backbone).

Input: float (N, 3, H, W), RGB, values 0..255; normalised inside with the ImageNet mean/std.
Output: dict layer name -> feature map (N, C, H/s, W/s). Only the layers up to the deepest
requested one are built; parameters are frozen.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from stylecam.errors import UserError

#: index of each ReLU in torchvision's vgg16().features
VGG16_LAYERS = {
    "relu1_1": 1, "relu1_2": 3, "relu2_1": 6, "relu2_2": 8, "relu3_1": 11, "relu3_2": 13,
    "relu3_3": 15, "relu4_1": 18, "relu4_2": 20, "relu4_3": 22, "relu5_1": 25, "relu5_2": 27,
    "relu5_3": 29,
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
ENV_WEIGHTS = "STYLECAM_VGG16"


class FeatureExtractor(nn.Module):
    """Runs ``features`` (an nn.Sequential of VGG layers) and returns the named ReLU outputs."""

    def __init__(self, features: nn.Sequential, layers: dict[str, int]):
        super().__init__()
        self.features = features
        self.layers = dict(layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):  # frozen: always in eval mode
        return super().train(False)

    def forward(self, x: torch.Tensor, upto: str | None = None) -> dict[str, torch.Tensor]:
        """(N,3,H,W) RGB 0..255 -> {layer name: (N,C,h,w)}; ``upto`` stops after that layer."""
        wanted = self.layers if upto is None else {n: i for n, i in self.layers.items() if i <= self.layers[upto]}
        by_index = {i: name for name, i in wanted.items()}
        out, h = {}, (x - self.mean) / self.std
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in by_index:
                out[by_index[i]] = h
                if len(out) == len(by_index):
                    break
        return out


def resolve_weights_path(path: str | os.PathLike | None) -> Path | None:
    """The local VGG-16 weights file to use: the argument, else $STYLECAM_VGG16, else None."""
    chosen = path or os.environ.get(ENV_WEIGHTS) or None
    if chosen is None:
        return None
    chosen = Path(chosen)
    if not chosen.is_file():
        raise UserError(f"VGG-16 weights file not found: {chosen}",
                        f"pass --vgg-weights PATH or set {ENV_WEIGHTS} to torchvision's vgg16().features state dict")
    return chosen


def load_vgg16(layers: list[str], weights_path: str | os.PathLike | None = None) -> FeatureExtractor:
    """ImageNet VGG-16 up to the deepest of ``layers`` (names as in VGG16_LAYERS), frozen.

    Weights come from ``weights_path``, else $STYLECAM_VGG16, else torchvision's
    IMAGENET1K_V1 download. The file may hold only the layers up to the deepest one asked for, and
    in float16 (they are used in float32). Raises UserError when none works or shapes do not match.
    """
    import torchvision

    unknown = [n for n in layers if n not in VGG16_LAYERS]
    if unknown:
        raise UserError(f"unknown VGG-16 layer(s) {unknown}", f"use names from {list(VGG16_LAYERS)}")
    depth = max(VGG16_LAYERS[n] for n in layers) + 1
    path = resolve_weights_path(weights_path)
    if path is not None:
        features = torchvision.models.vgg16(weights=None).features
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise UserError(f"cannot read VGG-16 weights {path}: {type(err).__name__}",
                            "expected a torch state dict of torchvision's vgg16().features") from None
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        features = features[:depth]     # a file holding only the layers needed (e.g. up to relu4_3) is enough
        expected = features.state_dict()
        bad = [k for k, v in expected.items()
               if k not in state or not hasattr(state[k], "shape") or tuple(state[k].shape) != tuple(v.shape)]
        if bad:
            got = tuple(state[bad[0]].shape) if bad[0] in state and hasattr(state[bad[0]], "shape") else "missing"
            raise UserError(f"{path} does not match VGG-16 features: key {bad[0]!r} is {got}, "
                            f"expected {tuple(expected[bad[0]].shape)}",
                            "use torchvision's vgg16().features state dict (keys 0.weight ... 28.bias, or "
                            "up to the deepest layer used)")
        features.load_state_dict({k: state[k].float() for k in expected})    # float16 files too
    else:
        try:
            model = torchvision.models.vgg16(weights=torchvision.models.VGG16_Weights.IMAGENET1K_V1)
        except Exception as err:
            raise UserError(f"cannot download VGG-16 weights ({type(err).__name__})",
                            f"pass --vgg-weights PATH or set {ENV_WEIGHTS} to a local vgg16().features state dict") from None
        features = model.features
    return FeatureExtractor(features[:depth], {n: VGG16_LAYERS[n] for n in layers})


def random_vgg_standin(layers: list[str], width: int = 8, seed: int = 0) -> FeatureExtractor:
    """A small random-weight network with VGG-16's layer names and strides (for fast tests).

    Same topology as VGG-16 (conv3x3+ReLU, max-pool between stages) with ``width``-scaled channels.
    """
    g = torch.Generator().manual_seed(seed)
    widths = {1: width, 2: 2 * width, 3: 4 * width, 4: 8 * width, 5: 8 * width}
    convs_per_stage = {1: 2, 2: 2, 3: 3, 4: 3, 5: 3}
    depth = max(VGG16_LAYERS[n] for n in layers) + 1
    modules: list[nn.Module] = []
    cin = 3
    for stage in range(1, 6):
        for _ in range(convs_per_stage[stage]):
            conv = nn.Conv2d(cin, widths[stage], 3, padding=1)
            with torch.no_grad():
                conv.weight.normal_(0, (2.0 / (9 * cin)) ** 0.5, generator=g)
                conv.bias.zero_()
            modules += [conv, nn.ReLU(inplace=False)]
            cin = widths[stage]
        if stage < 5:
            modules.append(nn.MaxPool2d(2, 2))
    return FeatureExtractor(nn.Sequential(*modules[:depth]), {n: VGG16_LAYERS[n] for n in layers})
