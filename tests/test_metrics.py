"""Metric functions of the study against hand-built cases with known answers."""
from __future__ import annotations

import math

import numpy as np
import pytest

from stylecam import metrics


def _noise(h=40, w=48, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3)).astype(np.uint8)


# ---------------------------------------------------------------- padding helpers

def test_reflect_pad_and_crop_round_trip():
    x = _noise(12, 16)
    padded = metrics.reflect_pad(x, 4)
    assert padded.shape == (20, 24, 3)
    # reflect101: the first padded row mirrors row 4 of the image, not row 0
    np.testing.assert_array_equal(padded[0, 4:-4], x[4])
    np.testing.assert_array_equal(padded[4:-4, 4:-4], x)
    np.testing.assert_array_equal(metrics.crop_margin(padded, 4), x)
    assert metrics.reflect_pad(x, 0) is x


def test_reflect_pad_rejects_margin_larger_than_image():
    with pytest.raises(ValueError, match="margin"):
        metrics.reflect_pad(_noise(8, 8), 8)


def test_border_reference_of_pointwise_function_equals_output():
    x = _noise()
    f = lambda im: 255 - im  # pointwise: no border effects at all
    np.testing.assert_array_equal(metrics.border_reference(f, x, 8), f(x))


# ---------------------------------------------------------------- border-artifact index

def test_band_mask_counts():
    m = metrics.band_mask(10, 12, band=2)
    assert m.sum() == 10 * 12 - 6 * 8
    assert m[0, 5] and m[5, 0] and m[9, 11] and not m[5, 5]


def test_bright_border_band_gives_high_index():
    ref = np.full((40, 40, 3), 100, np.uint8)
    out = ref.copy()
    out[:4] = 255  # bright band at the top edge only, interior identical
    got = metrics.border_artifact(out, ref, band=4)
    assert got["interior"] == 0.0
    # band has 4 * 40 top pixels out of 40 * 40 - 32 * 32 band pixels, each differing by 155
    assert got["band"] == pytest.approx(155 * 160 / (1600 - 1024))
    assert got["index"] > 1000


def test_uniform_difference_gives_index_one():
    ref = _noise()
    out = ref.astype(np.float64) + 7.0
    got = metrics.border_artifact(out, ref, band=5)
    assert got["band"] == pytest.approx(7.0)
    assert got["interior"] == pytest.approx(7.0)
    assert got["index"] == pytest.approx(7.0 / (7.0 + metrics.EPS))


def test_identical_images_give_zero_index():
    x = _noise()
    assert metrics.border_artifact(x, x) == {"index": 0.0, "band": 0.0, "interior": 0.0}


def test_border_index_of_zero_padded_blur_is_high():
    x = np.full((32, 32, 3), 200.0)

    def zero_padded_blur(im):
        p = np.pad(im.astype(np.float64), ((1, 1), (1, 1), (0, 0)))
        return sum(p[i:i + im.shape[0], j:j + im.shape[1]] for i in range(3) for j in range(3)) / 9.0

    y = zero_padded_blur(x)
    r = metrics.border_reference(zero_padded_blur, x, 8)
    np.testing.assert_allclose(r, x)  # on the larger canvas the border is out of reach
    got = metrics.border_artifact(y, r, band=4)
    assert got["interior"] == 0.0 and got["band"] > 10.0 and got["index"] > 1000


def test_border_profile_locates_the_ring():
    ref = np.zeros((20, 20, 3))
    out = ref.copy()
    out[1, 1:-1] = out[-2, 1:-1] = out[1:-1, 1] = out[1:-1, -2] = 90.0  # ring at distance 1
    prof = metrics.border_profile(out, ref, depth=5)
    np.testing.assert_allclose(prof, [0.0, 90.0, 0.0, 0.0, 0.0])


# ---------------------------------------------------------------- drift and fixed points

def test_identity_has_zero_drift_and_fixed_point_at_step_1():
    x0 = _noise()
    steps = [x0]
    for _ in range(4):
        steps.append(steps[-1].copy())  # identity model
    fpd = [metrics.fixed_point_distance(steps[n], steps[n + 1]) for n in range(1, 4)]
    assert fpd == [0.0, 0.0, 0.0]
    assert metrics.fixed_point_step(fpd) == 1
    for x in steps[1:]:
        assert metrics.mean_abs_diff(x, x0) == 0.0
        assert metrics.ssim(x, x0) == pytest.approx(1.0)
        assert metrics.histogram_distance(x, x0) == 0.0


def test_fixed_point_step_of_converging_series():
    assert metrics.fixed_point_step([8.0, 2.0, 0.4, 0.1]) == 3
    assert metrics.fixed_point_step([8.0, 2.0], tol=0.5) is None
    assert metrics.fixed_point_step([float("nan"), 0.2]) == 2


def test_mean_abs_diff_value():
    a = np.zeros((4, 4, 3))
    b = a.copy()
    b[..., 0] = 30.0
    assert metrics.mean_abs_diff(a, b) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="shape"):
        metrics.mean_abs_diff(a, np.zeros((4, 5, 3)))


def test_ssim_orders_degradations():
    x = _noise(48, 48).astype(np.float64)
    slight = x + np.random.default_rng(1).normal(0, 5, x.shape)
    heavy = x + np.random.default_rng(2).normal(0, 60, x.shape)
    s_slight, s_heavy = metrics.ssim(slight, x), metrics.ssim(heavy, x)
    assert 1.0 > s_slight > s_heavy
    assert metrics.ssim(255 - x, x) < 0  # inverted structure: negative correlation
    # a constant offset changes only the luminance term
    flat = np.full((20, 20, 3), 100.0)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 110 + c1) / (100 ** 2 + 110 ** 2 + c1)
    assert metrics.ssim(flat + 10, flat) == pytest.approx(expected)


