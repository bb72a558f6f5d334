"""Metric functions against their references: scikit-learn, scikit-image, scipy, hand-computed cases."""

import warnings

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from skimage.feature import hog
from skimage.metrics import structural_similarity
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score

from saliency_audit.errors import InputError
from saliency_audit.metrics import similarity
from saliency_audit.metrics.utility import pixel_scores, utility_scores


def sklearn_scores(score, truth):
    """The released code's AUPRC (auc(recall, precision)) plus sklearn AP and AUROC."""
    s, y = np.ravel(score), np.ravel(truth).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p, r, _ = precision_recall_curve(y, s)
        return {"auprc": auc(r, p), "ap": average_precision_score(y, s), "auroc": roc_auc_score(y, s)}


def assert_same(ours, ref, tol=1e-9):
    for k in ("auprc", "ap", "auroc"):
        if np.isnan(ref[k]):
            assert np.isnan(ours[k]), k
        else:
            assert ours[k] == pytest.approx(ref[k], abs=tol), k


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_utility_random_maps_equal_sklearn(dtype):
    rng = np.random.default_rng(0)
    for t in range(40):
        n = int(rng.integers(2, 300))
        kind = t % 4
        if kind == 0:
            s = rng.random(n)
        elif kind == 1:  # heavy ties
            s = rng.integers(0, 4, n)
        elif kind == 2:  # negative and positive scores, incl. -0.0 and 0.0
            s = np.round(rng.normal(size=n), 1)
            s[: n // 4] = -0.0
        else:
            s = np.where(rng.random(n) < 0.7, 0.0, rng.random(n))
        s = s.astype(dtype)
        y = (rng.random(n) < rng.uniform(0.05, 0.6)).astype(np.uint8)
        assert_same(pixel_scores(s, y), sklearn_scores(s, y))


def test_utility_320_map_with_clipped_top():
    rng = np.random.default_rng(1)
    s = np.clip(rng.random((320, 320)) * 1.05, 0, 1).astype(np.float32)  # ~5% tied at 1.0
    y = np.zeros((320, 320), np.uint8)
    y[100:140, 50:90] = 1
    assert_same(pixel_scores(s, y), sklearn_scores(s, y))


def test_utility_hand_made_cases():
    # perfect map: positives strictly above negatives
    y = np.array([0, 0, 1, 1])
    r = pixel_scores(np.array([0.1, 0.2, 0.8, 0.9]), y)
    assert (r["auprc"], r["ap"], r["auroc"]) == pytest.approx((1.0, 1.0, 1.0))
    # all-equal map (and the all-zero map): one threshold -> precision = prevalence at recall 1
    for s in (np.full(4, 0.3), np.zeros(4)):
        r = pixel_scores(s, y)
        assert r["auprc"] == pytest.approx((1 + 0.5) / 2)
        assert r["ap"] == pytest.approx(0.5)
        assert r["auroc"] == pytest.approx(0.5)
        assert_same(r, sklearn_scores(s, y))
    # one positive pixel ranked 2nd of 5: PR points (0,1),(0,0),(1,1/2),(1,1/3),... -> trapezoid
    s = np.array([0.9, 0.8, 0.5, 0.3, 0.1])
    y = np.array([0, 1, 0, 0, 0])
    r = pixel_scores(s, y)
    # recall 0 at thr .9 (precision 0), recall 1 at .8 (precision 1/2): area = (0+1/2)/2 + (1+0)/2*0
    assert r["auprc"] == pytest.approx(0.25)
    assert r["ap"] == pytest.approx(0.5)
    assert r["auroc"] == pytest.approx(0.75)
    assert_same(r, sklearn_scores(s, y))
    # ties across classes: {0.5: one positive, one negative} first
    s = np.array([0.5, 0.5, 0.2, 0.2])
    y = np.array([1, 0, 1, 0])
    assert_same(pixel_scores(s, y), sklearn_scores(s, y))
    assert pixel_scores(s, y)["auroc"] == pytest.approx(0.5)


def test_utility_one_class_masks():
    s = np.array([0.1, 0.4, 0.2])
    none = pixel_scores(s, np.zeros(3))
    assert none["auprc"] == pytest.approx(0.5) and none["ap"] == 0.0 and np.isnan(none["auroc"])
    assert_same(none, sklearn_scores(s, np.zeros(3)))
    full = pixel_scores(s, np.ones(3))
    assert full["auprc"] == pytest.approx(1.0) and full["ap"] == pytest.approx(1.0) and np.isnan(full["auroc"])
    assert_same(full, sklearn_scores(s, np.ones(3)))


def test_utility_stack_and_shared_map():
    rng = np.random.default_rng(2)
    masks = (rng.random((5, 16, 16)) < 0.2).astype(np.uint8)
    maps = rng.random((5, 16, 16)).astype(np.float32)
    out = utility_scores(maps, masks)
    shared = utility_scores(maps[0], masks)  # AVG: one map for every image
    for i in range(5):
        assert_same({k: out[k][i] for k in out}, sklearn_scores(maps[i], masks[i]))
        assert_same({k: shared[k][i] for k in shared}, sklearn_scores(maps[0], masks[i]))


def test_utility_rejects_bad_maps():
    with pytest.raises(InputError, match="NaN"):
        pixel_scores(np.array([0.1, np.nan]), np.array([0, 1]))
    with pytest.raises(InputError, match="shape"):
        utility_scores(np.zeros((2, 4, 4)), np.zeros((3, 4, 4)))


# ---------------------------------------------------------------------------------------------


def test_ssim_equals_skimage_with_explicit_data_range(monkeypatch):
    rng = np.random.default_rng(3)
    a = rng.random((3, 32, 32))
    b = np.clip(a + rng.normal(0, 0.2, a.shape), 0, 1)
    ref = [structural_similarity(x, y, data_range=1.0, win_size=7) for x, y in zip(a, b)]
    assert similarity.ssim_stack(a, b, 1.0, 7) == pytest.approx(ref, abs=1e-12)
    assert similarity.ssim(a[0], b[0], 1.0, 7) == pytest.approx(ref[0], abs=1e-12)
    # another window and range change the value, so they are really passed through
    assert similarity.ssim(a[0], b[0], 1.0, 5) == pytest.approx(
        structural_similarity(a[0], b[0], data_range=1.0, win_size=5)
    )
    assert similarity.ssim(a[0] / 2, b[0] / 2, 2.0, 7) == pytest.approx(
        structural_similarity(a[0] / 2, b[0] / 2, data_range=2.0, win_size=7)
    )
    # the wrapper passes data_range explicitly
    import skimage.metrics

    seen = {}
    real = skimage.metrics.structural_similarity

    def spy(x, y, **kw):
        seen.update(kw)
        return real(x, y, **kw)

    monkeypatch.setattr(skimage.metrics, "structural_similarity", spy)
    similarity.ssim_stack(a, b, 1.0, 7)
    assert seen == {"data_range": 1.0, "win_size": 7}


def test_ssim_refuses_unnormalized_and_uint8_maps():
    rng = np.random.default_rng(4)
    a = rng.random((1, 16, 16))
    with pytest.raises(InputError, match=r"expected \[0, 1.0\]"):
        similarity.ssim_stack(a * 3.0 - 1.0, a, 1.0, 7)  # raw float map
    with pytest.raises(InputError, match="odd window"):
        similarity.ssim_stack(a, a, 1.0, 6)
    with pytest.raises(InputError, match="uint8"):
        similarity.ssim_stack((a * 255).astype(np.uint8), a, 1.0, 7)
    # all-zero maps are a value: identical -> 1, vs a structured map -> small
    z = np.zeros((1, 16, 16))
    assert similarity.ssim_stack(z, z, 1.0, 7)[0] == pytest.approx(1.0)
    assert similarity.ssim_stack(z, a, 1.0, 7)[0] < 0.1


def test_spearman_equals_scipy():
    rng = np.random.default_rng(5)
    a = rng.normal(size=(12, 12))
    b = a + rng.normal(size=(12, 12))
    b[:3] = 0.0  # ties
    assert similarity.spearman(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel()).statistic, abs=1e-12)
    ref_abs = spearmanr(np.abs(a).ravel(), np.abs(b).ravel()).statistic
    assert similarity.spearman(a, b, absolute=True) == pytest.approx(ref_abs, abs=1e-12)
    assert abs(ref_abs - spearmanr(a.ravel(), b.ravel()).statistic) > 1e-3  # the two variants differ
    # stack path used by the criteria
    fa, fb = similarity.features("spearman", a[None], None, 1.0), similarity.features("spearman", b[None], None, 1.0)
    assert similarity.compare("spearman", fa, fb, 1.0, 7)[0] == pytest.approx(spearmanr(a.ravel(), b.ravel()).statistic)


