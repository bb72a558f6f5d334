"""The statistics and tables steps of one dataset: read the tidy score tables, fit, tabulate.

``settings(config, dataset)`` collects every config value that changes a statistic or a table (a
rule's params carry it). :func:`run_stats` needs R (see :mod:`.lmm`); :func:`make_tables` does not:
it reads the statistics' CSV when there is one and otherwise says "no statistics".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from .. import plan
from ..errors import InputError
from ..io import CRITERIA
from . import groups, stability
from . import table2 as t2

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StatsSettings:
    """Every setting of the statistics, tables and figures of one dataset, read once from the
    validated config (schema defaults filled by Snakemake's ``validate()``; outside the workflow
    :func:`saliency_audit.config.with_defaults`) and the plan of the dataset. The rules' params
    carry :meth:`as_dict` (or a subset of it: :func:`stats_settings`, :func:`table_settings`),
    which the package functions of this stage read."""

    enabled: bool  # stats.enabled
    alpha: float  # stats.alpha
    seed: int  # stats.seed
    utility_metrics: tuple[str, ...]  # stats.utility_metrics
    similarity_metrics: tuple[str, ...]  # stats.similarity_metrics
    low_baseline_ssim: float  # criteria.low_baseline_ssim
    methods: tuple[str, ...]  # the dataset's methods (plan.methods)
    localizer: str  # the dataset's localizer architecture
    full_states: tuple[str, ...]  # the fully randomized state of each cascade repeat
    cascades: tuple[tuple[str, ...], ...]  # each cascade repeat's states, top first
    states: tuple[str, ...]  # cascade repeat 1 (Fig 3b)
    sensitivity: bool  # stats.sensitivity
    resamples: int  # stats.resamples
    fragile: float  # stats.fragile
    has_avg: bool  # the AVG baseline exists
    randomized_methods: tuple[str, ...]  # methods with maps in every randomization state (BYOM: maybe not all)
    primary: str  # the audited classifier (plan.PRIMARY)
    images: str  # saliency.images
    max_images: int | None  # saliency.max_images
    normalization: str  # saliency.normalization
    cam_normalization: str  # saliency.cam_normalization (the example figures normalize maps as scored)
    example_images: int  # report.example_images
    pr_method: str  # report.pr_method
    dpi: int  # report.dpi

    @classmethod
    def from_config(cls, config: dict, dataset: str) -> "StatsSettings":
        """The settings of ``dataset`` in a validated config; a missing key raises :class:`InputError`."""
        try:
            st, rep, sal = config["stats"], config["report"], config["saliency"]
            low = config["criteria"]["low_baseline_ssim"]
        except KeyError as exc:
            raise InputError(
                f"config key {exc.args[0]!r} missing; expected the validated config (Snakemake's validate() fills "
                "the schema's defaults; outside the workflow use saliency_audit.config.with_defaults)"
            ) from exc
        methods = plan.methods(config, dataset)
        cascades = plan.cascade_states(config, dataset)
        rstates = plan.randomization_states(config, dataset)
        return cls(
            enabled=bool(st["enabled"]),
            alpha=float(st["alpha"]),
            seed=int(st["seed"]),
            utility_metrics=tuple(st["utility_metrics"]),
            similarity_metrics=tuple(st["similarity_metrics"]),
            low_baseline_ssim=float(low),
            methods=tuple(methods),
            localizer=plan.localizer(config["datasets"][dataset]),
            full_states=tuple(plan.fully_randomized_states(config, dataset)),
            cascades=tuple(tuple(c) for c in cascades),
            states=tuple((cascades or [[]])[0]),
            sensitivity=bool(st["sensitivity"]),
            resamples=int(st["resamples"]),
            fragile=float(st["fragile"]),
            has_avg=plan.has_avg(config, dataset),
            randomized_methods=tuple(  # a BYOM index may randomize some methods only
                m for m in methods if all(plan.has_maps(config, dataset, plan.PRIMARY, s, m) for s in rstates)
            ),
            primary=plan.PRIMARY,
            images=sal["images"],
            max_images=sal["max_images"],
            normalization=sal["normalization"],
            cam_normalization=sal["cam_normalization"],
            example_images=int(rep["example_images"]),
            pr_method=rep["pr_method"],
            dpi=int(rep["dpi"]),
        )

    def as_dict(self) -> dict:
        """JSON-able (lists, not tuples), in field order: what a rule's params carry."""
        return {f.name: _lists(getattr(self, f.name)) for f in fields(self)}


