"""Style network shapes and size, VGG stand-in, Gram matrix and TV against hand computations."""
from __future__ import annotations

import pytest
import torch

from trainer.losses import gram_matrix, total_variation
from trainer.nets.blocks import ResizeConv
from trainer.nets.transformer import (FULL, LITE, LITE_FR, HalfResTransformerNet, TransformerConfig, TransformerNet,
                                      build_transformer, count_macs, transformer_from_config)
from trainer.nets.vgg import load_vgg16, random_vgg_standin


def pad_to_multiple(x: torch.Tensor, multiple: int = 4) -> torch.Tensor:
    h, w = x.shape[-2:]
    return torch.nn.functional.pad(x, (0, (-w) % multiple, 0, (-h) % multiple), mode="reflect")


@pytest.mark.parametrize("variant", ["full", "lite", "lite-fr"])
@pytest.mark.parametrize("height,width", [(33, 47), (17, 18), (64, 64), (29, 101)])
def test_output_matches_padded_input_shape(variant, height, width):
    net = build_transformer(variant).eval()
    x = pad_to_multiple(torch.rand(2, 3, height, width) * 255)
    assert x.shape[-2] % 4 == 0 and x.shape[-1] % 4 == 0
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert y.dtype == torch.float32


def test_full_has_about_1_68_million_parameters():
    n = sum(p.numel() for p in build_transformer("full").parameters())
    assert 1_660_000 <= n <= 1_700_000


def test_lite_is_under_2_5_gmac_per_640x480_frame():
    lite = count_macs(build_transformer("lite"), 480, 640)
    full = count_macs(build_transformer("full"), 480, 640)
    assert lite <= 2.5e9
    assert full > 10 * lite


def test_count_macs_of_a_single_conv_matches_formula():
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    assert count_macs(conv, 10, 12) == 10 * 12 * 8 * 3 * 3 * 3


def test_padding_mode_changes_only_the_border():
    torch.manual_seed(0)
    reflect = build_transformer("lite", padding="reflect").eval()
    zero = build_transformer("lite", padding="zero").eval()
    zero.load_state_dict(reflect.state_dict())
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        a, b = reflect(x), zero(x)
    diff = (a - b).abs()
    assert diff.max() > 1e-3
    assert diff[..., 24:40, 24:40].max() < diff.max()


def test_config_round_trips_through_dict():
    for cfg in (FULL, LITE, LITE_FR):
        assert TransformerConfig.from_dict(cfg.to_dict()) == cfg


def test_a_config_saved_before_half_res_ends_existed_builds_the_old_lite():
    old = {"channels": [8, 16, 32], "residual_blocks": 3, "end_kernel": 3, "separable": False, "padding": "reflect"}
    cfg = TransformerConfig.from_dict(old)
    assert cfg == TransformerConfig(channels=(8, 16, 32), residual_blocks=3, end_kernel=3)     # lite-v1
    assert type(transformer_from_config(cfg)) is TransformerNet
    assert type(build_transformer("lite")) is HalfResTransformerNet


def test_a_half_res_config_saved_before_tied_upsampling_existed_builds_the_shuffle_decoder():
    old = {"channels": [0, 16, 32], "residual_blocks": 3, "end_kernel": 3, "separable": False,
           "padding": "reflect", "half_res_ends": True}
    cfg = TransformerConfig.from_dict(old)
    assert cfg == TransformerConfig(**{**LITE.__dict__, "tied_upsampling": False})    # lite-shuffle
    assert not any(isinstance(m, ResizeConv) for m in transformer_from_config(cfg).modules())
    assert sum(isinstance(m, ResizeConv) for m in build_transformer("lite").modules()) == 2


def test_lite_has_no_convolution_at_full_resolution():
    net = build_transformer("lite").eval()
    sizes = []  # resolution each convolution computes at (a ResizeConv works on its input grid)
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(tuple((i[0] if isinstance(m, ResizeConv) else o).shape[-2:])))
             for m in net.modules() if isinstance(m, (torch.nn.Conv2d, ResizeConv))]
    with torch.no_grad():
        y = net(torch.rand(1, 3, 64, 96) * 255)
    for h in hooks:
        h.remove()
    assert y.shape == (1, 3, 64, 96)
    assert len(sizes) == 10  # stem, down, 3 x 2 residual, up, head
    assert max(h for h, _ in sizes) == 32 and max(w for _, w in sizes) == 48


