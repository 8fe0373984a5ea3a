"""Study measurements on pass functions with known effects (no ONNX, no files)."""
from __future__ import annotations

import numpy as np
import pytest

from stylecam import study, study_measure, study_report


def _image(h=48, w=64, seed=0):
    """float32 RGB (1, 3, H, W) with values 50..150 (room for shifts without clamping)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(50, 150, size=(1, 3, h, w)).astype(np.float32)


def identity(x):
    return x.copy()


def shift10(x):
    return np.clip(x + 10.0, 0, 255)


def half(x):
    return x * 0.5


def zero_padded_blur(x):
    """3x3 box blur with zero padding on (1, 3, H, W): darkens a 1-pixel border band."""
    h, w = x.shape[-2:]
    p = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    return sum(p[..., i:i + h, j:j + w] for i in range(3) for j in range(3)) / 9.0


def flat_image(value=120.0, h=48, w=64):
    return np.full((1, 3, h, w), value, np.float32)


def test_identity_has_zero_drift_and_fixed_point_at_step_1():
    rows, frames, maps = study_measure.measure_sequence(identity, _image(), repeat=4, margin=8, band=4)
    assert [r["step"] for r in rows] == [0, 1, 2, 3, 4]
    assert len(frames) == 5 and frames[0].dtype == np.uint8 and frames[0].shape == (48, 64, 3)
    for r in rows[1:]:
        assert r["mad_original"] == 0.0 and r["mad_previous"] == 0.0
        assert r["ssim_original"] == pytest.approx(1.0) and r["hist_original"] == 0.0
        assert r["border_index"] == 0.0 and r["border_band_cum"] == 0.0
    assert [r["fixed_point_distance"] for r in rows[:4]] == [0.0] * 4
    assert np.isnan(rows[4]["fixed_point_distance"])
    labelled = [{"image": "a", "style": "id", "padding": "reflect", "variant": "full", **r} for r in rows]
    fp = study_measure.fixed_points(study_measure.summarise(labelled), tol=0.5)
    assert fp[0]["fixed_point_step"] == 1
    assert maps["first"].max() == 0.0 and maps["cumulative"].shape == (48, 64)


def test_shift_drifts_linearly_and_never_settles():
    rows, _, _ = study_measure.measure_sequence(shift10, _image(), repeat=3, margin=8, band=4)
    assert [r["mad_original"] for r in rows] == pytest.approx([0.0, 10.0, 20.0, 30.0], abs=1e-4)
    assert [r["fixed_point_distance"] for r in rows[:3]] == pytest.approx([10.0] * 3, abs=1e-4)
    assert rows[3]["mean_r"] == pytest.approx(rows[0]["mean_r"] + 30.0, abs=1e-3)
    assert rows[1]["border_index"] == 0.0  # pointwise: no border effect at all
    labelled = [{"image": "a", "style": "s", "padding": "reflect", "variant": "full", **r} for r in rows]
    assert study_measure.fixed_points(study_measure.summarise(labelled), tol=0.5)[0]["fixed_point_step"] is None


def test_zero_padded_blur_has_high_border_index_and_accumulates():
    rows, _, maps = study_measure.measure_sequence(zero_padded_blur, flat_image(), repeat=3, margin=8, band=4)
    first, last = rows[1], rows[3]
    assert first["border_interior"] == 0.0
    # flat 120 image: the corner pixel keeps 4/9, edge pixels 6/9 -> the band is darker
    assert first["border_band"] > 5.0 and first["border_index"] > 1000
    assert last["border_band_cum"] > first["border_band_cum"]  # three blurs spread the dark rim inwards
    assert maps["first"][0, 0] == pytest.approx(120 * 5 / 9, abs=1e-3)
    assert maps["first"][24, 32] == 0.0


def test_reference_pass_hides_the_border_of_a_local_filter():
    x = flat_image()
    ref = study_measure.reference_pass(zero_padded_blur, x, margin=4)
    np.testing.assert_allclose(ref, x, atol=1e-4)


def test_measure_chain_compares_orders():
    x = _image()
    rows, frames = study_measure.measure_chain(shift10, half, x)
    by = {r["comparison"]: r for r in rows}
    # A->B = (x + 10) / 2, B = x / 2: differ by 5 everywhere; B->A = x / 2 + 10
    assert by["A->B vs B"]["mad"] == pytest.approx(5.0, abs=1e-4)
    assert by["B->A vs A"]["mad"] == pytest.approx(np.abs((x / 2 + 10) - (x + 10)).mean(), abs=1e-3)
    assert by["A->B vs B->A"]["mad"] == pytest.approx(5.0, abs=1e-4)
    assert set(frames) == {"original", "A", "B", "AB", "BA"}
    assert np.isnan(by["A vs B"]["vgg"])


def test_features_and_classifier_columns():
    class Color:
        def top_k(self, frame, k):  # BGR frame: label by the strongest mean channel
            means = frame.reshape(-1, 3).mean(axis=0)[::-1]
            order = np.argsort(-means)
            names = ("red", "green", "blue")
            return [(names[i], float(means[i] / means.sum())) for i in order[:k]]

    x = np.zeros((1, 3, 48, 64), np.float32)
    x[:, 0] = 100.0  # red image
    to_green = lambda im: np.stack([im[:, 0] * 0.5, im[:, 1] + 80.0, im[:, 2]], axis=1)
    feats = lambda im: im[:, :, ::2, ::2] * 2.0
    rows, _, _ = study_measure.measure_sequence(to_green, x, repeat=2, margin=8, band=4, features=feats,
                                        classifier=Color())
    assert [r["top1"] for r in rows] == ["red", "green", "green"]
    assert [r["agree"] for r in rows] == [1.0, 0.0, 0.0]
    assert rows[0]["vgg_original"] == 0.0 and rows[1]["vgg_original"] > 0.5
    assert rows[2]["p_original"] < rows[0]["p_original"]


def test_summarise_averages_over_images():
    rows = [{"image": i, "style": "s", "padding": "zero", "variant": "full", "step": 1, "ssim_original": v,
             "top1": ""} for i, v in (("a", 0.5), ("b", 0.7))]
    s = study_measure.summarise(rows)
    assert len(s) == 1 and s[0]["images"] == 2 and s[0]["ssim_original"] == pytest.approx(0.6)
    assert np.isnan(s[0]["border_index"])


def test_fit_to_study_size_gives_multiples_of_4():
    frame = np.zeros((101, 203, 3), np.uint8)
    out = study.fit_to_study_size(frame, 130)
    assert out.shape[0] % 4 == 0 and out.shape[1] % 4 == 0
    assert out.shape[1] == 128 and out.shape[0] == 64


def test_heatmap_and_sheets_shapes():
    hm = study_report.heatmap(np.array([[0.0, 64.0]]), vmax=32.0)
    assert hm.shape == (1, 2, 3) and hm.dtype == np.uint8
    frames = [np.full((20, 40, 3), v, np.uint8) for v in (0, 100, 200)]
    sheet = study_report.sequence_sheet({"reflect": frames, "zero": frames}, cell_width=40)
    assert sheet.shape[1] == 3 * 40 + 4 * 4 and sheet.shape[0] == 2 * 20 + 3 * 4


def test_prepad_is_measured_against_the_plain_models_reference():
    """prepad P = M builds exactly the reference canvas, so its border difference is 0 (doc's claim)."""
    margin, radius = 4, 6   # a filter that reaches further than the margin

    def wide_blur(x):  # (2r+1)^2 box blur with zero padding on (1, 3, H, W)
        h, w = x.shape[-2:]
        p = np.pad(x, ((0, 0), (0, 0), (radius, radius), (radius, radius)))
        size = 2 * radius + 1
        return sum(p[..., i:i + h, j:j + w] for i in range(size) for j in range(size)) / size ** 2

    def prepadded(x):  # the blur run on a frame reflect-padded by P = M, cropped back
        return study_measure.reference_pass(wide_blur, x, margin)

    x = _image()
    rows, _, _ = study_measure.measure_sequence(prepadded, x, repeat=2, margin=margin, band=4, reference=wide_blur)
    assert rows[1]["border_band"] == 0.0 and rows[2]["border_band_cum"] == 0.0
    # against its own pass (a reference canvas padded by M + P) the same run shows a border
    rows, _, _ = study_measure.measure_sequence(prepadded, x, repeat=2, margin=margin, band=4)
    assert rows[1]["border_band"] > 0.1


def test_chain_baselines_give_each_order_its_own_vgg_reference():
    """The VGG distance is relative to the second image: "B vs A" is the baseline of "B->A vs A"."""
    def features(x):  # stand-in features: the image itself
        return x

    x = _image()
    rows, _ = study_measure.measure_chain(shift10, half, x, features=features)
    by = {r["comparison"]: r for r in rows}
    a, b = np.clip(x + 10, 0, 255), x * 0.5
    assert by["A vs B"]["vgg"] == pytest.approx(np.linalg.norm(a - b) / np.linalg.norm(b), rel=1e-5)
    assert by["B vs A"]["vgg"] == pytest.approx(np.linalg.norm(b - a) / np.linalg.norm(a), rel=1e-5)
    assert by["B vs A"]["vgg"] != pytest.approx(by["A vs B"]["vgg"])
    assert by["B vs A"]["mad"] == pytest.approx(by["A vs B"]["mad"])