def _lists(value):
    return [_lists(v) for v in value] if isinstance(value, tuple) else value


def settings(config: dict, dataset: str) -> dict:
    """Every setting of the statistics / tables / figures of ``dataset``: :class:`StatsSettings`
    as a rule's params carry it (:meth:`StatsSettings.as_dict`)."""
    return StatsSettings.from_config(config, dataset).as_dict()


#: The settings that change the statistics (the ``stats`` rule's params carry only these).
STATS_KEYS = (
    "alpha", "seed", "utility_metrics", "similarity_metrics", "low_baseline_ssim", "methods", "localizer",
    "full_states", "primary", "sensitivity",
)  # fmt: skip


def stats_settings(config: dict, dataset: str) -> dict:
    """The subset of :func:`settings` that changes a model fit or a contrast."""
    s = settings(config, dataset)
    return {k: s[k] for k in STATS_KEYS}


#: Settings that change figures only (a plotting option must not rerun the tables; the CAM
#: normalization reaches the tables through the scores).
PLOT_KEYS = ("example_images", "pr_method", "dpi", "cam_normalization")


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


def read_anchors(path) -> pd.DataFrame | None:
    """``randomization_threshold_anchors.csv`` (method, metric, image_id, n_pairs, mean), or None."""
    if path is None:
        return None
    d = pd.read_csv(path, dtype={"image_id": str})
    missing = [c for c in ("method", "metric", "image_id", "mean") if c not in d.columns]
    if missing:
        raise InputError(f"{path}: missing columns {missing}; expected method, metric, image_id, n_pairs, mean")
    return d


def modelled_metrics(s: dict) -> tuple[list[str], list[str]]:
    """Utility and similarity metrics the statistics fit: the configured ones, and with
    ``stats.sensitivity`` also AP and ``ssim_dr2`` (the sensitivity table's alternatives)."""
    util, sim = list(s["utility_metrics"]), list(s["similarity_metrics"])
    if s["sensitivity"]:
        util += [m for m in (stability.ALTERNATIVE["auprc"],) if m not in util]
        sim += [m for m in (stability.ALTERNATIVE["ssim"],) if m not in sim]
    return util, sim


def run_stats(scores: dict, thresholds, s: dict, dataset: str):
    """Fit every family (:func:`groups.build_families`); return (models, contrasts) tables."""
    from . import lmm

    util, sim = modelled_metrics(s)
    fams = groups.build_families(
        scores, thresholds, s["methods"], s["localizer"], s["full_states"], util, sim, s["low_baseline_ssim"]
    )
    if not fams:
        raise InputError(f"{dataset}: no score rows to analyse (criteria present: {sorted(scores)})")
    return lmm.fit_families(fams, alpha=s["alpha"], seed=s["seed"], dataset=dataset)


def _table_s1(scores, thresholds, s, metric):
    """Table S1 of one similarity metric (None without randomization scores or thresholds)."""
    if "randomization" not in scores or thresholds is None or not s["full_states"]:
        return None
    return t2.randomization_table(
        scores["randomization"], thresholds, s["methods"], s["full_states"], metric, s["primary"]
    )


