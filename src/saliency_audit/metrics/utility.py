"""Localization utility: a map as a pixel classifier of the ground-truth mask (or box mask).

Arun et al. (Radiology: AI 2021), criterion 1 and Table S2: per test image with a finding, the
saliency map scores every pixel and the mask is the truth. The released code computed AUPRC as the
trapezoidal area under scikit-learn's precision-recall curve, ``auc(recall, precision)``; we also
report average precision (``average_precision_score``, the step-wise area) and AUROC
(``roc_auc_score``).

All three come from one descending sort of the pixels and two cumulative sums, exactly as
scikit-learn's ``_binary_clf_curve`` builds them (thresholds at the *distinct* score values; tied
pixels enter together), so the values equal scikit-learn's to rounding (tests: 1e-9) at a fraction
of the cost. A map of identical values (including an all-zero map) is one threshold: AUPRC =
(1 + prevalence) / 2, AP = prevalence, AUROC = 0.5, as scikit-learn gives. Note that the
trapezoidal AUPRC interpolates linearly from (recall 0, precision 1) to that single point, which
is optimistic (Davis & Goadrich, ICML 2006): an all-zero map (e.g. Grad-CAM of a randomized model)
scores about 0.5, above most real maps; AP (= prevalence) does not have this artefact. A mask without positive
pixels gives AUPRC 0.5 and AP 0 (scikit-learn sets recall to 1, with a warning); a mask without
negatives gives AUPRC = AP = 1; in both cases AUROC is NaN (scikit-learn warns and returns NaN).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

METRICS = ("auprc", "ap", "auroc")
#: Per-image 0/1 score: the (normalized) map is constant (max == min, e.g. all zero). Counted in the
#: score summary and the tables; never modelled by the statistics.
CONSTANT = "constant"


def constant_maps(maps) -> np.ndarray:
    """1.0 for each map of a stack (N, ...) whose values are all equal (max == min), else 0.0.

    A constant map (e.g. the all-zero Grad-CAM of a randomized model) ranks no pixel above another:
    its trapezoidal AUPRC is (1 + prevalence) / 2 and its AP the prevalence (module docstring).
    """
    m = np.asarray(maps)
    if len(m) == 0:
        return np.zeros(0)
    flat = m.reshape(len(m), -1)
    return (flat.max(axis=1) == flat.min(axis=1)).astype(np.float64)


def _float32_exact(score: np.ndarray) -> np.ndarray | None:
    """``score`` as float32 when that keeps every value (and so every order and tie), else None."""
    if score.dtype in (np.float16, np.float32) or np.issubdtype(score.dtype, np.bool_):
        return score.astype(np.float32, copy=False)
    if np.issubdtype(score.dtype, np.integer):
        return score.astype(np.float32) if np.abs(score).max(initial=0) < 2**24 else None
    s32 = score.astype(np.float32)
    return s32 if np.array_equal(s32, score) else None


def _sortable_key(s32: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Integer keys whose order is the float order of ``s32``, with the label in the lowest bit.

    Non-negative maps (every normalized map) fit in uint32: 31 bits of the float plus the label;
    maps with negative values use uint64 and the sign-flip trick for a total float order.
    """
    s32 = s32 + np.float32(0.0)  # -0.0 -> +0.0: equal scores must have equal keys
    bits = s32.view(np.uint32)
    if not (bits >> np.uint32(31)).any():
        return (bits << np.uint32(1)) | truth.astype(np.uint32)
    neg = (bits >> np.uint32(31)).astype(bool)
    key = np.where(neg, ~bits, bits | np.uint32(0x80000000)).astype(np.uint64)
    return (key << np.uint64(1)) | truth.astype(np.uint64)


def _descending(score: np.ndarray, truth: np.ndarray):
    """Truth labels in descending score order and the index of the last pixel of each tie group.

    The fast path packs the score's float32 bits and the label into one integer and sorts once
    (no argsort); scores that are not exactly float32 fall back to a stable argsort.
    """
    s32 = _float32_exact(score)
    if s32 is not None:
        key = np.sort(_sortable_key(s32, truth))[::-1]
        one = key.dtype.type(1)
        y = (key & one).astype(np.uint8)
        group = key >> one
    else:
        order = np.argsort(score, kind="stable")[::-1]
        y = truth[order].astype(np.uint8)
        group = score[order]
    ends = np.flatnonzero(group[1:] != group[:-1])
    return y, np.append(ends, y.size - 1)


