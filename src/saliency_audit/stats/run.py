"""The statistics and tables steps of one dataset: read the tidy score tables, fit, tabulate.

``settings(config, dataset)`` collects every config value that changes a statistic or a table (a
rule's params carry it). :func:`run_stats` needs R (see :mod:`.lmm`); :func:`make_tables` does not:
it reads the statistics' CSV when there is one and otherwise says "no statistics".
"""

from __future__ import annotations

import logging

import pandas as pd

from .. import plan
from ..errors import InputError
from . import groups
from . import table2 as t2

log = logging.getLogger(__name__)

CRITERIA = ("utility", "randomization", "repeatability", "reproducibility")


def settings(config: dict, dataset: str) -> dict:
    """Every setting of the statistics / tables / figures of ``dataset`` (JSON-able)."""
    st = config.get("stats", {})
    crit = config.get("criteria", {})
    rep = config.get("report", {})
    return {
        "enabled": bool(st.get("enabled", True)),
        "alpha": float(st.get("alpha", 0.05)),
        "seed": int(st.get("seed", 1)),
        "utility_metrics": list(st.get("utility_metrics", ["auprc"])),
        "similarity_metrics": list(st.get("similarity_metrics", ["ssim"])),
        "low_baseline_ssim": float(crit.get("low_baseline_ssim", 0.5)),
        "methods": plan.methods(config, dataset),
        "localizer": plan.localizer(config["datasets"][dataset]),
        "full_state": plan.fully_randomized_state(config, dataset),
        "states": [s for s in plan.randomization_states(config, dataset) if s.startswith("cascade-")],
        "has_avg": plan.has_avg(config, dataset),
        "randomized_methods": [  # a BYOM index may randomize some methods only
            m
            for m in plan.methods(config, dataset)
            if all(plan.has_maps(config, dataset, plan.PRIMARY, st, m) for st in plan.randomization_states(config, dataset))
        ],
        "primary": plan.PRIMARY,
        "images": config.get("saliency", {}).get("images", "with_finding"),
        "normalization": config.get("saliency", {}).get("normalization", "released"),
        "example_images": int(rep.get("example_images", 3)),
        "pr_method": rep.get("pr_method", "XRAI"),
        "dpi": int(rep.get("dpi", 150)),
    }


#: The settings that change the statistics (the ``stats`` rule's params carry only these).
STATS_KEYS = (
    "alpha", "seed", "utility_metrics", "similarity_metrics", "low_baseline_ssim", "methods", "localizer",
    "full_state", "primary",
)  # fmt: skip


def stats_settings(config: dict, dataset: str) -> dict:
    """The subset of :func:`settings` that changes a model fit or a contrast."""
    s = settings(config, dataset)
    return {k: s[k] for k in STATS_KEYS}


#: Settings that change figures only (a plotting option must not rerun the tables).
PLOT_KEYS = ("example_images", "pr_method", "dpi")


def table_settings(config: dict, dataset: str) -> dict:
    """The subset of :func:`settings` that changes a table (all but the plotting options)."""
    return {k: v for k, v in settings(config, dataset).items() if k not in PLOT_KEYS}


def read_scores(paths: dict) -> dict:
    """``{criterion: table}`` from ``{criterion: path}`` (criteria absent from ``paths`` are skipped)."""
    out = {}
    for c in CRITERIA:
        if c in paths:
            out[c] = groups.check_scores(
                pd.read_csv(paths[c], dtype={"image_id": str, "model_b": str}, keep_default_na=False, na_values=[""]),
                paths[c],
            )
    return out


def read_thresholds(path) -> pd.DataFrame | None:
    if path is None:
        return None
    d = pd.read_csv(path)
    missing = [c for c in ("method", "metric", "threshold") if c not in d.columns]
    if missing:
        raise InputError(f"{path}: missing columns {missing}; expected method, metric, threshold")
    return d