def _s1_markdown(s1: pd.DataFrame, dataset: str) -> str:
    d = s1.assign(
        **{
            "SSIM fully randomized [95% CI]": list(
                map(t2.fmt_ci, s1["mean"], s1["randomized_ci_low"], s1["randomized_ci_high"])
            ),
            "threshold [95% CI]": list(map(t2.fmt_ci, s1["threshold"], s1["ci_low"], s1["ci_high"])),
            "constant maps": [f"{c:.0f}/{n:.0f}" if n > 0 else "" for c, n in zip(s1["constant"], s1["n_maps"])],
        }
    )
    show = d[["method", "SSIM fully randomized [95% CI]", "threshold [95% CI]", "constant maps", "verdict"]]
    pairs = ""
    known = s1[["n_pairs", "partners", "n_images"]].notna().all(axis=1)
    if known.any():
        r = s1[known].iloc[0]
        pairs = f" over {int(r['n_pairs'])} pairs ({int(r['partners'])} partners x {int(r['n_images'])} images)"
    notes = [
        f"Fully randomized: per image, the mean SSIM over the fully randomized state of each cascade repeat ({s1['states'].iloc[0]}); "
        "mean over images with a percentile bootstrap 95% CI over images.",
        f"Threshold: mean SSIM of the trained model's maps of different images{pairs}; bootstrap 95% CI over anchor images.",
        "Constant maps: fully randomized maps (all repeats) whose values are all equal (e.g. all zero).",
        "PASS when the fully randomized mean is below the threshold.",
    ]
    return t2.to_markdown(
        show, f"Table S1 ({dataset}): SSIM of maps of the fully randomized model vs the degradation threshold", notes
    )


def _table_s2(scores, s, dataset):
    """Table S2: utility per group (trained, AVG, localizer, fully randomized) with constant-map counts."""
    methods, loc = s["methods"], groups.LOCALIZER_LABEL[s["localizer"]]
    lab = groups.label_groups(scores["utility"], "utility", methods, s["localizer"], s["full_states"], s["primary"])
    order = list(methods) + [groups.AVG, loc] + [groups.random_label(m) for m in methods]
    rows = [t2.mean_sd_table(lab, metric, order) for metric in ("auroc", "auprc", "ap", "constant")]
    rows = [r for r in rows if len(r)]
    s2 = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["group", "mean", "sd", "n", "metric"])
    if s2.empty:
        return s2, f"# Table S2 ({dataset})\n\nno utility scores\n"
    const = s2[s2["metric"] == "constant"].set_index("group")
    vals = s2[s2["metric"] != "constant"]
    cells = vals.assign(value=t2.fmt_mean_sd(vals))
    for k, r in cells.iterrows():  # mostly constant maps: say so in the cell, not silently "useful"
        if r["group"] in const.index and const.loc[r["group"], "mean"] > 0.5:
            c = const.loc[r["group"]]
            cells.loc[k, "value"] += f" (constant maps: {int(round(c['mean'] * c['n']))}/{int(c['n'])})"
    wide = cells.pivot(index="group", columns="metric", values="value")
    wide = wide.reindex([g for g in order if g in wide.index]).reindex(
        columns=[m for m in ("auroc", "auprc", "ap") if m in wide.columns]
    )
    wide["constant maps"] = [
        f"{int(round(const.loc[g, 'mean'] * const.loc[g, 'n']))}/{int(const.loc[g, 'n'])}" if g in const.index else ""
        for g in wide.index
    ]
    title = (
        f"Table S2 ({dataset}): mean ± SD utility per test image (AUROC as in the paper; trapezoidal AUPRC as "
        "released; average precision), trained, baselines and fully randomized model"
    )
    notes = [
        "AUPRC is the released code's trapezoidal auc(recall, precision): a constant map scores (1 + prevalence) / 2, "
        "about 0.5, while its AP is the prevalence; a cell whose maps are mostly (> 50%) constant says so.",
        "constant maps: maps whose values are all equal (max == min, e.g. all zero), of the maps scored.",
    ]
    return s2, t2.to_markdown(wide.rename_axis("map"), title, notes)


