"""Similarity of two saliency maps of the same image: SSIM, Spearman rank correlation, HOG.

* ``ssim``: structural similarity (Wang et al., IEEE TIP 2004) as scikit-image computes it
  (``skimage.metrics.structural_similarity`` with a uniform ``win_size`` window, sample covariance,
  K1 = 0.01, K2 = 0.03), with an explicit ``data_range`` on maps normalized to [0, data_range].
  Arun et al. (Radiology: AI 2021) use it for randomization, repeatability and reproducibility
  (7x7 window; the released code implied data_range 2.0, the protocol uses 1.0 on [0, 1] maps).
* ``spearman`` / ``spearman_abs``: Spearman rank correlation of the raw maps without and with
  absolute values (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018, Sec. 3).
  A rank statistic ignores monotone rescaling, so it is taken on the raw stored maps: after the
  released normalization (absolute values) the two variants would coincide.
* ``ssim_dr2``: the same SSIM with ``data_range`` 2.0 on the same normalized maps (scikit-image's
  float default that the released code implied; the sensitivity table compares the two).
* ``hog``: Pearson correlation of the histogram-of-oriented-gradients vectors of the normalized
  maps (Adebayo et al. 2018; ``skimage.feature.hog`` with its defaults).

Maps are compared in float64. Integer maps (e.g. uint8) are rejected rather than silently compared
with float maps. Correlations of a constant map are defined (scipy returns NaN): 1.0 when both maps
are constant (identical rank structure), 0.0 when exactly one is. SSIM of two all-zero maps is 1
(scikit-image's value).
"""

from __future__ import annotations

import numpy as np
from ..errors import InputError

SIMILARITY_METRICS = ("ssim", "spearman", "spearman_abs", "hog", "ssim_dr2")
#: Which form of the map each metric reads: the normalized map in [0, data_range] or the raw map.
NEEDS = {"ssim": "normalized", "ssim_dr2": "normalized", "hog": "normalized", "spearman": "raw", "spearman_abs": "raw"}
#: SSIM data_range of ``ssim_dr2`` (the released code's implied scikit-image float default).
RELEASED_DATA_RANGE = 2.0
#: skimage.feature.hog parameters (its defaults).
HOG_PARAMS = {"orientations": 9, "pixels_per_cell": (8, 8), "cells_per_block": (3, 3), "block_norm": "L2-Hys"}


def as_float64(maps, what: str = "maps") -> np.ndarray:
    """``maps`` as float64, refusing integer/bool maps (never compare uint8 with float maps)."""
    maps = np.asarray(maps)
    if not np.issubdtype(maps.dtype, np.floating):
        raise InputError(f"{what}: dtype {maps.dtype}; similarity needs float maps (normalize uint8 maps first)")
    out = maps.astype(np.float64)
    if not np.isfinite(out).all():
        raise InputError(f"{what}: NaN or infinite values")
    return out


def check_normalized(maps, data_range: float, what: str = "maps") -> np.ndarray:
    """Float64 ``maps`` after checking they lie in [0, data_range] (SSIM's explicit data range).

    Raises
    ------
    InputError
        For integer maps or values outside [0, data_range] (an unnormalized map).
    """
    out = as_float64(maps, what)
    tol = 1e-6 * data_range
    if out.size and (out.min() < -tol or out.max() > data_range + tol):
        raise InputError(
            f"{what}: values in [{out.min():.4g}, {out.max():.4g}], expected [0, {data_range}] "
            "(normalize the maps, or set criteria.ssim_data_range)"
        )
    return out


def ssim(a, b, data_range: float, win_size: int = 7) -> float:
    """SSIM of two maps by scikit-image, with the data range stated (maps checked to lie in it).

    Parameters
    ----------
    a, b : float arrays (S, S) in [0, data_range]
    data_range : float
        Passed to ``skimage.metrics.structural_similarity`` explicitly (1.0 for [0, 1] maps).
    win_size : int
        Side of the uniform window (Arun et al. 2021: 7).
    """
    return float(ssim_stack(np.asarray(a)[None], np.asarray(b)[None], data_range, win_size)[0])


def ssim_stack(a, b, data_range: float, win_size: int = 7) -> np.ndarray:
    """SSIM of each pair of two stacks ``(N, S, S)`` by scikit-image (checked once per stack).

    A loop of ``skimage.metrics.structural_similarity`` calls: per 320x320 pair it is faster than
    a filter over the whole stack, and it is the reference itself.
    """
    from skimage.metrics import structural_similarity

    a = check_normalized(a, data_range, "maps a")
    b = check_normalized(b, data_range, "maps b")
    if a.shape != b.shape or a.ndim != 3:
        raise InputError(f"SSIM needs two stacks (N, S, S) of one shape; got {a.shape} and {b.shape}")
    if win_size < 3 or win_size % 2 == 0:
        raise InputError(f"criteria.ssim_win_size: an odd window of at least 3 is needed, got {win_size}")
    if len(a) and min(a.shape[1:]) < win_size:
        raise InputError(f"SSIM window {win_size} is larger than the maps {a.shape[1:]}")
    return np.array(
        [structural_similarity(x, y, data_range=data_range, win_size=win_size) for x, y in zip(a, b)],
        dtype=np.float64,
    )


