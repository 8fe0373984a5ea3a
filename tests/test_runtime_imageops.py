"""Pure image maths: layout conversions, padding to x4, strength, color keeping, sheets."""
from __future__ import annotations

import numpy as np
import pytest

from stylecam import imageops


def test_bgr_nchw_round_trip_and_channel_order():
    frame = np.zeros((2, 3, 3), np.uint8)
    frame[..., 0] = 10  # B
    frame[..., 2] = 200  # R
    x = imageops.bgr_to_nchw(frame)
    assert x.shape == (1, 3, 2, 3) and x.dtype == np.float32
    assert x[0, 0].max() == 200 and x[0, 2].max() == 10  # channel 0 is red
    assert np.array_equal(imageops.nchw_to_bgr(x)[0], frame)


def test_nchw_to_bgr_clamps_and_rounds():
    x = np.array([-20.0, 0.4, 254.6, 300.0], np.float32).reshape(1, 1, 1, 4).repeat(3, axis=1)
    out = imageops.nchw_to_bgr(x)[0, 0, :, 0]
    assert out.tolist() == [0, 0, 255, 255]


@pytest.mark.parametrize("h,w,extra", [(1, 1, 0), (5, 7, 0), (8, 12, 0), (13, 3, 2), (4, 4, 5), (17, 30, 0),
                                       (16, 16, 0), (21, 22, 3)])
def test_pad_amounts_reach_multiple_of_4_and_crop_undoes_pad(h, w, extra):
    pads = imageops.pad_amounts(h, w, extra=extra)
    top, bottom, left, right = pads
    assert (h + top + bottom) % 4 == 0 and (w + left + right) % 4 == 0
    assert min(pads) >= extra
    assert min(h + top + bottom, w + left + right) >= imageops.MIN_SIDE
    if min(h, w) + 2 * extra >= imageops.MIN_SIDE:  # big enough: only up to the next multiple
        assert h + top + bottom - (h + 2 * extra) < 4 and w + left + right - (w + 2 * extra) < 4
    x = np.random.default_rng(0).random((1, 3, h, w)).astype(np.float32)
    padded = imageops.reflect_pad(x, pads)
    assert padded.shape[-2:] == (h + top + bottom, w + left + right)
    assert np.array_equal(imageops.crop(padded, pads), x)


def test_reflect_pad_mirrors_without_repeating_the_edge():
    x = np.arange(4, dtype=np.float32).reshape(1, 1, 1, 4).repeat(3, axis=2)  # rows: 0 1 2 3
    padded = imageops.reflect_pad(x, (0, 0, 2, 1))
    assert padded[0, 0, 0].tolist() == [2, 1, 0, 1, 2, 3, 2]


def test_blend_strength():
    a = np.full((1, 3, 2, 2), 100, np.float32)
    b = np.full((1, 3, 2, 2), 200, np.float32)
    assert np.allclose(imageops.blend(a, b, 0.0), 100)
    assert np.allclose(imageops.blend(a, b, 0.25), 125)
    assert np.allclose(imageops.blend(a, b, 1.0), 200)
    with pytest.raises(ValueError):
        imageops.blend(a, b, 1.5)


def test_preserve_color_takes_luminance_from_stylized_and_chroma_from_original():
    rng = np.random.default_rng(1)
    original = rng.uniform(40, 200, (1, 3, 4, 5)).astype(np.float32)
    stylized = rng.uniform(40, 200, (1, 3, 4, 5)).astype(np.float32)
    out = imageops.preserve_color(original, stylized)
    assert np.allclose(imageops.luma(out), imageops.luma(stylized), atol=1e-3)
    # chroma (color differences) of the original are kept
    assert np.allclose(out[:, 0] - out[:, 1], original[:, 0] - original[:, 1], atol=1e-3)
    assert np.allclose(out[:, 2] - out[:, 1], original[:, 2] - original[:, 1], atol=1e-3)
    # a grey stylization of a grey image changes nothing but brightness
    grey = np.full((1, 3, 2, 2), 50, np.float32)
    assert np.allclose(imageops.preserve_color(grey, grey + 30), 80)


