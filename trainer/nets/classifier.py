"""Classifiers built from the style network's own blocks, described by a compact spec string.

A spec is a dash-separated list of tokens, read left to right (the network reads like its figure):

  convC[kK][sS]  ConvLayer: C filters, kernel K (default 3), stride S (default 1), padding K//2, ReLU
  bn | in        batch / instance norm for the conv, res or vgg16 just before it (default: no norm)
  res            ResidualBlock at the current width (two 3x3 convs and a skip)
  pool | avgpool 2x2 max / average pooling, stride 2
  gap            global average pooling; the class scores then come from a 1x1 conv before it,
                 so the network is fully convolutional (any input size)
  fcN            fully connected layer with N units and ReLU (flattens first)
  drop[P]        dropout with probability P (default 0.5)
  vgg16:LAYER    (first token only) the frozen ImageNet VGG-16 features up to LAYER, e.g. relu3_3

Unless the spec ends with ``gap``, a final fully connected layer maps to the classes.
Input: float32 (N, C, H, W) normalised as the dataset's normalisation says; output: logits (N, classes).
"""
from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import asdict, dataclass

import torch
from torch import nn

from stylecam.errors import UserError
from trainer.nets.blocks import ConvLayer, ResidualBlock, make_norm

PRESETS = {
    "mnist-small": "conv32-bn-pool-conv64-bn-pool-drop0.25-fc128-drop0.5",
    "fashion-small": "conv32-bn-conv32-bn-pool-conv64-bn-conv64-bn-pool-drop0.25-fc256-drop0.5",
    "cifar-fast": "conv32-bn-pool-conv64-bn-pool-conv128-bn-pool-fc256",
    "cifar-resnet": "conv32-bn-pool-conv64-bn-pool-conv128-bn-res-bn-pool-fc256",
    "all-conv": "conv32-bn-conv32-bn-conv64s2-bn-conv64-bn-conv128s2-bn-conv128-bn-gap",
    "vgg16-head": "vgg16:relu3_3-bn-pool-fc256-drop0.5",
}

_TOKEN = re.compile(r"^(?:conv(?P<conv>\d+)(?:k(?P<k>\d+))?(?:s(?P<s>\d+))?|fc(?P<fc>\d+)"
                    r"|drop(?P<drop>0?\.\d+|0)?|(?P<word>bn|in|res|pool|avgpool|gap)"
                    r"|vgg16:(?P<vgg>\w+))$")


@dataclass(frozen=True)
class ClassifierConfig:
    arch: str                # the spec string (presets are resolved to their spec)
    in_channels: int         # 1 (gray) or 3 (RGB)
    num_classes: int
    height: int              # input size the network was trained at
    width: int
    padding: str = "zero"    # padding mode of every conv: zero | reflect | replicate
    mean: tuple[float, ...] = (0.0,)  # input normalisation (needed by the vgg16 backbone)
    std: tuple[float, ...] = (1.0,)

    def to_dict(self) -> dict:
        return {**asdict(self), "mean": list(self.mean), "std": list(self.std)}

    @staticmethod
    def from_dict(d: dict) -> "ClassifierConfig":
        return ClassifierConfig(**{**d, "mean": tuple(d["mean"]), "std": tuple(d["std"])})


def resolve_arch(arch: str) -> str:
    """A preset name or a spec string -> the spec string."""
    return PRESETS.get(arch, arch)