def _row_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of matching rows; 1.0 if both rows are constant, 0.0 if one is."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    sx, sy = np.sqrt((xc * xc).sum(axis=1)), np.sqrt((yc * yc).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(axis=1) / (sx * sy)
    const_x, const_y = sx == 0, sy == 0
    r = np.where(const_x & const_y, 1.0, np.where(const_x | const_y, 0.0, r))
    return np.clip(r, -1.0, 1.0)


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (1-based; ties share their mean rank) of a 1-D float array.

    Float32-exact values are packed with their index into one uint64 (value bits high, index low)
    and sorted once, which is several times faster than an argsort; other values go through
    ``scipy.stats.rankdata``.
    """
    x32 = x.astype(np.float32)
    if x.size >= 2**32 or not np.array_equal(x32, x):
        from scipy.stats import rankdata

        return rankdata(x)
    bits = (x32 + np.float32(0.0)).view(np.uint32)  # -0.0 == 0.0
    neg = (bits >> np.uint32(31)).astype(bool)
    key = np.where(neg, ~bits, bits | np.uint32(0x80000000)).astype(np.uint64) << np.uint64(32)
    key = np.sort(key | np.arange(x.size, dtype=np.uint64))
    order = (key & np.uint64(0xFFFFFFFF)).astype(np.intp)
    value = key >> np.uint64(32)
    starts = np.flatnonzero(np.concatenate(([True], value[1:] != value[:-1])))
    ends = np.append(starts[1:], x.size) - 1
    mid = (starts + ends) / 2.0 + 1.0
    out = np.empty(x.size)
    out[order] = np.repeat(mid, ends - starts + 1)
    return out


def ranks(maps, absolute: bool = False) -> np.ndarray:
    """Average ranks (ties share their mean rank, as ``scipy.stats.rankdata``) of each flattened map."""
    x = as_float64(maps)
    x = x.reshape(x.shape[0], int(np.prod(x.shape[1:])))
    if absolute:
        x = np.abs(x)
    return np.stack([_average_ranks(row) for row in x]) if len(x) else np.zeros(x.shape)


def spearman(a, b, absolute: bool = False) -> float:
    """Spearman rank correlation of two maps (Adebayo et al. 2018), optionally of ``|a|``, ``|b|``."""
    return float(_row_pearson(ranks(np.asarray(a)[None], absolute), ranks(np.asarray(b)[None], absolute))[0])


def hog_features(maps, **params) -> np.ndarray:
    """HOG vector of each map of a stack (``skimage.feature.hog``; defaults :data:`HOG_PARAMS`)."""
    from skimage.feature import hog

    kw = {**HOG_PARAMS, **params}
    x = as_float64(maps)
    try:
        return np.stack([hog(m, feature_vector=True, **kw) for m in x]) if len(x) else np.zeros((0, 0))
    except ValueError as exc:  # image smaller than one block of cells
        raise InputError(f"HOG of maps {x.shape[1:]}: {exc}") from exc


def hog_similarity(a, b, **params) -> float:
    """Pearson correlation of the HOG vectors of two maps (Adebayo et al. 2018)."""
    return float(
        _row_pearson(hog_features(np.asarray(a)[None], **params), hog_features(np.asarray(b)[None], **params))[0]
    )


def features(metric: str, raw, normalized, data_range: float) -> np.ndarray:
    """What :func:`compare` needs of one stack of maps for ``metric`` (computed once, reused).

    ``raw``: the maps as stored; ``normalized``: the maps in [0, data_range].
    """
    if metric in ("ssim", "ssim_dr2"):
        return check_normalized(normalized, data_range)
    if metric == "hog":
        return hog_features(check_normalized(normalized, data_range))
    if metric == "spearman":
        return ranks(raw)
    if metric == "spearman_abs":
        return ranks(raw, absolute=True)
    raise InputError(f"criteria.similarity: unknown metric {metric!r}; known: {list(SIMILARITY_METRICS)}")


def compare(metric: str, fa: np.ndarray, fb: np.ndarray, data_range: float, win_size: int) -> np.ndarray:
    """Per-image similarity (N,) of two stacks of :func:`features` of the same images."""
    if len(fa) != len(fb):
        raise InputError(f"{metric}: {len(fa)} maps vs {len(fb)} maps")
    if len(fa) == 0:
        return np.zeros(0)
    if metric == "ssim":
        return ssim_stack(fa, fb, data_range, win_size)
    if metric == "ssim_dr2":
        return ssim_stack(fa, fb, max(data_range, RELEASED_DATA_RANGE), win_size)
    return _row_pearson(fa.reshape(len(fa), -1), fb.reshape(len(fb), -1))