def test_average_ranks_equal_scipy_rankdata():
    from scipy.stats import rankdata

    rng = np.random.default_rng(8)
    cases = [
        rng.random(500).astype(np.float32),  # packed fast path
        np.round(rng.normal(size=500), 1).astype(np.float32),  # ties, negatives
        np.array([-0.0, 0.0, 1.0, -1.0, 0.0], np.float32),
        np.zeros(7, np.float32),
        rng.normal(size=50),  # float64 not exact in float32: scipy path
    ]
    for x in cases:
        got = similarity.ranks(x[None])[0]
        np.testing.assert_array_equal(got, rankdata(x.astype(np.float64)))


def test_correlations_of_constant_maps_are_defined():
    a = np.random.default_rng(6).random((32, 32))
    z = np.zeros((32, 32))
    assert similarity.spearman(z, z) == 1.0
    assert similarity.spearman(a, z) == 0.0
    assert similarity.hog_similarity(z, np.full((32, 32), 0.7)) == 1.0
    assert similarity.hog_similarity(a, z) == 0.0


def test_hog_similarity_is_pearson_of_skimage_hog():
    rng = np.random.default_rng(7)
    a = rng.random((32, 32))
    b = np.clip(a + rng.normal(0, 0.3, a.shape), 0, 1)
    ref = pearsonr(hog(a), hog(b)).statistic
    assert similarity.hog_similarity(a, b) == pytest.approx(ref, abs=1e-12)
    assert similarity.hog_similarity(a, a) == pytest.approx(1.0)