@pytest.mark.parametrize("height,width", [(5, 7), (8, 8)])
def test_resize_conv_equals_nearest_upsample_then_conv(height, width):
    torch.manual_seed(0)
    layer = ResizeConv(4, 3, padding="zero")
    x = torch.randn(2, 4, height, width)
    upsampled = torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")
    expected = torch.nn.functional.conv2d(upsampled, layer.weight, layer.bias, padding=1)
    with torch.no_grad():
        got = layer(x)
    assert got.shape == (2, 3, 2 * height, 2 * width)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_resize_conv_cannot_stamp_a_two_pixel_pattern_but_a_free_pixelshuffle_conv_does():
    """On a flat input the tied phases give a flat output (away from the border); free phases do not."""
    torch.manual_seed(0)
    flat = torch.full((1, 16, 12, 12), 0.7)
    tied = ResizeConv(16, 3)
    free = torch.nn.Sequential(torch.nn.Conv2d(16, 12, 3, padding=1), torch.nn.PixelShuffle(2))
    with torch.no_grad():
        tied_inner, free_inner = tied(flat)[..., 4:-4, 4:-4], free(flat)[..., 4:-4, 4:-4]
    assert (tied_inner - tied_inner[..., :1, :1]).abs().max() < 1e-5
    assert (free_inner - free_inner[..., :1, :1]).abs().max() > 1e-2


def test_count_macs_of_a_resize_conv_equals_the_upsample_then_conv_it_replaces():
    layer = ResizeConv(3, 5)  # count_macs feeds a (1,3,H,W) input
    assert count_macs(layer, 10, 12) == (20 * 24) * 5 * 3 * 3 * 3


def test_gram_matrix_against_hand_computation():
    f = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]]])  # (1, 2, 2, 2)
    a, b = [1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 0.0, 1.0]
    dot = lambda u, v: sum(x * y for x, y in zip(u, v))
    expected = torch.tensor([[dot(a, a), dot(a, b)], [dot(b, a), dot(b, b)]]) / (2 * 2 * 2)
    assert torch.allclose(gram_matrix(f)[0], expected)


def test_total_variation_against_hand_computation():
    img = torch.tensor([[[[0.0, 1.0], [3.0, 7.0]]]])  # vertical diffs 3, 6; horizontal 1, 4
    assert total_variation(img).item() == pytest.approx(9 + 36 + 1 + 16)


def test_standin_has_vgg_layer_names_and_strides():
    net = random_vgg_standin(["relu1_2", "relu2_2", "relu3_3", "relu4_3"])
    out = net(torch.rand(1, 3, 32, 32) * 255)
    assert [tuple(out[k].shape[-2:]) for k in ("relu1_2", "relu2_2", "relu3_3", "relu4_3")] == \
        [(32, 32), (16, 16), (8, 8), (4, 4)]
    assert not any(p.requires_grad for p in net.parameters())


def test_real_vgg_builds_only_needed_layers(vgg_weights_path):
    if vgg_weights_path is None:
        pytest.skip("STYLECAM_VGG16 not set")
    net = load_vgg16(["relu2_2"], vgg_weights_path)
    assert len(net.features) == 9
    out = net(torch.rand(1, 3, 32, 32) * 255)
    assert out["relu2_2"].shape == (1, 128, 16, 16)
    assert not any(p.requires_grad for p in net.parameters())


def test_lite_fr_has_only_its_last_conv_at_full_resolution():
    """lite-fr: lite, but the last x2 step goes to 8 channels and one 3x3 conv runs at full resolution."""
    net = build_transformer("lite-fr").eval()
    net.head_in_phases = False  # the network as defined (it computes that conv in phase space)
    full_res = []
    hooks = [m.register_forward_hook(lambda m, i, o: full_res.append(m) if o.shape[-2:] == (64, 96) and
                                     not isinstance(m, ResizeConv) else None)
             for m in net.modules() if isinstance(m, (torch.nn.Conv2d, ResizeConv))]
    with torch.no_grad():
        y = net(torch.rand(1, 3, 64, 96) * 255)
    for h in hooks:
        h.remove()
    assert y.shape == (1, 3, 64, 96)
    assert [(m.in_channels, m.out_channels, m.kernel_size) for m in full_res] == [(8, 3, (3, 3))]
    macs = count_macs(net, 480, 640)
    assert count_macs(build_transformer("lite"), 480, 640) < macs < 2.0e9     # 1.96 GMAC (docs/training.md)
    assert LITE_FR.channels[0] == 8 and LITE_FR.full_res_head and not LITE.full_res_head


