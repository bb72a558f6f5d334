"""Which score rows answer which of the paper's questions: group labels and model families.

Pure pandas (no R): the figures and tables use the same labels as the statistics.

Arun et al. (Radiology: AI 2021), Statistical analysis, ask four questions:

1. each saliency method vs the localization baseline (U-Net / RetinaNet) in utility (AUPRC);
2. each method (trained model) vs the AVG map (mean of train+val masks) in utility;
3. trained vs randomized model;
4. each method vs the baselines in repeatability / reproducibility (SSIM): the low baseline
   SSIM = 0.5 and the high baseline SSIM between two localizer replicates.

Score rows (``results/{ds}/scores/{criterion}.csv``: dataset, criterion, method, model_a, model_b,
state, image_id, metric, value) are labelled:

* utility: ``<METHOD>`` for the primary InceptionV3 (``inceptionv3_1``) in state ``original``;
  ``<METHOD> (random)`` for the same model in the fully randomized state; ``AVG`` for
  ``model_a == avg``; ``UNET`` / ``RNET`` for the first localizer replicate;
* repeatability / reproducibility: ``<METHOD>`` for pairs whose ``model_a`` is the primary
  classifier, the localizer label for localizer-replicate pairs (method ``PRED``; for
  reproducibility taken from the repeatability table when the reproducibility table has none,
  since the paper's high baseline is the same replicate pair for both criteria);
* randomization: ``<METHOD>`` for the primary model's fully randomized state; with
  ``randomization.repeats`` cascades, one row per image: the mean over the repeats' fully
  randomized states (so is ``<METHOD> (random)`` of utility when several are scored).
"""

from __future__ import annotations

import pandas as pd

from ..architectures import REGISTRY
from ..errors import InputError
from ..io import SCORE_COLUMNS
from ..plan import PRIMARY, arch_of
from .lmm import Family

#: A localizer's name in tables and figures (from the architecture registry).
LOCALIZER_LABEL = {a.name: a.label for a in REGISTRY.values() if a.label}
AVG = "AVG"
RANDOM_SUFFIX = " (random)"
#: Similarity metrics on SSIM's scale, to which the low baseline (0.5) applies.
SSIM_METRICS = ("ssim", "ssim_dr2")


def random_label(method: str) -> str:
    return f"{method}{RANDOM_SUFFIX}"


