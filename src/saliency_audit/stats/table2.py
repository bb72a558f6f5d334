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

#: Table 2 columns -> (criterion, kind of metric, question) of the contrast ``method - baseline``;
#: the kind (``utility`` / ``similarity``) is filled with the utility metric (AUPRC) or the
#: similarity metric (SSIM) the table is made for.
TABLE2_COLUMNS = {
    "Utility vs AVG": ("utility", "utility", "utility_vs_avg"),
    "Utility vs localizer": ("utility", "utility", "utility_vs_localizer"),
    "Randomization": None,
    "Repeatability vs 0.5": ("repeatability", "similarity", "vs_low_baseline"),
    "Repeatability vs localizer": ("repeatability", "similarity", "vs_localizer"),
    "Reproducibility vs 0.5": ("reproducibility", "similarity", "vs_low_baseline"),
    "Reproducibility vs localizer": ("reproducibility", "similarity", "vs_localizer"),
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
    methods,
    contrasts: pd.DataFrame | None,
    randomization: pd.DataFrame | None,
    alpha: float = 0.05,
    utility_metric: str = "auprc",
    similarity_metric: str = "ssim",
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
    utility_metric, similarity_metric
        The metrics of the utility and the similarity columns (the paper: AUPRC, SSIM; the
        sensitivity table: AP, ``ssim_dr2``). ``randomization`` must be for ``similarity_metric``.

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
                crit, kind, question = key
                metric = utility_metric if kind == "utility" else similarity_metric
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
    full_states,
    metric: str = "ssim",
    primary="inceptionv3_1",
):
    """Table S1: similarity of original vs fully randomized maps, the threshold, their CIs, verdict.

    Parameters
    ----------
    scores
        ``randomization.csv`` rows.
    thresholds
        ``randomization_thresholds.csv`` (method, metric, threshold, and when present ci_low,
        ci_high, n_images, partners, n_pairs, randomized_ci_low, randomized_ci_high).
    full_states
        The fully randomized state of each cascade repeat: per image, the mean over them.

    Returns
    -------
    DataFrame: method, mean, sd, n (over images of the per-image mean over repeats), the threshold
    columns, ``constant`` (fully randomized maps that are constant, any repeat), states, metric, verdict.
    """
    from .groups import as_states, fully_randomized

    states = as_states(full_states)
    full = fully_randomized(scores, states, methods, primary)
    agg = full[full["metric"] == metric].groupby("method")["value"].agg(mean="mean", sd="std", n="count")
    const = scores[(scores["metric"] == "constant") & scores["state"].isin(states) & (scores["model_a"] == primary)]
    agg = agg.join(const.groupby("method")["value"].agg(constant="sum", n_maps="count"))
    thr = thresholds[thresholds["metric"] == metric].set_index("method")
    cols = [
        "threshold",
        "ci_low",
        "ci_high",
        "n_images",
        "partners",
        "n_pairs",
        "randomized_ci_low",
        "randomized_ci_high",
    ]
    out = pd.DataFrame(index=pd.Index(list(methods), name="method")).join(agg).join(thr.reindex(columns=cols))
    out["states"] = ";".join(states)
    out["metric"] = metric
    out["verdict"] = [randomization_verdict(a, b) for a, b in zip(out["mean"], out["threshold"])]
    return out.reset_index()


def fmt_ci(mean, lo, hi, digits=3) -> str:
    """``0.412 [0.398, 0.427]`` (empty when the value is missing)."""
    if mean is None or not np.isfinite(mean):
        return ""
    if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


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
