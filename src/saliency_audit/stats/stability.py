"""Verdict stability of Table 2 and its sensitivity to the metric (pure numpy / pandas, no R).

**Stability** of a cell: the fraction of ``stats.resamples`` seeded bootstrap resamples of the test
images (Efron & Tibshirani 1993) whose verdict equals the cell's verdict; a cell under
``stats.fragile`` (0.8) is marked fragile. A resample's verdict is computed on the per-image scores,
without refitting the mixed model:

* a contrast of a method with a baseline group (AVG, the localizer): the paired differences
  ``d_i = method_i - baseline_i`` over the images that have both; PASS when ``mean(d) > 0`` and the
  two-sided paired t-test p-value, Bonferroni-adjusted over the ``m`` contrasts of the same multcomp
  call (the LMM family's contrasts, read from ``contrasts.csv``), is below ``alpha``. With a random
  intercept per image and one score per image and group, the LMM contrast of two groups is the
  paired comparison; Bonferroni stands in for multcomp's single-step adjustment (which needs the
  joint distribution of all contrasts) and is slightly more conservative;
* a method against a constant (the low baseline 0.5): the same with ``d_i = method_i - 0.5``;
* randomization: the resample's fully randomized mean (per image, the mean over the repeats' fully
  randomized states) against the resample's threshold, the mean pair similarity of the pairs whose
  anchor image is in the resample (each anchor counted as often as it is drawn); PASS when below.

**Sensitivity**: Table 2 again with average precision in place of trapezoidal AUPRC (utility) and
SSIM with ``data_range`` 2 (``ssim_dr2``, the released code's) in place of 1 (randomization,
repeatability, reproducibility), from the same maps; the cells whose verdict flips are listed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from .. import plan, resample
from . import groups
from . import table2 as t2

STABILITY_COLUMNS = ["method", "column", "verdict", "stability", "fragile", "n_images", "resamples", "test"]
SENSITIVITY_COLUMNS = ["method", "column", "metric", "verdict", "alt_metric", "alt_verdict", "flipped"]
#: The contrast questions that test a group mean against a constant (a separate multcomp call).
CONSTANT_QUESTIONS = ("vs_low_baseline", "randomization_vs_threshold", "vs_constant")
#: Alternative metric of each kind of Table 2 column (sensitivity table).
ALTERNATIVE = {"auprc": "ap", "ssim": "ssim_dr2"}


def paired_pass(diff, idx: np.ndarray, alpha: float, m: int = 1) -> np.ndarray:
    """PASS (True) per resample: mean of the resampled differences > 0 and Bonferroni p < alpha.

    Parameters
    ----------
    diff : array (n,)
        Per-image differences (method - baseline, or method - constant).
    idx : int array (B, n)
        Bootstrap resamples of ``range(n)`` (:func:`saliency_audit.resample.indices`).
    alpha : float
    m : int
        Contrasts of the adjustment family (p-values are multiplied by ``m``, capped at 1).
    """
    d = np.asarray(diff, dtype=np.float64)[idx]
    n = d.shape[1]
    if n < 2:
        return np.zeros(len(idx), dtype=bool)
    mean = d.mean(axis=1)
    se = d.std(axis=1, ddof=1) / np.sqrt(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, mean / np.where(se > 0, se, 1.0), np.where(mean != 0, np.inf, 0.0))
    p = np.minimum(1.0, 2.0 * sps.t.sf(np.abs(t), n - 1) * max(1, int(m)))
    return (mean > 0) & (p < alpha)


def threshold_pass(randomized, anchor_means, idx: np.ndarray) -> np.ndarray:
    """PASS (True) per resample: mean fully randomized similarity < the resample's threshold.

    ``randomized`` and ``anchor_means`` are aligned per image (the image's fully randomized value
    and the mean similarity of its threshold pairs, all anchors having the same number of pairs).
    """
    r = np.asarray(randomized, dtype=np.float64)[idx].mean(axis=1)
    a = np.asarray(anchor_means, dtype=np.float64)[idx].mean(axis=1)
    return r < a


def _per_image(lab: pd.DataFrame, group: str, metric: str) -> pd.Series:
    d = lab[(lab["group"] == group) & (lab["metric"] == metric)]
    return d.groupby("image_id", sort=False)["value"].mean()


def _family_size(contrasts: pd.DataFrame, crit: str, metric: str, question: str, method: str) -> int:
    """Contrasts tested in the same multcomp call as the cell's contrast (1 when unknown)."""
    c = contrasts[(contrasts["criterion"] == crit) & (contrasts["metric"] == metric)]
    hit = c[(c["question"] == question) & (c["group_a"].astype(str) == method)]
    if hit.empty:
        return 1
    fam = c[c["family"] == hit["family"].iloc[0]] if "family" in c.columns else c
    same = fam["question"].isin(CONSTANT_QUESTIONS) == (question in CONSTANT_QUESTIONS)
    return max(1, int(same.sum()))