def _scores_from_counts(y_desc: np.ndarray, ends: np.ndarray) -> dict[str, float]:
    """AUPRC, AP and AUROC from labels in descending score order and tie-group ends.

    At threshold k (the k-th distinct score from the top) ``tps_k`` positives and ``fps_k``
    negatives score at least as high; precision p_k = tps_k / (tps_k + fps_k), recall
    r_k = tps_k / P. With the point (recall 0, precision 1) first, as scikit-learn's
    ``precision_recall_curve``: AUPRC = sum_k (r_k - r_{k-1}) (p_k + p_{k-1}) / 2 (trapezoid) and
    AP = sum_k (r_k - r_{k-1}) p_k. AUROC, the trapezoid under the ROC curve, equals the
    Mann-Whitney form sum_k pos_k (N - fps_k + neg_k / 2) / (P N) (pos_k, neg_k: positives and
    negatives in tie group k). Every term is zero for a group without positives, so only the
    groups holding a positive pixel are visited (few: masks are small).
    """
    n = y_desc.size
    pos_idx = np.flatnonzero(y_desc)  # positions of the positives, from the top score down
    pos = pos_idx.size
    neg = n - pos
    if pos == 0:  # scikit-learn: recall set to 1 at every threshold; precision 0 at the top one
        return {"auprc": 0.5, "ap": 0.0, "auroc": float("nan")}
    g = np.searchsorted(ends, pos_idx)  # tie group of each positive
    first = np.flatnonzero(np.concatenate(([True], g[1:] != g[:-1])))
    gk = g[first]  # groups holding positives, top down
    tps_prev = first.astype(np.float64)  # positives in the groups above group gk
    tps = np.append(first[1:], pos).astype(np.float64)  # positives down to group gk
    n_k = ends[gk] + 1.0  # pixels down to group gk
    n_prev = np.where(gk > 0, ends[gk - 1] + 1.0, 0.0)  # pixels above group gk
    precision = tps / n_k
    with np.errstate(invalid="ignore", divide="ignore"):
        prev_precision = np.where(gk > 0, tps_prev / np.where(gk > 0, n_prev, 1.0), 1.0)
    dtps = tps - tps_prev
    auprc = float(np.sum(dtps * (precision + prev_precision))) / (2.0 * pos)
    ap = max(0.0, float(np.sum(dtps * precision)) / pos)
    if neg > 0:
        fps = n_k - tps
        neg_in_group = (n_k - n_prev) - dtps
        auroc = float(np.sum(dtps * (neg - fps + 0.5 * neg_in_group))) / (float(pos) * neg)
    else:
        auroc = float("nan")
    return {"auprc": auprc, "ap": ap, "auroc": auroc}


def _check(score: np.ndarray, truth: np.ndarray, what: str):
    if score.shape != truth.shape:
        raise InputError(f"{what}: map shape {score.shape} does not match mask shape {truth.shape}")
    if not np.issubdtype(score.dtype, np.number) and score.dtype != bool:
        raise InputError(f"{what}: map dtype {score.dtype} is not numeric")
    if np.issubdtype(score.dtype, np.floating) and not np.isfinite(score).all():
        raise InputError(f"{what}: map has NaN or infinite values")


def pixel_scores(score_map, mask, what: str = "map") -> dict[str, float]:
    """AUPRC, average precision and AUROC of one map as a pixel classifier of one mask.

    Parameters
    ----------
    score_map : array (S, S) or any shape
        Pixel scores (higher = more salient). Any real dtype; NaN/inf are rejected.
    mask : array, same shape
        Ground truth; nonzero = positive pixel.
    what : str
        Names the map in error messages.

    Returns
    -------
    dict
        ``auprc``: trapezoidal area under the PR curve (scikit-learn
        ``auc(*precision_recall_curve(...)[1::-1])``, the released code of Arun et al. 2021);
        ``ap``: ``average_precision_score``; ``auroc``: ``roc_auc_score`` (NaN when the mask has
        only one class). Values equal scikit-learn 1.9 to rounding; see the module docstring for
        all-equal maps and one-class masks.
    """
    score = np.asarray(score_map).ravel()
    truth = np.asarray(mask).ravel() != 0
    _check(score, truth, what)
    return _scores_from_counts(*_descending(score, truth))


def utility_scores(maps, masks, what: str = "maps") -> dict[str, np.ndarray]:
    """:func:`pixel_scores` of a stack of maps against a stack of masks.

    Parameters
    ----------
    maps : array (N, S, S), or (S, S) for one map shared by every image (the AVG baseline; it is
        sorted once and each mask only reorders)
    masks : array (N, S, S)

    Returns
    -------
    dict of metric name -> float64 array (N,)
    """
    maps = np.asarray(maps)
    masks = np.asarray(masks)
    n = masks.shape[0]
    out = {m: np.full(n, np.nan) for m in METRICS}
    if maps.ndim == masks.ndim - 1:  # one shared map
        score = maps.ravel()
        _check(score, masks[0].ravel() if n else score, what)
        s32 = _float32_exact(score)
        order = np.argsort(s32 if s32 is not None else score, kind="stable")[::-1]
        group = score[order]
        ends = np.append(np.flatnonzero(group[1:] != group[:-1]), score.size - 1)
        for i in range(n):
            y = (masks[i].ravel() != 0)[order].astype(np.uint8)
            for k, v in _scores_from_counts(y, ends).items():
                out[k][i] = v
        return out
    if maps.shape != masks.shape:
        raise InputError(f"{what}: maps shape {maps.shape} does not match masks shape {masks.shape}")
    for i in range(n):
        for k, v in pixel_scores(maps[i], masks[i], what=f"{what}[{i}]").items():
            out[k][i] = v
    return out