def test_ssim_rejects_tiny_images():
    with pytest.raises(ValueError, match="at least"):
        metrics.ssim(np.zeros((8, 30, 3)), np.zeros((8, 30, 3)))


def test_feature_distance_is_relative():
    f = np.ones((1, 4, 3, 3))
    assert metrics.feature_distance(f, f) == 0.0
    assert metrics.feature_distance(f * 1.5, f) == pytest.approx(0.5)
    assert metrics.feature_distance(f * 10.0, f * 10.0 / 1.5) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="shape"):
        metrics.feature_distance(f, np.ones((1, 4, 3, 2)))


# ---------------------------------------------------------------- color

def test_color_stats_of_known_image():
    img = np.zeros((2, 2, 3))
    img[0, 0] = (255, 0, 0)      # red: saturation 1
    img[0, 1] = (100, 100, 100)  # gray: saturation 0
    img[1, 0] = (200, 100, 100)  # saturation 0.5
    # img[1, 1] black: saturation 0 by definition
    s = metrics.color_stats(img)
    assert s["mean_r"] == pytest.approx((255 + 100 + 200) / 4)
    assert s["mean_g"] == pytest.approx(200 / 4)
    assert s["saturation"] == pytest.approx(1.5 / 4)
    luma = np.array([0.299 * 255, 100.0, 0.299 * 200 + 0.587 * 100 + 0.114 * 100, 0.0])
    assert s["luma"] == pytest.approx(luma.mean())
    assert s["contrast"] == pytest.approx(luma.std())


def test_histogram_distance_extremes():
    black = np.zeros((8, 8, 3), np.uint8)
    white = np.full((8, 8, 3), 255, np.uint8)
    assert metrics.histogram_distance(black, white) == pytest.approx(1.0)
    half = black.copy()
    half[:4] = 255
    assert metrics.histogram_distance(half, black) == pytest.approx(0.5)
    # spatial layout does not matter
    assert metrics.histogram_distance(half, half[::-1]) == 0.0
    h = metrics.color_histograms(half, bins=16)
    assert h.shape == (3, 16) and np.allclose(h.sum(axis=1), 1.0)


# ---------------------------------------------------------------- classifier

def test_classifier_agreement_and_probability():
    assert metrics.classifier_agreement(["cat", "dog"], ["cat", "dog"]) == 1.0
    assert metrics.classifier_agreement(["cat", "dog", "cat", "car"], ["cat", "cat", "cat", "cat"]) == 0.5
    assert math.isnan(metrics.classifier_agreement([], []))
    with pytest.raises(ValueError):
        metrics.classifier_agreement(["a"], [])
    top = [("cat", 0.7), ("dog", 0.2)]
    assert metrics.probability_of("dog", top) == 0.2
    assert metrics.probability_of("car", top) == 0.0


def test_edge_profile_deeper_than_image_is_nan():
    prof = metrics.edge_profile(np.ones((4, 6)), depth=4)
    np.testing.assert_allclose(prof[:2], [1.0, 1.0])
    assert np.isnan(prof[2:]).all()


def test_grid_pattern_finds_a_tiled_texture_and_ignores_content():
    from stylecam.metrics import grid_pattern
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:96]
    photo = np.stack([xx * 2.0, yy * 3.0, (xx + yy) * 1.0], -1) + rng.normal(0, 10, (64, 96, 3))
    tile = np.array([[0, 8, 0, -8], [8, 0, -8, 0], [0, -8, 0, 8], [-8, 0, 8, 0]], float)
    stamped = photo + np.tile(tile, (16, 24))[..., None]
    assert grid_pattern(photo, 4) < 1.0
    assert grid_pattern(stamped, 4) > 4 * grid_pattern(photo, 4) and grid_pattern(stamped, 4) > 3.0
    flat = np.full((8, 8, 3), 100.0)
    assert grid_pattern(flat, 2) == pytest.approx(0.0)


def test_static_mask_marks_pixels_that_stood_still():
    previous = np.zeros((4, 5, 3), np.uint8)
    current = previous.copy()
    current[1, 2] = (0, 3, 0)      # one channel moved by 3 > 2: not static
    current[3, 4] = (2, 2, 2)      # moved by exactly the threshold: static
    mask = metrics.static_mask(previous, current, threshold=2.0)
    assert mask.shape == (4, 5) and mask.dtype == bool
    assert mask.sum() == 19 and not mask[1, 2] and mask[3, 4]


def test_temporal_flicker_counts_only_output_changes_where_the_input_stood_still():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (8, 10, 3)).astype(np.uint8)
    moved = frame.copy()
    moved[:, :5] = 255 - moved[:, :5]          # left half of the scene changes
    out_a = np.full((8, 10, 3), 100.0)
    out_b = out_a.copy()
    out_b[:, :5] += 50.0                         # follows the moving half: not flicker
    out_b[:, 5:] += 4.0                          # static half changes by 4: flicker
    assert metrics.temporal_flicker(frame, moved, out_a, out_b) == pytest.approx(4.0)
    assert metrics.temporal_flicker(frame, moved, out_a, out_a) == 0.0


def test_temporal_flicker_is_nan_without_static_pixels_and_checks_shapes():
    a = np.zeros((4, 4, 3), np.uint8)
    b = np.full((4, 4, 3), 200, np.uint8)
    assert math.isnan(metrics.temporal_flicker(a, b, a, a))
    with pytest.raises(ValueError):
        metrics.temporal_flicker(a, a, np.zeros((8, 8, 3)), np.zeros((8, 8, 3)))
