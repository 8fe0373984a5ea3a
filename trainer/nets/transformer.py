"""The style network (Johnson et al. 2016, instance norm, upsample+conv decoder).

Input and output: float32 (N, 3, H, W), RGB, values 0..255 (output unclamped; the runtime
clamps). H and W must be multiples of 4 (two stride-2 stages). The two main configurations:
FULL (32/64/128 channels, 5 residual blocks, 9x9 ends, ~1.68 M
parameters) and LITE, for live CPU use: its ends run at half resolution (a stride-2 first
conv; the last conv predicts 2x2 blocks of pixels, unfolded by PixelShuffle, with the four
phases tied as in nearest-upsample + conv), because on a CPU the full-resolution layers with
few channels cost more in memory traffic (pad, norm, layout changes) than in arithmetic.
LITE_FR is LITE with one full-resolution layer at the end (the last x2 step goes to 8 channels,
then a 3x3 conv), for paintings whose fine lines LITE can only draw as a regular hatch.
Every checkpoint stores its own TransformerConfig, so files of earlier designs that are no longer
in CONFIGS still load: lite-v1 (8/16/32 channels, full-resolution ends) as a TransformerNet,
lite-shuffle (LITE with free PixelShuffle phases, which learn a dot pattern) as a
HalfResTransformerNet without tied_upsampling.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from trainer.nets.blocks import (PHASE_WINDOW_TAPS, ConvLayer, ResidualBlock, ResizeConv, UpsampleConv,
                                 phase_window_kernels, window_conv)


@dataclass(frozen=True)
class TransformerConfig:
    channels: tuple[int, int, int] = (32, 64, 128)  # widths at full, 1/2 and 1/4 resolution
    residual_blocks: int = 5                         # blocks at 1/4 resolution
    end_kernel: int = 9                              # kernel of the first and last conv
    separable: bool = False                          # depthwise-separable residual blocks
    padding: str = "reflect"                         # reflect | zero | replicate, every conv
    half_res_ends: bool = False                      # no full-res layer; channels[0] unused
    tied_upsampling: bool = False                    # half_res_ends: ResizeConv instead of free PixelShuffle convs
    full_res_head: bool = False                      # half_res_ends + tied: last ResizeConv to channels[0], then a full-res 3x3 conv

    def to_dict(self) -> dict:
        return {**asdict(self), "channels": list(self.channels)}

    @staticmethod
    def from_dict(d: dict) -> "TransformerConfig":
        return TransformerConfig(**{**d, "channels": tuple(d["channels"])})


FULL = TransformerConfig()
LITE = TransformerConfig(channels=(0, 16, 32), residual_blocks=3, end_kernel=3, half_res_ends=True,
                         tied_upsampling=True)
#: LITE with a full-resolution head (ResizeConv to 8 channels, then a 3x3 conv), for fine-textured paintings
LITE_FR = replace(LITE, channels=(8, 16, 32), full_res_head=True)
CONFIGS = {"full": FULL, "lite": LITE, "lite-fr": LITE_FR}


def runtime_variant(config_name: str) -> str:
    """The variant a model of this configuration is listed under at run time: "full", else "lite"."""
    return "full" if config_name == "full" else "lite"


class TransformerNet(nn.Module):
    """(N,3,H,W) RGB 0..255 -> (N,3,H,W) RGB ~0..255; H, W multiples of 4."""

    def __init__(self, config: TransformerConfig = FULL):
        super().__init__()
        self.config = config
        c1, c2, c3, pad = *config.channels, config.padding
        self.encoder = nn.Sequential(
            ConvLayer(3, c1, config.end_kernel, padding=pad),
            ConvLayer(c1, c2, 3, stride=2, padding=pad),
            ConvLayer(c2, c3, 3, stride=2, padding=pad))
        self.residuals = nn.Sequential(
            *[ResidualBlock(c3, padding=pad, separable=config.separable) for _ in range(config.residual_blocks)])
        self.decoder = nn.Sequential(
            UpsampleConv(c3, c2, padding=pad),
            UpsampleConv(c2, c1, padding=pad),
            ConvLayer(c1, 3, config.end_kernel, padding=pad, norm="none", relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.residuals(self.encoder(x / 255.0))) * 255.0


#: padding modes of the LITE_FR head's full-resolution conv -> the padding of its phase tensor that
#: reads the same pixels (a full-resolution reflect pad of 1 reads the pixel next to the border,
#: which is the other phase of the same half-resolution pixel: edge padding of the phases)
PHASE_SPACE_PADDING = {"reflect": "replicate", "zero": "constant"}


class HalfResTransformerNet(nn.Module):
    """LITE: stride-2 first conv, residual blocks at 1/4, sub-pixel decoder, a skip at 1/2.

    (N,3,H,W) RGB 0..255 -> (N,3,H,W); the half-resolution features of the first conv are
    added back before the last conv, which predicts each 2x2 block of output pixels. With
    ``tied_upsampling`` (LITE) both x2 steps are ResizeConv: nearest-upsample + 3x3 conv computed
    at the lower resolution; without it (the earlier lite-shuffle files) a 1x1 conv and a 3x3 conv
    with free PixelShuffle phases.
    """

    def __init__(self, config: TransformerConfig = LITE):
        super().__init__()
        self.config = config
        _, c2, c3 = config.channels
        pad, k = config.padding, config.end_kernel
        self.stem = ConvLayer(3, c2, k, stride=2, padding=pad)                    # (N,c2,H/2,W/2)
        self.down = ConvLayer(c2, c3, 3, stride=2, padding=pad)                   # (N,c3,H/4,W/4)
        self.residuals = nn.Sequential(
            *[ResidualBlock(c3, padding=pad, separable=config.separable) for _ in range(config.residual_blocks)])
        if config.tied_upsampling:
            self.up = nn.Sequential(ResizeConv(c3, c2, padding=pad), nn.InstanceNorm2d(c2, affine=True),
                                    nn.ReLU(inplace=True))                        # (N,c2,H/2,W/2)
            if config.full_res_head:                                              # (N,3,H,W)
                c1 = config.channels[0]
                self.head = nn.Sequential(ResizeConv(c2, c1, padding=pad), nn.InstanceNorm2d(c1, affine=True),
                                          nn.ReLU(inplace=True), ConvLayer(c1, 3, k, padding=pad, norm="none", relu=False))
            else:
                self.head = ResizeConv(c2, 3, padding=pad)                        # (N,3,H,W)
        else:
            self.up = nn.Sequential(ConvLayer(c3, 4 * c2, 1), nn.PixelShuffle(2))
            self.head = nn.Sequential(ConvLayer(c2, 12, k, padding=pad, norm="none", relu=False),
                                      nn.PixelShuffle(2))
        #: compute the LITE_FR head in phase space (same values, faster); its padding must map onto the phases
        self.head_in_phases = (config.tied_upsampling and config.full_res_head and k == 3
                               and pad in PHASE_SPACE_PADDING)
        if self.head_in_phases:  # not saved in checkpoints; moves with .to(device)
            self.register_buffer("phase_window_taps", PHASE_WINDOW_TAPS.clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = self.stem(x / 255.0)
        features = half + self.up(self.residuals(self.down(half)))
        if self.head_in_phases:
            return self.full_res_head_in_phases(features) * 255.0
        return self.head(features) * 255.0

    def full_res_head_in_phases(self, features: torch.Tensor) -> torch.Tensor:
        """The LITE_FR head (N,c2,H/2,W/2) -> (N,3,H,W) in the network's 0..1 scale (forward multiplies
        by 255), same values as ``self.head``, never at full resolution.

        Its x2 step stops at the phase tensor (N,4*c1,H/2,W/2); instance norm (stats over each
        channel's four phases) and ReLU run there, and the full-resolution 3x3 conv runs as a 2x2
        window conv over it, its padding mapped by PHASE_SPACE_PADDING.
        """
        resize, norm, _, last = self.head
        phases = resize.phases(features)
        n, c4, h, w = phases.shape
        phases = torch.relu(norm(phases.reshape(n, c4 // 4, 4 * h, w)).reshape(n, c4, h, w))
        padded = nn.functional.pad(phases, (1, 1, 1, 1), mode=PHASE_SPACE_PADDING[self.config.padding])
        conv = last[-1]
        return window_conv(padded, phase_window_kernels(conv.weight, self.phase_window_taps),
                           conv.bias.repeat_interleave(4))


def transformer_from_config(config: TransformerConfig) -> nn.Module:
    """The network class that implements ``config`` (HalfResTransformerNet for half_res_ends)."""
    return HalfResTransformerNet(config) if config.half_res_ends else TransformerNet(config)


def build_transformer(variant: str = "full", padding: str = "reflect") -> nn.Module:
    """A fresh network of the named configuration (a key of CONFIGS) with the given padding."""
    return transformer_from_config(replace(CONFIGS[variant], padding=padding))


def count_macs(model: nn.Module, height: int, width: int) -> int:
    """Multiply-accumulates of the convolutions for one (1,3,H,W) input (norms, ReLU, adds ignored).

    Counts the network as defined (a ResizeConv as the 3x3 conv at the upsampled resolution, the
    LITE_FR head at full resolution); the 2x2 window forms compute the same with fewer.
    """
    total = 0

    def hook(module: nn.Module, _inputs, output):
        nonlocal total
        if isinstance(module, ResizeConv):   # a 3x3 conv per output pixel, computed at the lower resolution
            total += output.numel() * module.weight.shape[1] * 9
            return
        kh, kw = module.kernel_size
        total += output.numel() * (module.in_channels // module.groups) * kh * kw

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, ResizeConv))]
    in_phases = [m for m in model.modules() if getattr(m, "head_in_phases", False)]
    for m in in_phases:         # the network as defined: its full-resolution conv runs as a module
        m.head_in_phases = False
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, height, width))
    finally:
        for h in handles:
            h.remove()
        for m in in_phases:
            m.head_in_phases = True
    return total