@pytest.mark.parametrize("padding", ["reflect", "zero", "replicate"])
def test_resize_conv_window_form_equals_its_phase_form(padding):
    """The 2x2 window conv (forward) gives what the 3x3 phase kernels + PixelShuffle give."""
    torch.manual_seed(1)
    layer = ResizeConv(5, 4, padding=padding)
    x = torch.randn(2, 5, 7, 9)
    with torch.no_grad():
        got, expected = layer(x), torch.nn.functional.pixel_shuffle(layer.phases(x), 2)
    assert got.shape == (2, 4, 14, 18)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert layer.window_kernels().shape == (16, 5, 2, 2)


@pytest.mark.parametrize("padding", ["reflect", "zero"])
def test_phase_window_kernels_give_the_full_resolution_conv(padding):
    from trainer.nets.blocks import phase_window_kernels, window_conv
    torch.manual_seed(2)
    phases = torch.randn(2, 4 * 3, 5, 6, dtype=torch.float64)   # (N, 4*C, H, W) of a (N, C, 2H, 2W) image
    weight, bias = torch.randn(4, 3, 3, 3, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    image = torch.nn.functional.pixel_shuffle(phases, 2)
    mode = "reflect" if padding == "reflect" else "constant"
    expected = torch.nn.functional.conv2d(torch.nn.functional.pad(image, (1, 1, 1, 1), mode=mode), weight, bias)
    pad_mode = "replicate" if padding == "reflect" else "constant"
    got = window_conv(torch.nn.functional.pad(phases, (1, 1, 1, 1), mode=pad_mode),
                      phase_window_kernels(weight), bias.repeat_interleave(4))
    assert got.shape == (2, 4, 10, 12) and got.dtype == torch.float64   # the taps follow the kernel's dtype
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("padding,in_phases", [("reflect", True), ("zero", True), ("replicate", False)])
def test_lite_fr_head_in_phase_space_equals_the_network_as_defined(padding, in_phases):
    torch.manual_seed(3)
    net = build_transformer("lite-fr", padding=padding).eval()
    for m in net.modules():   # non-trivial norms, so the phase-space statistics are tested
        if isinstance(m, torch.nn.InstanceNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    assert net.head_in_phases is in_phases
    x = torch.rand(2, 3, 36, 52) * 255
    with torch.no_grad():
        fast = net(x)
        net.head_in_phases = False
        defined = net(x)
    assert fast.shape == (2, 3, 36, 52)
    torch.testing.assert_close(fast, defined, atol=1e-3, rtol=1e-5)   # 0..255 scale
    assert defined.std() > 1.0  # not a flat image


def test_pixel_shuffle_2_is_pixel_shuffle():
    from trainer.nets.blocks import pixel_shuffle_2
    x = torch.randn(3, 8, 5, 7)
    assert torch.equal(pixel_shuffle_2(x), torch.nn.functional.pixel_shuffle(x, 2))


def test_lite_fr_phase_space_head_gives_the_same_gradients():
    torch.manual_seed(4)
    net = build_transformer("lite-fr").double()
    x = torch.rand(1, 3, 20, 28, dtype=torch.float64) * 255
    grads = []
    for in_phases in (True, False):
        net.zero_grad()
        net.head_in_phases = in_phases
        (net(x) ** 2).mean().backward()
        grads.append({name: p.grad.clone() for name, p in net.named_parameters()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grad, grads[1][name], atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("variant", ["lite", "lite-fr"])
def test_tap_tables_are_buffers_that_follow_the_network_not_saved(variant):
    """.to() moves the tap tables with the weights (no host-to-device copy per forward pass)."""
    net = build_transformer(variant).to(torch.float64)
    taps = dict(net.named_buffers())
    assert taps and all(t.dtype == torch.float64 for t in taps.values())
    assert not any(name in net.state_dict() for name in taps)
    assert net(torch.rand(1, 3, 16, 16, dtype=torch.float64)).dtype == torch.float64
