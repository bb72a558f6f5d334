"""Map normalization (released code / PAIR VisualizeImageGrayscale; min-max for CAM and XRAI)."""

import numpy as np
import pytest

from saliency_audit.errors import InputError
from saliency_audit.saliency.normalize import normalize_maps


def _pair_grayscale(image_3d, percentile=99):
    """PAIR saliency.core.visualization.VisualizeImageGrayscale, as the released code used it."""
    from saliency.core.visualization import VisualizeImageGrayscale

    return VisualizeImageGrayscale(image_3d, percentile)


def test_released_gradient_maps_match_pair_grayscale():
    rng = np.random.default_rng(0)
    attr = rng.normal(size=(3, 20, 20, 3))
    raw = np.abs(attr).sum(-1)  # the stored map (channel_reduction abs_sum)
    got = normalize_maps(raw, "SG", "released")
    assert got.dtype == np.float32
    for i in range(3):
        np.testing.assert_allclose(got[i], _pair_grayscale(attr[i]), atol=1e-6)
    # 1% of the pixels are clipped to 1
    assert abs((got == 1).mean() - 0.01) <= 0.01


def test_released_hand_computed():
    m = np.arange(100, dtype=float).reshape(1, 10, 10)
    got = normalize_maps(m, "GRAD", "released")[0]
    p99 = np.percentile(np.arange(100), 99)  # 98.01
    assert got[0, 1] == pytest.approx(1 / p99)
    assert got[9, 9] == 1.0 and got[0, 0] == 0.0
    # signed maps (channel_reduction: sum) are taken in absolute value first
    np.testing.assert_allclose(normalize_maps(-m, "GRAD", "released"), normalize_maps(m, "GRAD", "released"))


def test_cam_and_xrai_minmax():
    m = np.array([[[2.0, 4.0], [6.0, 10.0]]])
    for method in ("GCAM", "XRAI"):
        np.testing.assert_allclose(normalize_maps(m, method, "released")[0], [[0, 0.25], [0.5, 1.0]])
    np.testing.assert_allclose(normalize_maps(m, "GRAD", "minmax")[0], [[0, 0.25], [0.5, 1.0]])
    np.testing.assert_allclose(normalize_maps(m, "GRAD", "none")[0], m[0])


def test_constant_and_zero_maps_stay_zero():
    for mode in ("released", "minmax"):
        for method in ("GRAD", "GCAM", "XRAI", "GGCAM"):
            z = normalize_maps(np.zeros((2, 8, 8)), method, mode)
            assert np.all(z == 0) and np.isfinite(z).all()
            c = normalize_maps(np.full((1, 8, 8), 3.0), method, mode)
            assert np.all(c == 0)


def test_sparse_map_uses_max_when_p99_is_min():
    m = np.zeros((1, 10, 10))
    m[0, 0, 0] = 5.0  # 1 pixel of 100: the 99th percentile is 0.05 > 0, still fine
    m2 = np.zeros((1, 20, 20))
    m2[0, 0, 0] = 5.0  # 1 of 400: p99 == 0 == min -> fall back to the max
    out = normalize_maps(m2, "GRAD", "released")
    assert out[0, 0, 0] == 1.0 and out.sum() == 1.0
    assert normalize_maps(m, "GRAD", "released")[0, 0, 0] == 1.0


def test_localizer_maps_clipped_and_single_map_and_errors():
    p = np.array([[0.2, 0.9], [1.2, -0.1]])
    np.testing.assert_allclose(normalize_maps(p, "PRED", "released"), [[0.2, 0.9], [1.0, 0.0]])
    assert normalize_maps(p, "GCAM").shape == (2, 2)
    nan = np.array([[[np.nan, 1.0], [2.0, 3.0]]])
    assert np.isfinite(normalize_maps(nan, "GCAM")).all()
    with pytest.raises(InputError, match="normalization"):
        normalize_maps(p, "GRAD", "zscore")


def test_released_cam_normalization_hand_computed():
    # Grad-CAM as released: divided by its max, tiled to 3 channels, VisualizeImageGrayscale
    m = np.arange(100, dtype=float).reshape(1, 10, 10)
    got = normalize_maps(m, "GCAM", "released", "released")[0]
    assert got[0, 1] == pytest.approx(1 / 98.01) and got[9, 8] == pytest.approx(98 / 98.01) and got[9, 9] == 1.0
    assert normalize_maps(m, "GCAM", "released", "minmax")[0, 0, 1] == pytest.approx(1 / 99)  # today: min-max
    cam = np.maximum(np.random.default_rng(2).normal(size=(2, 12, 12)), 0)
    tiled = [np.repeat((c / c.max())[..., None], 3, axis=-1) for c in cam]
    np.testing.assert_allclose(normalize_maps(cam, "GCAM", "released", "released"),
                               [_pair_grayscale(t) for t in tiled], atol=1e-6)
    # Guided Grad-CAM as released: the stored product of the visualised parts, min-max scaled
    g = np.array([[[0.2, 0.4], [0.6, 1.0]]])
    np.testing.assert_allclose(normalize_maps(g, "GGCAM", "released", "released")[0], [[0, 0.25], [0.5, 1.0]])
    # today's Guided Grad-CAM is a gradient map: 99th-percentile clip of |m| (p99 of (0.2, 0.4, 0.6, 1) = 0.988)
    np.testing.assert_allclose(normalize_maps(g, "GGCAM", "released", "minmax")[0],
                               [[0, 0.2 / 0.788], [0.4 / 0.788, 1.0]], rtol=1e-6)
    # the key acts on GCAM and GGCAM under normalization released only
    np.testing.assert_allclose(normalize_maps(m, "GRAD", "released", "released"), normalize_maps(m, "GRAD", "released"))
    np.testing.assert_allclose(normalize_maps(m, "XRAI", "released", "released"), normalize_maps(m, "XRAI", "released"))
    np.testing.assert_allclose(normalize_maps(m, "GCAM", "minmax", "released"), normalize_maps(m, "GCAM", "minmax"))
    with pytest.raises(InputError, match="cam_normalization"):
        normalize_maps(m, "GCAM", "released", "max")
