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

#: The same taps as 2x2 windows. Window r over the input padded by 1 (its rows r-1 and r) holds
#: everything that upsampled rows 2r-1 and 2r read: ``_WINDOW_TAPS[s, j, k]`` is 1 when upsampled row
#: 2r-1+s reads window row j through full-resolution kernel tap k (-1, 0, +1).
_WINDOW_TAPS = torch.tensor([[[1., 1., 0.], [0., 0., 1.]],
                             [[1., 0., 0.], [0., 1., 1.]]])


def window_conv(padded: torch.Tensor, kernels: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """2x2 window convolution + PixelShuffle, cropped by one pixel on every side.

    padded: (N, Cin, H+2, W+2), the input padded by 1; kernels: (4*Cout, Cin, 2, 2), channel
    o*4 + 2s + t holds output rows 2r-1+s, columns 2c-1+t of window (r, c); bias: (4*Cout,).
    Same dtype as ``padded`` (kernels and bias must match it, as for any conv2d).
    Returns (N, Cout, 2H, 2W). The x2 upsampling layers compute this way: a 3x3 kernel over the
    input would do 9/4 times the multiplications, most of them by the zero taps of each phase.
    """
    return pixel_shuffle_2(nn.functional.conv2d(padded, kernels, bias))[:, :, 1:-1, 1:-1]


def pixel_shuffle_2(x: torch.Tensor) -> torch.Tensor:
    """PixelShuffle(2): (N, 4*C, H, W), channel c*4 + 2s + t -> (N, C, 2H, 2W), pixel (2y+s, 2x+t).

    Written as two transposes that each move one axis (t to the last place, then s past the
    rows), which onnxruntime's CPU provider runs about twice as fast as its DepthToSpace.
    """
    n, c4, h, w = x.shape
    columns = x.reshape(n, c4 // 4, 2, 2, h, w).permute(0, 1, 2, 4, 5, 3)     # (N, C, s, H, W, t)
    rows = columns.reshape(-1, 2, h, 2 * w).permute(0, 2, 1, 3)                # (N*C, H, s, 2W)
    return rows.reshape(n, c4 // 4, 2 * h, 2 * w)


#: For a 3x3 conv at full resolution over a phase tensor (the x2 pixels of row r stored as phases 0
#: and 1 of half-resolution row r): ``PHASE_WINDOW_TAPS[s, j, p, k]`` is 1 when full-resolution row
#: 2r-1+s reads phase p of window row j (half-resolution rows r-1, r) through kernel tap k, that is
#: row 2r-2 + s + k = 2(r-1+j) + p.
PHASE_WINDOW_TAPS = torch.zeros(2, 2, 2, 3)
for _s in range(2):
    for _k in range(3):
        PHASE_WINDOW_TAPS[_s, (_s + _k) // 2, (_s + _k) % 2, _k] = 1.0


def _tap_sums(taps: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Kernels made of sums of the taps of a 3x3 kernel, rows and columns alike.

    taps: (S, R, 3), 1 where output phase s reads through kernel tap k at offset r of its window
    (modules keep it as a buffer, so it is already on the weight's device); weight: (Cout, Cin, 3, 3).
    Returns (S, S, Cout, Cin, R, R), entry [s, t, o, c, r, q] =
    sum over k, l of taps[s, r, k] * taps[t, q, l] * weight[o, c, k, l].
    """
    taps = taps.to(device=weight.device, dtype=weight.dtype)
    rows = torch.matmul(taps[:, None, None], weight[None])                       # (S, Cout, Cin, R, 3)
    return torch.matmul(rows[:, None], taps.transpose(1, 2)[None, :, None, None])


def phase_window_kernels(weight: torch.Tensor, taps: torch.Tensor = PHASE_WINDOW_TAPS) -> torch.Tensor:
    """Full-resolution 3x3 kernel (Cout, Cin, 3, 3) -> (4*Cout, 4*Cin, 2, 2) for window_conv.

    The input is the phase tensor (N, 4*Cin, H, W) of a (N, Cin, 2H, 2W) image, channel c*4 + 2p + q
    holding its pixels (2y+p, 2x+q), padded by one pixel. window_conv then gives the 3x3 conv of
    the full-resolution image without building it. taps: PHASE_WINDOW_TAPS, e.g. a module's
    buffer copy of it on the weight's device.
    """
    cout, cin = weight.shape[:2]
    sums = _tap_sums(taps.reshape(2, 4, 3), weight)                  # (s, t, o, c, (j, p), (i, q))
    sums = sums.reshape(2, 2, cout, cin, 2, 2, 2, 2)                 # (s, t, o, c, j, p, i, q)
    return sums.permute(2, 0, 1, 3, 5, 7, 4, 6).reshape(4 * cout, 4 * cin, 2, 2)


class ResizeConv(nn.Module):
    """Nearest-upsample x2 then a 3x3 conv, computed at the input resolution. (N,Cin,H,W) -> (N,Cout,2H,2W).

    Each window of 2x2 input pixels gives a 2x2 block of output pixels through kernels that are
    sums of the taps of a single full-resolution kernel ``weight`` (Cout,Cin,3,3) (window_conv).
    The four phases share their weights, so unlike a free PixelShuffle conv it cannot stamp a
    2-pixel pattern, and it never builds the upsampled tensor. With zero padding it equals
    Upsample + ZeroPad + Conv exactly; other paddings pad the input, not the upsampled tensor.
    """

    def __init__(self, cin: int, cout: int, padding: str = "reflect"):
        super().__init__()
        if padding not in PADDING_LAYERS:
            raise ValueError(f"unknown padding {padding!r}; use one of {tuple(PADDING_LAYERS)}")
        full_res = nn.Conv2d(cin, cout, 3)
        self.weight = nn.Parameter(full_res.weight.detach().clone())
        self.bias = nn.Parameter(full_res.bias.detach().clone())
        self.pad = PADDING_LAYERS[padding](1)
        # not saved in checkpoints; buffers so that .to(device) moves them with the weights
        self.register_buffer("phase_taps", _PHASE_TAPS.clone(), persistent=False)
        self.register_buffer("window_taps", _WINDOW_TAPS.clone(), persistent=False)

    def phase_kernels(self) -> torch.Tensor:
        """(4*Cout, Cin, 3, 3): channel o*4 + 2*a + b is output channel o at row phase a, column phase b."""
        cout, cin = self.weight.shape[:2]
        return _tap_sums(self.phase_taps, self.weight).permute(2, 0, 1, 3, 4, 5).reshape(4 * cout, cin, 3, 3)

    def window_kernels(self) -> torch.Tensor:
        """(4*Cout, Cin, 2, 2) for window_conv, from the full-resolution kernel."""
        cout, cin = self.weight.shape[:2]
        return _tap_sums(self.window_taps, self.weight).permute(2, 0, 1, 3, 4, 5).reshape(4 * cout, cin, 2, 2)

    def phases(self, x: torch.Tensor) -> torch.Tensor:
        """The result before its pixel shuffle: (N, 4*Cout, H, W), channel o*4 + 2a + b as in phase_kernels."""
        return nn.functional.conv2d(self.pad(x), self.phase_kernels(), self.bias.repeat_interleave(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return window_conv(self.pad(x), self.window_kernels(), self.bias.repeat_interleave(4))
