"""Table 2 (PASS/FAIL per method and criterion) and the supplementary tables, from tidy tables.

Pure pandas: reading the statistics needs no R. Arun et al. (Radiology: AI 2021), Table 2: "A 'PASS'
is denoted if the saliency method performs better than the respective baseline, while a 'FAIL' is
denoted if the saliency method performs worse than the respective baseline". Here, as the protocol
states it: PASS when the method is better than the baseline *and* the difference is significant
(single-step adjusted p < alpha of the LMM contrast ``method - baseline``; higher AUPRC / SSIM is
better); Randomization PASS when the mean SSIM of the fully randomized model's maps is below the
method's degradation threshold (mean SSIM of random pairs of maps of different images; Table S1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PASS, FAIL, NA, NO_STATS = "PASS", "FAIL", "n/a", "no statistics"

#: Table 2 columns -> (criterion, metric, question) of the contrast ``method - baseline``.
TABLE2_COLUMNS = {
    "Utility vs AVG": ("utility", "auprc", "utility_vs_avg"),
    "Utility vs localizer": ("utility", "auprc", "utility_vs_localizer"),
    "Randomization": None,
    "Repeatability vs 0.5": ("repeatability", "ssim", "vs_low_baseline"),
    "Repeatability vs localizer": ("repeatability", "ssim", "vs_localizer"),
    "Reproducibility vs 0.5": ("reproducibility", "ssim", "vs_low_baseline"),
    "Reproducibility vs localizer": ("reproducibility", "ssim", "vs_localizer"),
}


def verdict(estimate, p_adj, alpha: float) -> str:
    """PASS when ``estimate > 0`` (method better) and ``p_adj < alpha``; FAIL otherwise; n/a when missing."""
    if estimate is None or p_adj is None or not np.isfinite(estimate) or not np.isfinite(p_adj):
        return NA
    return PASS if (estimate > 0 and p_adj < alpha) else FAIL


def randomization_verdict(mean_ssim, threshold) -> str:
    """PASS when the fully randomized mean SSIM is below the degradation threshold (Arun et al., Results)."""
    if mean_ssim is None or threshold is None or not np.isfinite(mean_ssim) or not np.isfinite(threshold):
        return NA
    return PASS if mean_ssim < threshold else FAIL


def table2(
    methods, contrasts: pd.DataFrame | None, randomization: pd.DataFrame | None, alpha: float = 0.05
) -> pd.DataFrame:
    """Table 2 of one dataset.

    Parameters
    ----------
    methods
        Saliency method ids (rows, in order).
    contrasts
        The tidy contrast table (``results/{ds}/stats/contrasts.csv``: criterion, metric, question,
        group_a, estimate, p_adj, ...), or None when the statistics were not run: every column but
        Randomization then reads ``no statistics``.
    randomization
        Table S1 (:func:`randomization_table`: method, mean, threshold), or None.
    alpha
        Significance level (``stats.alpha``).

    Returns
    -------
    pandas.DataFrame
        Index ``method``; columns :data:`TABLE2_COLUMNS`; cells PASS / FAIL / n/a / no statistics.
    """
    rows = {}
    for m in methods:
        row = {}
        for col, key in TABLE2_COLUMNS.items():
            if key is None:
                row[col] = _randomization_cell(randomization, m)
            elif contrasts is None:
                row[col] = NO_STATS
            else:
                crit, metric, question = key
                hit = contrasts[
                    (contrasts["criterion"] == crit)
                    & (contrasts["metric"] == metric)
                    & (contrasts["question"] == question)
                    & (contrasts["group_a"].astype(str) == m)
                ]
                if len(hit) > 1:
                    raise ValueError(f"{len(hit)} contrasts for {m} / {col}; expected one")
                row[col] = (
                    verdict(float(hit["estimate"].iloc[0]), float(hit["p_adj"].iloc[0]), alpha) if len(hit) else NA
                )
        rows[m] = row
    out = pd.DataFrame.from_dict(rows, orient="index", columns=list(TABLE2_COLUMNS))
    out.index.name = "method"
    return out


def _randomization_cell(randomization, method):
    if randomization is None:
        return NA
    hit = randomization[randomization["method"] == method]
    if hit.empty:
        return NA
    return randomization_verdict(float(hit["mean"].iloc[0]), float(hit["threshold"].iloc[0]))


def randomization_table(
    scores: pd.DataFrame,
    thresholds: pd.DataFrame,
    methods,
    full_state: str,
    metric: str = "ssim",
    primary="inceptionv3_1",
):
    """Table S1: mean +- SD similarity of original vs fully randomized maps, and the threshold.

    Parameters
    ----------
    scores
        ``randomization.csv`` rows.
    thresholds
        ``randomization_thresholds.csv`` (method, metric, threshold, n_pairs, seed).
    """
    d = scores[(scores["state"] == full_state) & (scores["metric"] == metric) & (scores["model_a"] == primary)]
    agg = d.groupby("method")["value"].agg(mean="mean", sd="std", n="count")
    thr = thresholds[thresholds["metric"] == metric].set_index("method")
    cols = ["threshold"] + [c for c in ("n_pairs",) if c in thr.columns]
    out = pd.DataFrame(index=pd.Index(list(methods), name="method")).join(agg).join(thr[cols])
    out["state"] = full_state
    out["metric"] = metric
    out["verdict"] = [randomization_verdict(a, b) for a, b in zip(out["mean"], out["threshold"])]
    return out.reset_index()


def mean_sd_table(labelled: pd.DataFrame, metric: str, order) -> pd.DataFrame:
    """Mean +- SD of a metric per group (Table S2: AUROC of each method, AVG and the localizer)."""
    d = labelled[labelled["metric"] == metric]
    agg = d.groupby("group")["value"].agg(mean="mean", sd="std", n="count")
    order = [g for g in order if g in agg.index]
    out = agg.loc[order].reset_index()
    out["metric"] = metric
    return out


def fmt_mean_sd(df: pd.DataFrame, digits=3) -> pd.Series:
    return df["mean"].map(lambda v: f"{v:.{digits}f}") + " ± " + df["sd"].fillna(0).map(lambda v: f"{v:.{digits}f}")


def to_markdown(df: pd.DataFrame, title: str, notes=()) -> str:
    """A Markdown table with a title and notes (pipe table; needs no extra package)."""
    d = df.reset_index() if df.index.name else df
    cols = [str(c) for c in d.columns]
    lines = [f"# {title}", "", "| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in d.iterrows():
        lines.append("| " + " | ".join(_cell(v) for v in r.values) + " |")
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _cell(v):
    if isinstance(v, float):
        return "" if np.isnan(v) else f"{v:.3f}"
    return str(v)