def run_stats(scores: dict, thresholds, s: dict, dataset: str):
    """Fit every family (:func:`groups.build_families`); return (models, contrasts) tables."""
    from . import lmm

    fams = groups.build_families(
        scores,
        thresholds,
        s["methods"],
        s["localizer"],
        s["full_state"],
        s["utility_metrics"],
        s["similarity_metrics"],
        s["low_baseline_ssim"],
    )
    if not fams:
        raise InputError(f"{dataset}: no score rows to analyse (criteria present: {sorted(scores)})")
    return lmm.fit_families(fams, alpha=s["alpha"], seed=s["seed"], dataset=dataset)


def make_tables(scores: dict, thresholds, contrasts: pd.DataFrame | None, s: dict, dataset: str) -> dict:
    """Table 2, Table S1 and Table S2 of one dataset as ``{name: (DataFrame, markdown)}``."""
    methods = s["methods"]
    loc = groups.LOCALIZER_LABEL[s["localizer"]]
    s1 = None
    if "randomization" in scores and thresholds is not None and s["full_state"]:
        s1 = t2.randomization_table(scores["randomization"], thresholds, methods, s["full_state"], "ssim", s["primary"])
    tab2 = t2.table2(methods, contrasts, s1, s["alpha"])
    notes = [
        f"PASS: the method is better than the baseline (higher AUPRC / SSIM) and the single-step adjusted p < alpha = {s['alpha']} "
        "(LMM score ~ group + (1 | image_id), multcomp::glht contrasts); FAIL otherwise.",
        f"Utility: AUPRC of inceptionv3_1's maps vs AVG (mean train+val mask) and vs the localizer {loc}.",
        "Randomization: PASS when the mean SSIM of the fully randomized model's maps "
        f"({s['full_state']}) is below the method's degradation threshold (Table S1).",
        f"Repeatability (inceptionv3_1 vs inceptionv3_2) and reproducibility (inceptionv3_1 vs densenet121_1): SSIM vs the low "
        f"baseline {s['low_baseline_ssim']:g} and vs the SSIM of two {loc} replicates.",
        "n/a: the comparison is not available for this configuration.",
    ]
    if contrasts is None:
        notes.insert(0, "no statistics: stats.enabled is false, so only Randomization (no test) is filled in.")
    out = {"table2": (tab2, t2.to_markdown(tab2, f"Table 2 ({dataset})", notes))}
    if s1 is not None:
        d = s1.assign(**{"SSIM fully randomized": t2.fmt_mean_sd(s1)})
        show = d[["method", "SSIM fully randomized", "threshold", "verdict"]]
        out["tableS1"] = (
            s1,
            t2.to_markdown(
                show, f"Table S1 ({dataset}): SSIM of maps of the fully randomized model vs the degradation threshold"
            ),
        )
    else:
        empty = pd.DataFrame(columns=["method", "mean", "sd", "n", "threshold", "state", "metric", "verdict"])
        out["tableS1"] = (empty, f"# Table S1 ({dataset})\n\nno randomization scores for this configuration\n")
    if "utility" in scores:
        lab = groups.label_groups(scores["utility"], "utility", methods, s["localizer"], s["full_state"], s["primary"])
        rows = []
        for metric in ("auroc", "auprc", "ap"):
            d = t2.mean_sd_table(lab, metric, list(methods) + [groups.AVG, loc])
            if len(d):
                rows.append(d)
        s2 = (
            pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["group", "mean", "sd", "n", "metric"])
        )
        wide = (
            s2.assign(value=t2.fmt_mean_sd(s2) if len(s2) else [])
            .pivot(index="group", columns="metric", values="value")
            .reindex([g for g in list(methods) + [groups.AVG, loc] if g in set(s2["group"])])
            .reindex(columns=[m for m in ("auroc", "auprc", "ap") if m in set(s2["metric"])])
            if len(s2)
            else s2
        )
        title = f"Table S2 ({dataset}): mean ± SD utility per test image (AUROC as in the paper; AUPRC, AP)"
        out["tableS2"] = (s2, t2.to_markdown(wide.rename_axis("map") if len(s2) else wide, title))
    else:
        out["tableS2"] = (
            pd.DataFrame(columns=["group", "mean", "sd", "n", "metric"]),
            f"# Table S2 ({dataset})\n\nno utility scores\n",
        )
    return out
