"""Perceptual losses: content (feature MSE), Gram-matrix style (MSE of Grams), total variation.

Images are float (N, 3, H, W), RGB, 0..255. One loss-network pass over the output serves
all terms; the content photos' target features are computed without autograd and only up
to the content layer (no backward through them, a third of VGG at relu2_2); style Gram
targets are computed once, when the loss is built.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_STYLE_LAYERS = {"relu1_2": 1.0, "relu2_2": 1.0, "relu3_3": 1.0, "relu4_3": 1.0}


@dataclass(frozen=True)
class LossWeights:
    content: float = 1.0                    # weight of the content term
    style: float = 1e5                      # weight of the summed style term
    tv: float = 1e-7                        # weight of total variation (on 0..255 pixels)
    content_layer: str = "relu2_2"          # VGG layer compared for content
    style_layers: dict = field(default_factory=lambda: dict(DEFAULT_STYLE_LAYERS))  # layer -> weight

    def to_dict(self) -> dict:
        return asdict(self)


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, C): F F^T / (C H W)."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Sum of squared neighbour differences, averaged over the batch. (N,C,H,W) -> scalar."""
    dh = (images[:, :, 1:, :] - images[:, :, :-1, :]).pow(2).sum()
    dw = (images[:, :, :, 1:] - images[:, :, :, :-1]).pow(2).sum()
    return (dh + dw) / images.shape[0]


class PerceptualLoss(nn.Module):
    """Content + style + TV against fixed style targets.

    ``loss_net`` maps (N,3,H,W) RGB 0..255 to a dict of named feature maps and must
    return at least the content layer and every style layer.
    """

    def __init__(self, loss_net: nn.Module, style_image: torch.Tensor, weights: LossWeights):
        super().__init__()
        self.loss_net = loss_net
        self.weights = weights
        with torch.no_grad():
            feats = loss_net(style_image)
        for name in weights.style_layers:
            self.register_buffer(f"target_{name}", gram_matrix(feats[name].float()))

    def style_target(self, layer: str) -> torch.Tensor:
        return getattr(self, f"target_{layer}")

    def terms(self, output: torch.Tensor, content: torch.Tensor,
              content_features: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Weighted loss terms {content, style, tv, total} for a batch (one loss-net pass over the output).

        content_features: precomputed features of ``content`` (e.g. Gatys), else computed here
        without autograd, up to the content layer only.
        """
        w = self.weights
        if content_features is None:
            with torch.no_grad():
                content_features = self.loss_net(content.to(output.dtype), upto=w.content_layer)
        out_f = self.loss_net(output)
        content_target = content_features[w.content_layer]
        content_loss = F.mse_loss(out_f[w.content_layer].float(), content_target.float())
        style_loss = output.new_zeros((), dtype=torch.float32)
        for layer, lw in w.style_layers.items():
            g = gram_matrix(out_f[layer].float())
            target = self.style_target(layer).expand_as(g)
            style_loss = style_loss + lw * F.mse_loss(g, target)
        tv = total_variation(output.float())
        terms = {"content": w.content * content_loss, "style": w.style * style_loss, "tv": w.tv * tv}
        terms["total"] = terms["content"] + terms["style"] + terms["tv"]
        return terms

    def forward(self, output: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        return self.terms(output, content)["total"]


class MultiStyleLoss(nn.Module):
    """The PerceptualLoss of K styles at once, one loss-network pass over all their outputs.

    Style k has its own Gram targets and its own weights (``LossWeights``; every style uses the
    same content layer). ``outputs`` are the K styles' stylizations of the same content batch,
    style-major: float (K*B, 3, H, W), RGB, 0..255. Grams and losses are computed in float32.
    Term k equals PerceptualLoss(style k).terms(outputs[k*B:(k+1)*B], content).
    """

    def __init__(self, loss_net: nn.Module, style_images: list[torch.Tensor], weights: list[LossWeights]):
        super().__init__()
        if len(style_images) != len(weights) or not weights:
            raise ValueError("one LossWeights per style image, at least one")
        if len({w.content_layer for w in weights}) != 1:
            raise ValueError("every style must use the same content layer")
        self.loss_net = loss_net
        self.content_layer = weights[0].content_layer
        self.layers = sorted({layer for w in weights for layer in w.style_layers})
        self.count = len(weights)
        self.register_buffer("content_weight", torch.tensor([w.content for w in weights], dtype=torch.float32))
        self.register_buffer("style_weight", torch.tensor([w.style for w in weights], dtype=torch.float32))
        self.register_buffer("tv_weight", torch.tensor([w.tv for w in weights], dtype=torch.float32))
        self.register_buffer("layer_weight", torch.tensor(
            [[w.style_layers.get(layer, 0.0) for layer in self.layers] for w in weights], dtype=torch.float32))
        targets: dict[str, list[torch.Tensor]] = {layer: [] for layer in self.layers}
        with torch.no_grad():
            for image in style_images:          # paintings differ in size: one pass each, once
                feats = loss_net(image)
                for layer in self.layers:
                    targets[layer].append(gram_matrix(feats[layer].float())[0])
        for layer in self.layers:               # (K, C, C)
            self.register_buffer(f"target_{layer}", torch.stack(targets[layer]))

    def content_features(self, content: torch.Tensor) -> torch.Tensor:
        """Features of the content batch (B,3,H,W) at the content layer, without autograd."""
        with torch.no_grad():
            return self.loss_net(content, upto=self.content_layer)[self.content_layer]

    def terms(self, outputs: torch.Tensor, content: torch.Tensor | None = None,
              content_features: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Weighted terms {content, style, tv, total}, each float32 (K,): one value per style."""
        k = self.count
        if content_features is None:
            content_features = self.content_features(content.to(outputs.dtype))
        feats = self.loss_net(outputs)
        out_c = feats[self.content_layer].float()
        out_c = out_c.reshape(k, -1, *out_c.shape[1:])
        content_loss = (out_c - content_features.float()[None]).pow(2).flatten(1).mean(1)
        style_loss = outputs.new_zeros(k, dtype=torch.float32)
        for j, layer in enumerate(self.layers):
            g = gram_matrix(feats[layer].float())
            g = g.reshape(k, -1, *g.shape[1:])
            per_style = (g - getattr(self, f"target_{layer}")[:, None]).pow(2).flatten(1).mean(1)
            style_loss = style_loss + self.layer_weight[:, j] * per_style
        images = outputs.float().reshape(k, -1, *outputs.shape[1:])
        dh = (images[:, :, :, 1:, :] - images[:, :, :, :-1, :]).pow(2).flatten(1).sum(1)
        dw = (images[:, :, :, :, 1:] - images[:, :, :, :, :-1]).pow(2).flatten(1).sum(1)
        tv = (dh + dw) / images.shape[1]
        terms = {"content": self.content_weight * content_loss, "style": self.style_weight * style_loss,
                 "tv": self.tv_weight * tv}
        terms["total"] = terms["content"] + terms["style"] + terms["tv"]
        return terms