def check_scores(df: pd.DataFrame, path="scores") -> pd.DataFrame:
    """Check the score columns; return the table with ``image_id`` as str."""
    missing = [c for c in SCORE_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing columns {missing}; expected {SCORE_COLUMNS}")
    df = df.copy()
    df["image_id"] = df["image_id"].astype(str)
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    return df


def label_groups(
    df: pd.DataFrame,
    criterion: str,
    methods,
    localizer: str,
    full_states,
    primary=PRIMARY,
    baseline_rows=None,
):
    """Rows of one criterion that enter the analysis, with a ``group`` column.

    Parameters
    ----------
    df
        Score rows of ``criterion`` (columns :data:`SCORE_COLUMNS`).
    methods
        Saliency method ids in display order.
    localizer
        ``unet`` or ``retinanet``.
    full_states
        The fully randomized state of each cascade repeat (``plan.fully_randomized_states``; a
        single state name is accepted), or empty / None without a cascade.
    baseline_rows
        For reproducibility: the repeatability table, whose localizer-replicate rows are the high
        baseline when ``df`` has none.
    """
    loc = LOCALIZER_LABEL[localizer]
    arch = df["model_a"].astype(str).map(arch_of)
    full = fully_randomized(df, full_states, methods, primary)
    out = []
    if criterion == "utility":
        trained = df[(df["model_a"] == primary) & (df["state"] == "original") & df["method"].isin(methods)]
        out.append(trained.assign(group=trained["method"]))
        out.append(full.assign(group=full["method"].map(random_label)))
        avg = df[df["model_a"].astype(str).str.lower() == "avg"]
        out.append(avg.assign(group=AVG))
        lrows = df[df["model_a"] == f"{localizer}_1"]
        out.append(lrows.assign(group=loc))
    elif criterion == "randomization":
        out.append(full.assign(group=full["method"]))
    elif criterion in ("repeatability", "reproducibility"):
        rows = df[(df["model_a"] == primary) & (df["state"] == "original") & df["method"].isin(methods)]
        out.append(rows.assign(group=rows["method"]))
        lrows = df[arch == localizer]
        if lrows.empty and baseline_rows is not None and len(baseline_rows):
            lrows = baseline_rows[baseline_rows["model_a"].astype(str).map(arch_of) == localizer]
        out.append(lrows.assign(group=loc))
    else:
        raise InputError(f"unknown criterion {criterion!r}")
    out = [o for o in out if len(o)]
    if not out:
        return df.iloc[:0].assign(group=pd.Series(dtype=str))
    return pd.concat(out, ignore_index=True)


def as_states(full_states) -> list[str]:
    """``full_states`` as a list (a single state name, a list of them, or None)."""
    if full_states is None:
        return []
    return [full_states] if isinstance(full_states, str) else list(full_states)


def fully_randomized(df: pd.DataFrame, full_states, methods, primary=PRIMARY) -> pd.DataFrame:
    """Rows of the primary model's fully randomized states, one per (method, image, metric): the
    mean over the repeats' states present (the first state's other columns kept)."""
    states = as_states(full_states)
    d = df[(df["model_a"] == primary) & df["state"].isin(states) & df["method"].isin(methods)]
    if d["state"].nunique() <= 1:
        return d
    keys = ["method", "image_id", "metric"]
    mean = d.groupby(keys, sort=False)["value"].mean()
    first = d.drop_duplicates(keys).set_index(keys)
    first["value"] = mean
    first["state"] = ";".join(s for s in states if s in set(d["state"]))
    return first.reset_index()[list(d.columns)]


def group_order(methods, localizer: str, criterion: str, random=True):
    """Display / model order of the groups of a criterion."""
    loc = LOCALIZER_LABEL[localizer]
    if criterion == "utility":
        return list(methods) + [AVG, loc] + ([random_label(m) for m in methods] if random else [])
    if criterion in ("repeatability", "reproducibility"):
        return list(methods) + [loc]
    return list(methods)


def build_families(
    scores: dict,
    thresholds: pd.DataFrame | None,
    methods,
    localizer: str,
    full_states,
    utility_metrics=("auprc",),
    similarity_metrics=("ssim",),
    low_baseline_ssim: float = 0.5,
):
    """The model fits that answer the paper's four questions for one dataset.

    Parameters
    ----------
    scores
        ``{criterion: score table}`` (any of utility, randomization, repeatability, reproducibility).
    thresholds
        ``randomization_thresholds.csv`` (method, metric, threshold, ...) or None.

    Returns
    -------
    list of :class:`~saliency_audit.stats.lmm.Family`
    """
    loc = LOCALIZER_LABEL[localizer]
    fams = []
    if "utility" in scores:
        lab = label_groups(scores["utility"], "utility", methods, localizer, full_states)
        for metric in utility_metrics:
            d = _data(lab, metric)
            if d.empty:
                continue
            q = {(m, AVG): "utility_vs_avg" for m in methods} | {(m, loc): "utility_vs_localizer" for m in methods}
            fams.append(
                Family("utility", metric, "methods_baselines", d, list(methods) + [AVG, loc], "tukey", questions=q)
            )
            rnd = [(m, random_label(m)) for m in methods]
            if d["group"].isin([r for _, r in rnd]).any():
                levels = [g for pair in rnd for g in pair]
                fams.append(
                    Family(
                        "utility",
                        metric,
                        "trained_vs_random",
                        d,
                        levels,
                        rnd,
                        questions=dict.fromkeys(rnd, "trained_vs_random"),
                    )
                )
    if "randomization" in scores and thresholds is not None:
        lab = label_groups(scores["randomization"], "randomization", methods, localizer, full_states)
        for metric in similarity_metrics:
            d = _data(lab, metric)
            thr = thresholds[thresholds["metric"] == metric].set_index("method")["threshold"]
            consts = {m: float(thr[m]) for m in methods if m in thr.index}
            if d.empty or not consts:
                continue
            fams.append(
                Family(
                    "randomization",
                    metric,
                    "vs_threshold",
                    d,
                    list(methods),
                    [],
                    consts,
                    constant_question="randomization_vs_threshold",
                )
            )
    for crit in ("repeatability", "reproducibility"):
        if crit not in scores:
            continue
        base = scores.get("repeatability") if crit == "reproducibility" else None
        lab = label_groups(scores[crit], crit, methods, localizer, full_states, baseline_rows=base)
        for metric in similarity_metrics:
            d = _data(lab, metric)
            if d.empty:
                continue
            consts = {m: low_baseline_ssim for m in methods} if metric in SSIM_METRICS else {}
            q = {(m, loc): "vs_localizer" for m in methods}
            fams.append(
                Family(
                    crit,
                    metric,
                    "methods_baselines",
                    d,
                    list(methods) + [loc],
                    "tukey",
                    consts,
                    q,
                    constant_question="vs_low_baseline",
                )
            )
    return fams


def _data(labelled: pd.DataFrame, metric: str) -> pd.DataFrame:
    d = labelled[labelled["metric"] == metric]
    return d.rename(columns={"value": "score"})[["score", "group", "image_id"]].reset_index(drop=True)