def make_tables(scores: dict, thresholds, contrasts: pd.DataFrame | None, s: dict, dataset: str, anchors=None) -> dict:
    """Table 2 (with its verdict stability), Table S1, Table S2 and the sensitivity table of one
    dataset as ``{name: (DataFrame, markdown)}``."""
    methods = s["methods"]
    loc = groups.LOCALIZER_LABEL[s["localizer"]]
    s1 = _table_s1(scores, thresholds, s, "ssim")
    tab2 = t2.table2(methods, contrasts, s1, s["alpha"])
    stab = stability.stability_table(tab2, scores, anchors, contrasts, s, dataset)
    notes = [
        f"PASS: the method is better than the baseline (higher AUPRC / SSIM) and the single-step adjusted p < alpha = {s['alpha']} "
        "(LMM score ~ group + (1 | image_id), multcomp::glht contrasts); FAIL otherwise.",
        f"Utility: AUPRC of inceptionv3_1's maps vs AVG (mean train+val mask) and vs the localizer {loc}.",
        "Randomization: PASS when the mean SSIM of the fully randomized model's maps (per image, the mean over "
        f"the cascade repeats' fully randomized states {', '.join(s['full_states'])}) is below the method's degradation "
        "threshold (Table S1).",
        f"Repeatability (inceptionv3_1 vs inceptionv3_2) and reproducibility (inceptionv3_1 vs densenet121_1): SSIM vs the low "
        f"baseline {s['low_baseline_ssim']:g} and vs the SSIM of two {loc} replicates.",
        f"(0.93): verdict stability, the fraction of {s['resamples']} seeded bootstrap resamples of the test images giving the "
        f"same verdict (paired t-tests on the per-image scores, Bonferroni within the LMM's contrast family; randomization: "
        f"resampled mean vs resampled threshold); fragile: below {s['fragile']:g} (table2_stability.csv).",
        "n/a: the comparison is not available for this configuration.",
    ]
    if contrasts is None:
        notes.insert(0, "no statistics: stats.enabled is false, so only Randomization (no test) is filled in.")
    out = {
        "table2": (tab2, t2.to_markdown(stability.with_stability(tab2, stab), f"Table 2 ({dataset})", notes)),
        "table2_stability": (stab, t2.to_markdown(stab, f"Verdict stability of Table 2 ({dataset})")),
    }
    if s1 is not None:
        out["tableS1"] = (s1, _s1_markdown(s1, dataset))
    else:
        empty = pd.DataFrame(columns=["method", "mean", "sd", "n", "threshold", "states", "metric", "verdict"])
        out["tableS1"] = (empty, f"# Table S1 ({dataset})\n\nno randomization scores for this configuration\n")
    if "utility" in scores:
        out["tableS2"] = _table_s2(scores, s, dataset)
    else:
        out["tableS2"] = (
            pd.DataFrame(columns=["group", "mean", "sd", "n", "metric"]),
            f"# Table S2 ({dataset})\n\nno utility scores\n",
        )
    out["sensitivity"] = _sensitivity(scores, thresholds, contrasts, s, dataset, tab2)
    return out


def _sensitivity(scores, thresholds, contrasts, s, dataset, tab2):
    """Table 2 under AP (utility) and SSIM data_range 2 (similarity), the flipped cells listed."""
    title = f"Sensitivity of Table 2 ({dataset}): AUPRC vs average precision, SSIM data_range 1 vs 2"
    if not s["sensitivity"]:
        return pd.DataFrame(columns=stability.SENSITIVITY_COLUMNS), f"# {title}\n\nstats.sensitivity is false\n"
    alt_metric = stability.ALTERNATIVE["ssim"]
    alt_s1 = _table_s1(scores, thresholds, s, alt_metric)
    alt = t2.table2(s["methods"], contrasts, alt_s1, s["alpha"], stability.ALTERNATIVE["auprc"], alt_metric)
    sens = stability.sensitivity_table(tab2, alt)
    flips = sens[sens["flipped"]]
    decided = sens["verdict"].isin([t2.PASS, t2.FAIL])
    missing = sorted(set(sens.loc[decided & ~sens["alt_verdict"].isin([t2.PASS, t2.FAIL]), "alt_metric"]))
    notes = [
        "metric / verdict: Table 2 as reported (trapezoidal AUPRC; SSIM with data_range 1 on maps in [0, 1]); "
        "alt_metric / alt_verdict: the same maps scored with average precision and with SSIM data_range 2 "
        "(the released code's implied scikit-image default), the statistics refitted on them.",
        f"cells that flip: {len(flips)}"
        + (
            ""
            if flips.empty
            else " ("
            + "; ".join(f"{r.method} / {r.column}: {r.verdict} -> {r.alt_verdict}" for r in flips.itertuples())
            + ")"
        ),
    ]
    if missing:
        notes.append(
            f"n/a under {', '.join(missing)} where Table 2 has a verdict: not scored or not modelled "
            "(ssim_dr2 must be in criteria.similarity; ap is always scored) or no contrast for that cell."
        )
    return sens, t2.to_markdown(sens, title, notes)