def test_unknown_similarity_metric():
    with pytest.raises(InputError, match="unknown metric"):
        similarity.features("emd", np.zeros((1, 8, 8)), np.zeros((1, 8, 8)), 1.0)
    with pytest.raises(InputError, match="too small"):
        similarity.hog_features(np.zeros((1, 8, 8)))


def test_ssim_dr2_is_skimage_ssim_with_data_range_2_on_the_same_maps():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(5)
    a, b = rng.random((3, 24, 24)), rng.random((3, 24, 24))
    fa = similarity.features("ssim_dr2", None, a, 1.0)  # maps in [0, 1], checked against data_range 1
    fb = similarity.features("ssim_dr2", None, b, 1.0)
    got = similarity.compare("ssim_dr2", fa, fb, 1.0, 7)
    ref = [structural_similarity(x, y, data_range=2.0, win_size=7) for x, y in zip(a, b)]
    assert got == pytest.approx(ref, abs=1e-12)
    dr1 = similarity.compare("ssim", fa, fb, 1.0, 7)
    assert (got > dr1).all()  # a larger data_range raises C1, C2: SSIM of dissimilar maps moves toward 1


def test_constant_maps_flag():
    from saliency_audit.metrics.utility import constant_maps

    m = np.random.default_rng(0).random((4, 8, 8))
    m[1] = 0.0
    m[2] = 0.3
    m[3, 0, 0] = m[3, 0, 1] + 1e-7  # one differing pixel: not constant
    assert constant_maps(m).tolist() == [0.0, 1.0, 1.0, 0.0]
    assert constant_maps(np.zeros((0, 8, 8))).shape == (0,)
