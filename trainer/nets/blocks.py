"""Building blocks shared by the style network and the classifiers.

All blocks take and return float tensors NCHW. Padding is explicit (a pad layer before an
unpadded conv) so that the same trained weights can be rebuilt with another padding mode.
"""
from __future__ import annotations

import torch
from torch import nn

PADDING_LAYERS = {"reflect": nn.ReflectionPad2d, "zero": nn.ZeroPad2d, "replicate": nn.ReplicationPad2d}
NORM_KINDS = ("instance", "batch", "none")


def make_norm(kind: str, channels: int) -> nn.Module:
    """instance (affine, the style network), batch (classifiers) or none."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; use one of {NORM_KINDS}")


class ConvLayer(nn.Sequential):
    """pad(k//2, mode) -> conv(k, stride) [-> norm] [-> ReLU]. (N,Cin,H,W) -> (N,Cout,H/s,W/s)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: str = "reflect",
                 norm: str = "instance", relu: bool = True, groups: int = 1):
        if padding not in PADDING_LAYERS:
            raise ValueError(f"unknown padding {padding!r}; use one of {tuple(PADDING_LAYERS)}")
        layers: list[nn.Module] = []
        if kernel > 1:
            layers.append(PADDING_LAYERS[padding](kernel // 2))
        layers.append(nn.Conv2d(cin, cout, kernel, stride=stride, groups=groups, bias=norm != "batch"))
        if norm != "none":
            layers.append(make_norm(norm, cout))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """x + (conv3x3-norm-ReLU-conv3x3-norm)(x); shape preserved. ``separable`` uses depthwise+pointwise convs."""

    def __init__(self, channels: int, padding: str = "reflect", norm: str = "instance", separable: bool = False):
        super().__init__()
        if separable:
            self.body = nn.Sequential(
                ConvLayer(channels, channels, 3, padding=padding, norm="none", relu=False, groups=channels),
                ConvLayer(channels, channels, 1, norm=norm, relu=True),
                ConvLayer(channels, channels, 3, padding=padding, norm="none", relu=False, groups=channels),
                ConvLayer(channels, channels, 1, norm=norm, relu=False))
        else:
            self.body = nn.Sequential(
                ConvLayer(channels, channels, 3, padding=padding, norm=norm, relu=True),
                ConvLayer(channels, channels, 3, padding=padding, norm=norm, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpsampleConv(nn.Sequential):
    """Nearest-neighbour upsample x2 then ConvLayer: no transposed conv, hence no checkerboard."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, padding: str = "reflect", norm: str = "instance"):
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"),
                         ConvLayer(cin, cout, kernel, padding=padding, norm=norm))


#: For output phase a (0: even row, 1: odd row) of a x2 nearest upsample, which input-resolution
#: offset (-1, 0, +1; rows) each full-resolution kernel tap (-1, 0, +1; columns) reads.
_PHASE_TAPS = torch.tensor([[[1., 0., 0.], [0., 1., 1.], [0., 0., 0.]],
                            [[0., 0., 0.], [1., 1., 0.], [0., 0., 1.]]])


class ResizeConv(nn.Module):
    """Nearest-upsample x2 then a 3x3 conv, computed at the input resolution. (N,Cin,H,W) -> (N,Cout,2H,2W).

    One 3x3 conv to 4*Cout channels whose four phase kernels are sums of the taps of a single
    full-resolution kernel ``weight`` (Cout,Cin,3,3), then PixelShuffle. The phases share their
    weights, so unlike a free PixelShuffle conv it cannot stamp a 2-pixel pattern, and it never
    builds the upsampled tensor. With zero padding it equals Upsample + ZeroPad + Conv exactly.
    """

    def __init__(self, cin: int, cout: int, padding: str = "reflect"):
        super().__init__()
        if padding not in PADDING_LAYERS:
            raise ValueError(f"unknown padding {padding!r}; use one of {tuple(PADDING_LAYERS)}")
        full_res = nn.Conv2d(cin, cout, 3)
        self.weight = nn.Parameter(full_res.weight.detach().clone())
        self.bias = nn.Parameter(full_res.bias.detach().clone())
        self.pad = PADDING_LAYERS[padding](1)
        self.shuffle = nn.PixelShuffle(2)
        self.register_buffer("phase_taps", _PHASE_TAPS.clone(), persistent=False)

    def phase_kernels(self) -> torch.Tensor:
        """(4*Cout, Cin, 3, 3): channel o*4 + 2*a + b is output channel o at row phase a, column phase b."""
        taps = self.phase_taps.to(self.weight.dtype)
        rows = torch.matmul(taps[:, None, None], self.weight[None])            # (2, Cout, Cin, 3, 3)
        both = torch.matmul(rows[:, None], taps.transpose(1, 2)[None, :, None, None])  # (2, 2, Cout, Cin, 3, 3)
        cout, cin = self.weight.shape[:2]
        return both.permute(2, 0, 1, 3, 4, 5).reshape(4 * cout, cin, 3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias.repeat_interleave(4)
        return self.shuffle(nn.functional.conv2d(self.pad(x), self.phase_kernels(), bias))