def parse_spec(spec: str) -> list[dict]:
    """Spec string -> list of layer dicts ({"kind": ..., ...}); UserError naming the bad token."""
    spec = resolve_arch(spec.strip())
    hint = f"tokens: convC[kK][sS] bn in res pool avgpool gap fcN drop[P], vgg16:LAYER; presets: {', '.join(PRESETS)}"
    if not spec:
        raise UserError("empty classifier spec", hint)
    layers: list[dict] = []
    for i, token in enumerate(spec.split("-")):
        m = _TOKEN.match(token)
        if m is None:
            raise UserError(f"bad token {token!r} at position {i + 1} of classifier spec {spec!r}", hint)
        word = m["word"]
        if m["conv"]:
            k, s = int(m["k"] or 3), int(m["s"] or 1)
            if int(m["conv"]) < 1 or k < 1 or s < 1:
                raise UserError(f"bad conv token {token!r}: filters, kernel and stride must be >= 1", hint)
            layers.append({"kind": "conv", "filters": int(m["conv"]), "kernel": k, "stride": s, "norm": "none"})
        elif m["fc"]:
            if int(m["fc"]) < 1:
                raise UserError(f"bad token {token!r}: fc needs at least one unit", hint)
            layers.append({"kind": "fc", "units": int(m["fc"])})
        elif token.startswith("drop"):
            layers.append({"kind": "drop", "p": float(m["drop"]) if m["drop"] else 0.5})
        elif m["vgg"]:
            if i != 0:
                raise UserError(f"{token!r} must be the first token of the spec", hint)
            layers.append({"kind": "vgg16", "layer": m["vgg"], "norm": "none"})
        elif word in ("bn", "in"):
            if not layers or layers[-1]["kind"] not in ("conv", "res", "vgg16"):
                raise UserError(f"{word!r} at position {i + 1} must follow a conv, res or vgg16 token", hint)
            if layers[-1]["norm"] != "none":
                raise UserError(f"two norms in a row at position {i + 1} of {spec!r}", hint)
            layers[-1]["norm"] = "batch" if word == "bn" else "instance"
        elif word == "res":
            if not any(l["kind"] in ("conv", "vgg16") for l in layers):
                raise UserError("res needs a conv before it (it keeps the width of the previous layer)", hint)
            layers.append({"kind": "res", "norm": "none"})
        else:
            layers.append({"kind": word})
    flat_at = next((i for i, l in enumerate(layers) if l["kind"] in ("fc", "gap")), None)
    if flat_at is not None:
        bad = [l["kind"] for l in layers[flat_at + 1:] if l["kind"] not in ("fc", "drop")]
        if bad:
            raise UserError(f"{bad[0]!r} after {layers[flat_at]['kind']!r} in {spec!r}: "
                            "spatial layers must come before fc/gap", hint)
    if any(l["kind"] == "gap" for l in layers) and layers[-1]["kind"] != "gap":
        raise UserError(f"'gap' must be the last token of {spec!r}", hint)
    return layers


class VGGBackbone(nn.Module):
    """Frozen VGG-16 features on dataset-normalised input: undo the normalisation, x255, gray -> RGB."""

    def __init__(self, extractor: nn.Module, layer: str, mean, std):
        super().__init__()
        self.extractor, self.layer = extractor, layer
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pixels = (x * self.std + self.mean) * 255.0
        if pixels.shape[1] == 1:
            pixels = pixels.expand(-1, 3, -1, -1)
        return self.extractor(pixels)[self.layer]


