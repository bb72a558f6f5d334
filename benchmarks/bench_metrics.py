"""Benchmark: vectorized utility metrics vs a per-image scikit-learn loop on 320x320 maps.

Run: ``.venv/bin/python benchmarks/bench_metrics.py [n_images]``. Prints seconds per image of both
and the speed-up ratio (target >= 10x), and checks the values agree to 1e-9.
"""

import sys
import time
import warnings

import numpy as np
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score

from saliency_audit.metrics.utility import METRICS, utility_scores


def sklearn_loop(maps, masks):
    """The released code's AUPRC (auc(recall, precision)) plus AP and AUROC, one image at a time."""
    out = {m: [] for m in METRICS}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s, y in zip(maps, masks):
            s, y = s.ravel(), y.ravel()
            p, r, _ = precision_recall_curve(y, s)
            out["auprc"].append(auc(r, p))
            out["ap"].append(average_precision_score(y, s))
            out["auroc"].append(roc_auc_score(y, s))
    return {k: np.array(v) for k, v in out.items()}


def make_maps(n, size=320, seed=0):
    """Saliency-like maps (smooth blobs, top 1% clipped to 1 as the released normalization does, some
    all-zero maps) and elliptical masks."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    maps = np.empty((n, size, size), np.float32)
    masks = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        cy, cx, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.05, 0.2)
        masks[i] = ((yy - cy) ** 2 + (xx - cx) ** 2) < r**2
        m = np.exp(-((yy - cy - 0.05) ** 2 + (xx - cx) ** 2) / 0.02) + 0.3 * rng.random((size, size))
        maps[i] = np.clip(m / np.percentile(m, 99), 0, 1)
        if i % 10 == 9:
            maps[i] = 0.0
    return maps, masks


def best_of(repeats, f, *args):
    """Result and the best wall time of ``repeats`` runs (as timeit: the least disturbed run)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = f(*args)
        times.append(time.perf_counter() - t0)
    return out, min(times)


def main(n=20, repeats=3):
    maps, masks = make_maps(n)
    ref, t_sk = best_of(repeats, sklearn_loop, maps, masks)
    ours, t_ours = best_of(repeats, utility_scores, maps, masks)
    _, t_avg = best_of(repeats, utility_scores, maps[0], masks)  # AVG: one shared map
    for k in METRICS:
        np.testing.assert_allclose(ours[k], ref[k], rtol=0, atol=1e-9, err_msg=k)
    print(f"{n} maps of 320x320, metrics {METRICS}, best of {repeats} runs")
    print(f"sklearn per-image loop: {t_sk / n * 1e3:8.2f} ms/image")
    print(f"utility_scores        : {t_ours / n * 1e3:8.2f} ms/image")
    print(f"utility_scores (AVG)  : {t_avg / n * 1e3:8.2f} ms/image (one shared map)")
    print(
        f"speed-up ratio: {t_sk / t_ours:.1f}x (target >= 10x); max |diff| = "
        f"{max(np.nanmax(np.abs(ours[k] - ref[k])) for k in METRICS):.2e}"
    )
    return t_sk / t_ours


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