def test_resize_long_side_keeps_aspect():
    frame = np.zeros((360, 640, 3), np.uint8)
    assert imageops.resize_long_side(frame, 320).shape == (180, 320, 3)
    assert imageops.resize_long_side(frame, 640) is frame


def test_contact_sheet_grid_size_and_labels():
    frames = [(f"{i}", np.full((30, 40, 3), 20 * i, np.uint8)) for i in range(5)]
    sheet = imageops.contact_sheet(frames, columns=3, cell_width=40, gap=2)
    assert sheet.shape == (2 * 30 + 3 * 2, 3 * 40 + 4 * 2, 3)
    assert sheet.dtype == np.uint8
    with pytest.raises(ValueError):
        imageops.contact_sheet([])


def test_side_by_side_matches_heights():
    out = imageops.side_by_side(np.zeros((20, 30, 3), np.uint8), np.zeros((10, 10, 3), np.uint8))
    assert out.shape == (20, 50, 3)


@pytest.mark.parametrize("shape", [(3, 5, 7), (2, 3, 9, 4)])
def test_nchw_to_bgr_clamps_rounds_and_reorders_like_the_plain_formula(shape):
    rng = np.random.default_rng(4)
    x = rng.uniform(-40, 300, shape).astype(np.float32)
    x.flat[:4] = [0.5, 1.5, 254.5, 255.49]
    batched = x[None] if x.ndim == 3 else x
    expected = np.clip(np.rint(batched), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)[..., ::-1]
    got = imageops.nchw_to_bgr(x)
    assert got.dtype == np.uint8 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, expected[0] if x.ndim == 3 else expected)


def test_stabilize_holds_still_pixels_and_leaves_moving_ones():
    previous_in = np.zeros((1, 3, 3), np.uint8)
    current_in = previous_in.copy()
    current_in[0, 1] = (4, 0, 0)     # moved by half of motion=8: weight 0.5
    current_in[0, 2] = (0, 0, 9)     # moved by more than motion: weight 0
    previous_out = np.full((1, 3, 3), 100, np.uint8)
    current_out = np.full((1, 3, 3), 120, np.uint8)
    out = imageops.stabilize(previous_in, current_in, previous_out, current_out, amount=0.5, motion=8.0)
    assert out.dtype == np.uint8 and out.shape == (1, 3, 3)
    assert out[0, :, 0].tolist() == [110, 115, 120]   # 120 + 0.5 * w * (100 - 120), w = 1, 0.5, 0
    assert imageops.stabilize(previous_in, current_in, previous_out, current_out, 0.0) is current_out
    with pytest.raises(ValueError):
        imageops.stabilize(previous_in, current_in, previous_out, current_out, 1.5)


def test_stabilizer_averages_a_still_scene_and_restarts_on_reset_or_new_size():
    still = np.zeros((2, 2, 3), np.uint8)
    stabilizer = imageops.Stabilizer(0.5)
    assert stabilizer(still, np.full_like(still, 100)).tolist() == np.full_like(still, 100).tolist()  # first: as is
    assert int(stabilizer(still, np.full_like(still, 200))[0, 0, 0]) == 150
    assert int(stabilizer(still, np.full_like(still, 200))[0, 0, 0]) == 175   # running average
    stabilizer.reset()
    assert int(stabilizer(still, np.full_like(still, 40))[0, 0, 0]) == 40
    bigger = np.zeros((4, 4, 3), np.uint8)
    assert int(stabilizer(bigger, np.full_like(bigger, 90))[0, 0, 0]) == 90
    with pytest.raises(ValueError):
        imageops.Stabilizer(-0.1)


def test_stabiliser_is_the_first_spelling_of_stabilizer():
    assert imageops.Stabiliser is imageops.Stabilizer