class Classifier(nn.Module):
    """(N, C, H, W) normalised float32 -> logits (N, num_classes). ``body`` holds one named module per token."""

    def __init__(self, config: ClassifierConfig, vgg_extractor: nn.Module | None = None):
        super().__init__()
        self.config = config
        layers = parse_spec(config.arch)
        modules: "OrderedDict[str, nn.Module]" = OrderedDict()
        counts: dict[str, int] = {}
        # Track the shape as we go, so fc layers know their input size.
        shape = (config.in_channels, config.height, config.width)
        probe = torch.zeros(1, *shape)

        def add(kind: str, module: nn.Module) -> None:
            nonlocal probe
            counts[kind] = counts.get(kind, 0) + 1
            modules[kind if kind in ("vgg", "norm", "head", "gap") else f"{kind}{counts[kind]}"] = module
            with torch.no_grad():
                was = module.training
                probe = module.eval()(probe)
                module.train(was)

        for spec in layers:
            kind, channels = spec["kind"], probe.shape[1]
            if kind == "vgg16":
                if vgg_extractor is None:
                    from trainer.nets.vgg import load_vgg16
                    vgg_extractor = load_vgg16([spec["layer"]])
                add("vgg", VGGBackbone(vgg_extractor, spec["layer"], config.mean, config.std))
                if spec["norm"] != "none":   # trained norm: brings the large VGG activations to unit scale
                    add("norm", make_norm(spec["norm"], probe.shape[1]))
            elif kind == "conv":
                if probe.shape[-1] < spec["stride"] or probe.shape[-2] < spec["stride"]:
                    raise UserError(f"conv stride {spec['stride']} on a {tuple(probe.shape[1:])} map",
                                    "the input is too small for this spec; remove a pool or stride")
                add("conv", ConvLayer(channels, spec["filters"], spec["kernel"], spec["stride"],
                                      padding=config.padding, norm=spec["norm"]))
            elif kind == "res":
                add("res", ResidualBlock(channels, padding=config.padding, norm=spec["norm"]))
            elif kind in ("pool", "avgpool"):
                if min(probe.shape[-2:]) < 2:
                    raise UserError(f"pool on a {tuple(probe.shape[1:])} map",
                                    "the input is too small for this many pools; remove one")
                add(kind, nn.MaxPool2d(2) if kind == "pool" else nn.AvgPool2d(2))
            elif kind == "gap":
                add("head", nn.Conv2d(channels, config.num_classes, 1))
                add("gap", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()))
            elif kind == "fc":
                add("fc", nn.Sequential(nn.Flatten(), nn.Linear(probe[0].numel(), spec["units"]),
                                        nn.ReLU(inplace=True)))
            elif kind == "drop":
                add("drop", nn.Dropout(spec["p"]))
        if layers[-1]["kind"] != "gap":
            add("head", nn.Sequential(nn.Flatten(), nn.Linear(probe[0].numel(), config.num_classes)))
        self.body = nn.Sequential(modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def build_classifier(arch: str, in_channels: int, num_classes: int, height: int, width: int,
                     padding: str = "zero", mean=(0.0,), std=(1.0,),
                     vgg_extractor: nn.Module | None = None) -> Classifier:
    """Preset name or spec -> Classifier. ``vgg_extractor`` replaces the ImageNet VGG-16 (tests)."""
    config = ClassifierConfig(resolve_arch(arch), in_channels, num_classes, height, width, padding,
                              tuple(float(m) for m in mean), tuple(float(s) for s in std))
    return Classifier(config, vgg_extractor)


@dataclass(frozen=True)
class LayerRow:
    name: str                    # module name in Classifier.body, e.g. "conv2"
    out_shape: tuple[int, ...]   # output shape without the batch dimension, e.g. (32, 28, 28)
    params: int                  # trainable parameters of this layer
    frozen: int = 0              # frozen parameters (VGG-16 backbone)


def summarize(model: Classifier) -> list[LayerRow]:
    """One row per layer: output shape (C, H, W) or (features,) and parameter counts."""
    cfg = model.config
    x = torch.zeros(1, cfg.in_channels, cfg.height, cfg.width)
    rows = []
    was = model.training
    model.eval()
    with torch.no_grad():
        for name, module in model.body.named_children():
            x = module(x)
            params = list(module.parameters())
            rows.append(LayerRow(name, tuple(x.shape[1:]),
                                 sum(p.numel() for p in params if p.requires_grad),
                                 sum(p.numel() for p in params if not p.requires_grad)))
    model.train(was)
    return rows


def format_summary(model: Classifier) -> str:
    """The summary as a text table with totals."""
    rows = summarize(model)
    cfg = model.config
    lines = [f"{'layer':<10}{'output shape':>18}{'params':>12}",
             f"{'input':<10}{str((cfg.in_channels, cfg.height, cfg.width)):>18}{0:>12,}"]
    for r in rows:
        extra = f"  (+{r.frozen:,} frozen)" if r.frozen else ""
        lines.append(f"{r.name:<10}{str(r.out_shape):>18}{r.params:>12,}{extra}")
    total = sum(r.params for r in rows)
    frozen = sum(r.frozen for r in rows)
    lines.append(f"{'total':<10}{'':>18}{total:>12,}" + (f"  (+{frozen:,} frozen)" if frozen else ""))
    return "\n".join(lines)
