"""CheXlocalize's localization metrics, next to the utility AUPRC: IoU of a binarized map and hit rate.

Saporta et al., "Benchmarking saliency methods for chest X-ray interpretation", Nat. Mach. Intell.
2022 (CheXlocalize; code: rajpurkarlab/cheXlocalize ``heatmap_to_segmentation.py``, ``eval.py``):

- **IoU** (mIoU = its mean over images): the normalized map (``saliency.normalization``;
  CheXlocalize min-max scales) is binarized by Otsu's threshold (CheXlocalize:
  ``cv2.threshold(..., THRESH_OTSU)`` on ``np.uint8(255 * map)``; here
  :func:`skimage.filters.threshold_otsu` on the same uint8 map, whose integer histogram makes the
  threshold one of its grey levels; pixels strictly above it, as cv2's ``src > thresh``), or by a
  fixed threshold on the [0, 1] map (pixels strictly above it); IoU = |pred AND truth| / |pred OR truth|.
  Empty cases as CheXlocalize's default, ``eval.py --true_pos_only True`` (``calculate_iou`` with
  ``true_pos_only=True``: "run evaluation only on the true positive slice", images with both a
  predicted and a ground-truth segmentation): an empty truth **or** an empty prediction gives NaN,
  and mIoU is the mean over the remaining images (NaN-skipping). (``true_pos_only=False`` would give
  0 for an empty prediction against a non-empty truth, and for a non-empty prediction against an
  empty truth, NaN only when both are empty.) A constant map (e.g. all zero) has Otsu threshold
  equal to its value, so its segmentation is empty: IoU NaN.
- **hit** (hit rate = its mean; the pointing game, Zhang et al. ECCV 2016): 1 when the map's
  maximum pixel lies inside the truth, else 0; NaN for an empty truth. Ties: the first maximum in
  row-major order (``numpy.argmax``, as CheXlocalize ``get_hit_rates``), so an all-zero map points
  at pixel (0, 0).

Maps arrive normalized to [0, 1] (:func:`saliency_audit.metrics.criteria.normalize`) and at the
mask's size; CheXlocalize upsamples maps to the image with bilinear interpolation
(``align_corners=False``) before these metrics, which :mod:`saliency_audit.byom.importer` does too.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

HIT = "hit"


def metric_name(threshold) -> str:
    """``'otsu'`` -> ``iou_otsu``; ``0.5`` -> ``iou_0.5``."""
    return "iou_otsu" if threshold == "otsu" else f"iou_{float(threshold):g}"


def check_thresholds(thresholds) -> list:
    out = []
    for t in thresholds:
        if t == "otsu":
            out.append(t)
            continue
        try:
            v = float(t)
        except (TypeError, ValueError):
            raise InputError(
                f"criteria.localization_thresholds: {t!r}; expected 'otsu' or a number in [0, 1]"
            ) from None
        if not 0 <= v <= 1:
            raise InputError(f"criteria.localization_thresholds: {v}; expected a number in [0, 1] (normalized map)")
        out.append(v)
    return out


def binarize(score_map, threshold="otsu") -> np.ndarray:
    """Binary segmentation of one normalized map: pixels strictly above Otsu's or a fixed threshold."""
    m = np.asarray(score_map, dtype=np.float64)
    if threshold == "otsu":
        q = to_uint8(m)
        from skimage.filters import threshold_otsu  # lazy: the rules import this module at parse time

        return q > threshold_otsu(q) if q.size else np.zeros(q.shape, bool)
    return m > float(threshold)


def to_uint8(m) -> np.ndarray:
    """A [0, 1] map as CheXlocalize quantizes it before Otsu: ``np.uint8(255 * m)`` (truncation)."""
    return (255.0 * np.clip(np.asarray(m, dtype=np.float64), 0.0, 1.0)).astype(np.uint8)


def iou(pred, truth) -> float:
    """Intersection over union of two binary masks; NaN when either is empty.

    CheXlocalize's default (``eval.py``: ``--true_pos_only`` defaults to ``True``; ``calculate_iou``
    returns NaN when ``np.sum(pred_mask) == 0 or np.sum(gt_mask) == 0``), Saporta et al. 2022.
    """
    pred, truth = np.asarray(pred) != 0, np.asarray(truth) != 0
    if pred.shape != truth.shape:
        raise InputError(f"segmentation shape {pred.shape} does not match mask shape {truth.shape}")
    if not truth.any() or not pred.any():
        return float("nan")
    return float(np.logical_and(pred, truth).sum() / np.logical_or(pred, truth).sum())


def hit(score_map, truth) -> float:
    """Pointing game: 1.0 when the (first, row-major) maximum of the map is in the truth; NaN if empty truth."""
    m, truth = np.asarray(score_map), np.asarray(truth) != 0
    if m.shape != truth.shape:
        raise InputError(f"map shape {m.shape} does not match mask shape {truth.shape}")
    if not truth.any():
        return float("nan")
    return float(truth.flat[int(np.argmax(m))])


def localization_scores(maps, masks, thresholds=("otsu",), what: str = "maps") -> dict[str, np.ndarray]:
    """IoU per threshold and hit of a stack of normalized maps against masks.

    Parameters
    ----------
    maps : array (N, S, S), or (S, S) shared by every image (the AVG baseline)
    masks : array (N, S, S), nonzero = finding
    thresholds : list of ``'otsu'`` or numbers in [0, 1]

    Returns
    -------
    dict metric -> float64 array (N,): ``iou_otsu`` / ``iou_<t>`` and ``hit``
    """
    maps, masks = np.asarray(maps), np.asarray(masks)
    thresholds = check_thresholds(thresholds)
    n = masks.shape[0]
    shared = maps.ndim == masks.ndim - 1
    if not shared and maps.shape != masks.shape:
        raise InputError(f"{what}: maps shape {maps.shape} does not match masks shape {masks.shape}")
    if shared and n and maps.shape != masks.shape[1:]:
        raise InputError(f"{what}: map shape {maps.shape} does not match mask shape {masks.shape[1:]}")
    out = {metric_name(t): np.full(n, np.nan) for t in thresholds}
    out[HIT] = np.full(n, np.nan)
    segs = {t: binarize(maps, t) for t in thresholds} if shared else None
    for i in range(n):
        m = maps if shared else maps[i]
        for t in thresholds:
            out[metric_name(t)][i] = iou(segs[t] if shared else binarize(m, t), masks[i])
        out[HIT][i] = hit(m, masks[i])
    return out