def stability_table(
    tab2: pd.DataFrame,
    scores: dict,
    anchors: pd.DataFrame | None,
    contrasts: pd.DataFrame | None,
    s: dict,
    dataset: str,
    utility_metric: str = "auprc",
    similarity_metric: str = "ssim",
) -> pd.DataFrame:
    """Verdict stability of every PASS/FAIL cell of ``tab2`` (module docstring).

    Parameters
    ----------
    tab2
        :func:`table2.table2` (index method).
    scores
        ``{criterion: score table}``.
    anchors
        ``randomization_threshold_anchors.csv`` (method, metric, image_id, n_pairs, mean), or None.
    contrasts
        ``contrasts.csv`` (for the adjustment family sizes), or None.
    s
        :func:`run.settings` (methods, localizer, full_states, primary, alpha, low_baseline_ssim,
        resamples, fragile, seed).

    Returns
    -------
    DataFrame with columns :data:`STABILITY_COLUMNS` (one row per cell with a PASS/FAIL verdict).
    """
    methods, loc = s["methods"], groups.LOCALIZER_LABEL[s["localizer"]]
    labelled = {
        c: groups.label_groups(
            scores[c],
            c,
            methods,
            s["localizer"],
            s["full_states"],
            s["primary"],
            scores.get("repeatability") if c == "reproducibility" else None,
        )
        for c in scores
        if c in ("utility", "repeatability", "reproducibility")
    }
    full = (
        groups.fully_randomized(scores["randomization"], s["full_states"], methods, s["primary"])
        if "randomization" in scores
        else None
    )
    rows = []
    for m in tab2.index:
        for col in tab2.columns:
            verdict = tab2.loc[m, col]
            if verdict not in (t2.PASS, t2.FAIL):
                continue
            seed = plan.derive_seed(s["seed"], dataset, "stability", col, m, utility_metric, similarity_metric)
            key = t2.TABLE2_COLUMNS[col]
            if key is None:
                if full is None or anchors is None:
                    continue
                r = full[(full["method"] == m) & (full["metric"] == similarity_metric)].set_index("image_id")["value"]
                a = anchors[(anchors["method"] == m) & (anchors["metric"] == similarity_metric)]
                a = a.set_index(a["image_id"].astype(str))["mean"]
                both = r.index.intersection(a.index)
                idx = resample.indices(len(both), s["resamples"], seed)
                passed = threshold_pass(r.loc[both].to_numpy(), a.loc[both].to_numpy(), idx)
                test = "fully randomized mean < threshold (anchors resampled)"
                n = len(both)
            else:
                crit, kind, question = key
                metric = utility_metric if kind == "utility" else similarity_metric
                if crit not in labelled:
                    continue
                x = _per_image(labelled[crit], m, metric)
                if question == "vs_low_baseline":
                    diff = (x - s["low_baseline_ssim"]).to_numpy()
                    test = f"one-sample t vs {s['low_baseline_ssim']:g}"
                else:
                    base = _per_image(labelled[crit], groups.AVG if question == "utility_vs_avg" else loc, metric)
                    both = x.index.intersection(base.index)
                    diff = (x.loc[both] - base.loc[both]).to_numpy()
                    test = "paired t"
                k = _family_size(contrasts, crit, metric, question, m) if contrasts is not None else 1
                test += f", Bonferroni x{k}"
                n = len(diff)
                idx = resample.indices(n, s["resamples"], seed)
                passed = paired_pass(diff, idx, s["alpha"], k)
            same = passed if verdict == t2.PASS else ~passed
            stab = float(same.mean()) if n else float("nan")
            rows.append([m, col, verdict, stab, bool(stab < s["fragile"]), n, s["resamples"], test])
    return pd.DataFrame(rows, columns=STABILITY_COLUMNS)


def with_stability(tab2: pd.DataFrame, stab: pd.DataFrame) -> pd.DataFrame:
    """Table 2 cells as ``PASS (0.93)`` / ``FAIL (0.61, fragile)`` (the markdown table)."""
    out = tab2.copy().astype(object)
    for r in stab.itertuples(index=False):
        if np.isfinite(r.stability):
            out.loc[r.method, r.column] = f"{r.verdict} ({r.stability:.2f}{', fragile' if r.fragile else ''})"
    return out


def sensitivity_table(base: pd.DataFrame, alt: pd.DataFrame, utility=("auprc", "ap"), similarity=("ssim", "ssim_dr2")):
    """Cells of Table 2 (``base``) and of Table 2 under the alternative metrics (``alt``), flips marked."""
    rows = []
    for m in base.index:
        for col in base.columns:
            key = t2.TABLE2_COLUMNS[col]
            kind = "similarity" if key is None else key[1]
            metric, alt_metric = utility if kind == "utility" else similarity
            v, w = base.loc[m, col], alt.loc[m, col] if m in alt.index else t2.NA
            flipped = v in (t2.PASS, t2.FAIL) and w in (t2.PASS, t2.FAIL) and v != w
            rows.append([m, col, metric, v, alt_metric, w, flipped])
    return pd.DataFrame(rows, columns=SENSITIVITY_COLUMNS)
