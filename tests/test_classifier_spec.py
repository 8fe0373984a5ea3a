"""Spec strings, presets, and the summary table against the formulas W' = (W - F + 2P)/S + 1, params = K*F*F*D + K."""
from __future__ import annotations

import pytest
import torch

from stylecam.errors import UserError
from trainer.nets.classifier import PRESETS, build_classifier, format_summary, parse_spec, summarize
from trainer.nets.vgg import random_vgg_standin


def out_size(w, f, p, s):
    return (w - f + 2 * p) // s + 1


def conv_params(k, f, d, bias=True):
    return k * f * f * d + (k if bias else 0)


def test_parse_tokens():
    layers = parse_spec("conv8k5s2-bn-res-in-pool-avgpool-drop0.25-fc16-drop")
    assert layers[0] == {"kind": "conv", "filters": 8, "kernel": 5, "stride": 2, "norm": "batch"}
    assert layers[1] == {"kind": "res", "norm": "instance"}
    assert [l["kind"] for l in layers[2:]] == ["pool", "avgpool", "drop", "fc", "drop"]
    assert layers[4]["p"] == 0.25 and layers[6]["p"] == 0.5 and layers[5]["units"] == 16
    assert parse_spec("vgg16:relu2_2-bn-fc8")[0] == {"kind": "vgg16", "layer": "relu2_2", "norm": "batch"}


def test_presets_resolve_and_parse():
    assert parse_spec("cifar-fast") == parse_spec(PRESETS["cifar-fast"])
    for name in PRESETS:
        assert parse_spec(name)


@pytest.mark.parametrize("spec, message", [
    ("", "empty"),
    ("conv", "bad token 'conv' at position 1"),
    ("conv8-convx", "bad token 'convx' at position 2"),
    ("bn-conv8", "must follow a conv"),
    ("conv8-pool-bn", "must follow a conv"),
    ("conv8-bn-bn", "two norms"),
    ("res-conv8", "res needs a conv"),
    ("conv8-fc10-conv8", "spatial layers must come before"),
    ("conv8-gap-fc4", "'gap' must be the last"),
    ("conv8-vgg16:relu1_1", "must be the first token"),
    ("conv0", "must be >= 1"),
    ("conv8-drop1.5", "bad token"),
    ("nonsense-preset", "presets: mnist-small"),
])
def test_bad_specs(spec, message):
    with pytest.raises(UserError, match=message):
        parse_spec(spec)


def test_summary_matches_formulas():
    model = build_classifier("conv8k5s2-pool-conv4-fc6", 1, 10, 12, 12)
    rows = {r.name: r for r in summarize(model)}
    w1 = out_size(12, 5, 2, 2)                     # (12 - 5 + 4) // 2 + 1 = 6
    assert rows["conv1"].out_shape == (8, w1, w1) == (8, 6, 6)
    assert rows["conv1"].params == conv_params(8, 5, 1) == 208
    assert rows["pool1"].out_shape == (8, 3, 3) and rows["pool1"].params == 0
    assert rows["conv2"].out_shape == (4, out_size(3, 3, 1, 1), 3)
    assert rows["conv2"].params == conv_params(4, 3, 8) == 292
    assert rows["fc1"].out_shape == (6,) and rows["fc1"].params == 4 * 3 * 3 * 6 + 6
    assert rows["head"].out_shape == (10,) and rows["head"].params == 6 * 10 + 10
    total = sum(p.numel() for p in model.parameters())
    assert sum(r.params for r in rows.values()) == total
    text = format_summary(model)
    assert "conv1" in text and "(8, 6, 6)" in text and f"{total:,}" in text.splitlines()[-1]


def test_summary_batch_norm_and_residual_counts():
    model = build_classifier("conv16-bn-res-bn-pool-gap", 3, 5, 8, 8)
    rows = {r.name: r for r in summarize(model)}
    # batch norm replaces the conv bias: K*F*F*D conv weights + 2K norm parameters
    assert rows["conv1"].params == conv_params(16, 3, 3, bias=False) + 2 * 16
    assert rows["res1"].params == 2 * (conv_params(16, 3, 16, bias=False) + 2 * 16)
    assert rows["res1"].out_shape == (16, 8, 8)
    assert rows["head"].out_shape == (5, 4, 4) and rows["head"].params == conv_params(5, 1, 16)
    assert rows["gap"].out_shape == (5,)


def test_fully_convolutional_variant_takes_any_size():
    model = build_classifier("all-conv", 3, 10, 32, 32).eval()
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert model(torch.zeros(1, 3, 48, 40)).shape == (1, 10)


@pytest.mark.parametrize("preset, channels, size", [
    ("mnist-small", 1, 28), ("fashion-small", 1, 28), ("cifar-fast", 3, 32), ("cifar-resnet", 3, 32),
    ("all-conv", 3, 32)])
def test_presets_build_and_run(preset, channels, size):
    model = build_classifier(preset, channels, 10, size, size).eval()
    assert model(torch.zeros(2, channels, size, size)).shape == (2, 10)


def test_vgg16_head_is_frozen_backbone_with_trained_head():
    vgg = random_vgg_standin(["relu3_3"], width=4)
    model = build_classifier("vgg16-head", 1, 10, 16, 16, mean=[0.5], std=[0.25], vgg_extractor=vgg)
    rows = {r.name: r for r in summarize(model)}
    assert rows["vgg"].params == 0 and rows["vgg"].frozen == sum(p.numel() for p in vgg.parameters())
    assert rows["vgg"].out_shape == (16, 4, 4)           # 3 stages of width 4, two pools
    assert rows["norm"].params == 2 * 16                 # trained batch norm on the frozen features
    assert model(torch.zeros(3, 1, 16, 16)).shape == (3, 10)
    assert "frozen" in format_summary(model)


def test_too_many_pools_is_a_clear_error():
    with pytest.raises(UserError, match="too small"):
        build_classifier("conv4-pool-pool-pool-pool", 1, 10, 8, 8)
