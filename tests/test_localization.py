"""CheXlocalize's localization metrics (IoU after Otsu / fixed threshold, hit rate) on hand-built maps."""

import numpy as np
import pytest
from skimage.filters import threshold_otsu
from sklearn.metrics import jaccard_score

from saliency_audit.errors import InputError
from saliency_audit.metrics import localization as loc


def square(size, r0, r1, c0, c1):
    m = np.zeros((size, size), np.uint8)
    m[r0:r1, c0:c1] = 1
    return m


def test_iou_by_hand_and_against_sklearn():
    truth = square(8, 2, 6, 2, 6)  # 16 px
    pred = square(8, 4, 8, 4, 8)  # 16 px, overlap rows 4-5 x cols 4-5 = 4 px
    assert loc.iou(pred, truth) == pytest.approx(4 / 28)
    assert loc.iou(pred, truth) == pytest.approx(jaccard_score(truth.ravel(), pred.ravel()))


# CheXlocalize's default (eval.py --true_pos_only True): IoU only on the true-positive slice, i.e.
# NaN whenever the prediction or the truth is empty. Hand-made 4x4 cases: (pred, truth, expected).
E = np.zeros((4, 4), np.uint8)
A = square(4, 0, 2, 0, 2)  # 4 px
B = square(4, 1, 3, 1, 3)  # 4 px, overlap with A: 1 px, union 7
C = square(4, 2, 4, 2, 4)  # 4 px, disjoint from A
EMPTY_CASES = [
    (A, E, np.nan),  # prediction, no finding: NaN (true_pos_only=False would give 0)
    (E, A, np.nan),  # finding, empty prediction: NaN (true_pos_only=False would give 0)
    (E, E, np.nan),  # both empty: NaN
    (A, A, 1.0),
    (A, B, 1 / 7),
    (A, C, 0.0),  # both non-empty, disjoint: 0, not NaN
]


@pytest.mark.parametrize("pred, truth, expected", EMPTY_CASES)
def test_iou_empty_truth_and_prediction_as_chexlocalize_default(pred, truth, expected):
    got = loc.iou(pred, truth)
    if np.isnan(expected):
        assert np.isnan(got)
    else:
        assert got == pytest.approx(expected, abs=1e-15)


def test_otsu_binarization_of_a_bimodal_map():
    rng = np.random.default_rng(0)
    truth = square(16, 3, 9, 5, 12)
    m = np.where(truth == 1, 0.8, 0.1) + rng.uniform(0, 0.005, truth.shape)
    seg = loc.binarize(m, "otsu")
    q = (255 * m).astype(np.uint8)  # CheXlocalize: np.uint8(255 * map), then Otsu
    assert np.array_equal(seg, q > threshold_otsu(q))
    assert np.array_equal(seg, truth.astype(bool))  # the two modes separate exactly
    out = loc.localization_scores(m[None], truth[None], ["otsu", 0.5, 0.9])
    assert out["iou_otsu"][0] == 1.0
    assert out["iou_0.5"][0] == 1.0
    assert np.isnan(out["iou_0.9"][0])  # nothing above 0.9: empty prediction, NaN (CheXlocalize default)
    assert out["hit"][0] == 1.0


def test_fixed_threshold_iou_against_sklearn():
    rng = np.random.default_rng(1)
    m = rng.random((3, 12, 12))
    truth = np.stack([square(12, 0, 6, 0, 6), square(12, 3, 9, 3, 12), square(12, 10, 12, 0, 12)])
    out = loc.localization_scores(m, truth, [0.3, "otsu"])
    for i in range(3):
        ref = jaccard_score(truth[i].ravel(), (m[i] > 0.3).ravel())
        assert out["iou_0.3"][i] == pytest.approx(ref, abs=1e-12)
        q = (255 * m[i]).astype(np.uint8)
        ref = jaccard_score(truth[i].ravel(), (q > threshold_otsu(q)).ravel())
        assert out["iou_otsu"][i] == pytest.approx(ref, abs=1e-12)


def test_hit_rate_pointing_game():
    truth = square(10, 2, 5, 2, 5)
    inside = np.zeros((10, 10))
    inside[3, 3] = 1.0
    outside = np.zeros((10, 10))
    outside[8, 8] = 1.0
    assert loc.hit(inside, truth) == 1.0
    assert loc.hit(outside, truth) == 0.0
    # ties: the first maximum in row-major order (numpy.argmax, CheXlocalize)
    tie = np.zeros((10, 10))
    tie[0, 9] = tie[3, 3] = 1.0
    assert loc.hit(tie, truth) == 0.0
    tie[0, 9] = 0.5
    assert loc.hit(tie, truth) == 1.0
    assert np.isnan(loc.hit(inside, np.zeros_like(truth)))


def test_all_zero_map_iou_nan_hit_defined():
    truth = square(10, 0, 3, 0, 3)
    zero = np.zeros((1, 10, 10), np.float32)
    out = loc.localization_scores(zero, truth[None], ["otsu", 0.5])
    # empty segmentation: NaN (CheXlocalize's true_pos_only default), left out of the mIoU mean
    assert np.isnan(out["iou_otsu"][0]) and np.isnan(out["iou_0.5"][0])
    assert out["hit"][0] == 1.0  # argmax of an all-zero map is pixel (0, 0), inside this truth
    truth2 = square(10, 5, 8, 5, 8)
    assert loc.localization_scores(zero, truth2[None])["hit"][0] == 0.0


def test_shared_map_equals_per_image_maps():
    rng = np.random.default_rng(2)
    avg = rng.random((12, 12))
    masks = np.stack([square(12, 0, 6, 0, 6), square(12, 6, 12, 6, 12)])
    shared = loc.localization_scores(avg, masks, ["otsu", 0.4])
    each = loc.localization_scores(np.stack([avg, avg]), masks, ["otsu", 0.4])
    for k in shared:
        np.testing.assert_array_equal(shared[k], each[k])


def test_bad_thresholds_and_shapes():
    with pytest.raises(InputError, match="otsu"):
        loc.localization_scores(np.zeros((1, 4, 4)), np.ones((1, 4, 4)), ["mean"])
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        loc.localization_scores(np.zeros((1, 4, 4)), np.ones((1, 4, 4)), [2])
    with pytest.raises(InputError, match="does not match"):
        loc.localization_scores(np.zeros((1, 4, 4)), np.ones((1, 5, 5)))


def _otsu_bruteforce(q: np.ndarray) -> int:
    """Otsu on a uint8 map as OpenCV's THRESH_OTSU defines it, by exhaustive search: the t in 0..254
    maximising the between-class variance of {q <= t} and {q > t} (first t on ties)."""
    v = q.ravel().astype(np.float64)
    best, best_t = -1.0, 0
    for t in range(255):
        lo, hi = v[v <= t], v[v > t]
        if not len(lo) or not len(hi):
            continue
        w0, w1 = len(lo) / len(v), len(hi) / len(v)
        between = w0 * w1 * (lo.mean() - hi.mean()) ** 2
        if between > best + 1e-9:
            best, best_t = between, t
    return best_t


@pytest.mark.parametrize("seed", range(6))
def test_otsu_matches_an_exhaustive_reference(seed):
    """The Otsu segmentation equals OpenCV's definition computed by brute force (not skimage's own)."""
    rng = np.random.default_rng(seed)
    m = np.clip(rng.normal(0.3, 0.15, (24, 24)) + 0.4 * square(24, 5, 14, 6, 18), 0, 1)
    q = (255 * m).astype(np.uint8)
    assert np.array_equal(loc.binarize(m, "otsu"), q > _otsu_bruteforce(q))
