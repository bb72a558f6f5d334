"""Seeded bootstrap resampling of test images (numpy only; lowest layer, beside :mod:`.plan`).

Efron & Tibshirani, *An Introduction to the Bootstrap* (1993), ch. 13: percentile intervals. The
unit resampled is the test image, since every score of a criterion is measured on the same images.
"""

from __future__ import annotations

import numpy as np

#: Bootstrap resamples of the confidence intervals and of the verdict stability.
RESAMPLES = 1000


def indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """``resamples`` bootstrap resamples of ``range(n)`` (with replacement): int array (resamples, n)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(resamples, n)) if n else np.zeros((resamples, 0), dtype=int)


def mean_ci(values, resamples: int = RESAMPLES, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (one value per image); NaN when empty."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    means = v[indices(v.size, resamples, seed)].mean(axis=1)
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(lo), float(hi)
