"""Linear mixed-effects models with post-hoc simultaneous contrasts, fitted in R through rpy2.

Arun et al. (Radiology: AI 2021), Statistical analysis: "A linear mixed effects model was used ...
using a two-sided test with alpha level set at 0.05 ... Tukey's HSD test was used for post-hoc
analysis" (R lme4 / lmerTest / multcomp). Every comparison here fits

    score ~ group + (1 | image_id)

with ``lmerTest::lmer`` (REML; a random intercept per test image, since every group is measured on
the same images), reports the Satterthwaite F test of ``group`` (``anova``), and tests contrasts of
the fixed effects with ``multcomp::glht``:

* pairwise contrasts ``a - b`` (all pairs of levels = Tukey's all-pairwise comparisons, or a given
  subset of pairs), single-step adjusted (Hothorn, Bretz & Westfall 2008, Biometrical J. 50:346);
* a group's mean against a constant (``mean - c``; e.g. the SSIM low baseline 0.5 or a degradation
  threshold), single-step adjusted over the levels tested.

Single-step p-values and simultaneous confidence intervals are computed from the multivariate normal
distribution by randomized quasi-Monte-Carlo (``mvtnorm::pmvnorm``/``qmvnorm``), so R's RNG is seeded
(``set.seed(seed)``) before each call: the same input and seed give the same numbers.

Python <-> R conversion uses rpy2 *local* converters (``(default_converter + pandas2ri.converter).context()``),
never the global ``pandas2ri.activate()``.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError

log = logging.getLogger(__name__)

#: R packages the statistics need; Debian/Ubuntu package names; conda-forge names (envs/stats.yaml).
R_PACKAGES = {"lme4": "r-cran-lme4", "lmerTest": "r-cran-lmertest", "multcomp": "r-cran-multcomp"}
CONDA_NAMES = {"lme4": "r-lme4", "lmerTest": "r-lmertest", "multcomp": "r-multcomp"}

#: Columns of the tidy contrast table (results/{ds}/stats/contrasts.csv).
CONTRAST_COLUMNS = [
    "dataset", "criterion", "metric", "family", "question", "contrast", "group_a", "group_b",
    "estimate", "se", "statistic", "ci_low", "ci_high", "p_adj", "significant", "alpha", "adjust",
    "n_obs", "n_images", "seed",
]  # fmt: skip
#: Columns of the model table (results/{ds}/stats/models.csv).
MODEL_COLUMNS = [
    "dataset", "criterion", "metric", "family", "levels", "n_obs", "n_images", "F", "num_df", "den_df",
    "p_value", "sigma", "sd_image", "singular", "warnings",
]  # fmt: skip


class MissingRError(InputError):
    """R, rpy2 or an R package that the statistics need is not available (the message says how to install it)."""


class FitSkipped(InputError):
    """One family cannot be fitted (too few groups/images, or R's fit failed); the others still are."""


def _install_hint(packages) -> str:
    deb = " ".join(R_PACKAGES.get(p, f"r-cran-{p.lower()}") for p in packages)
    conda = " ".join(CONDA_NAMES.get(p, f"r-{p.lower()}") for p in packages)
    return (
        f"install them with `sudo apt-get install {deb}` (Debian/Ubuntu), or `install.packages(c("
        + ", ".join(f'"{p}"' for p in packages)
        + f"))` in R, or run with `--software-deployment-method conda` (envs/stats.yaml: {conda}); "
        "or set `stats: {enabled: false}` to skip the statistics"
    )


def _r_home() -> str | None:
    """R_HOME from the environment, else from ``R RHOME`` (what rpy2 itself does)."""
    if os.environ.get("R_HOME"):
        return os.environ["R_HOME"]
    exe = shutil.which("R")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "RHOME"], capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip().splitlines()[-1] if out.strip() else None


def check_r(packages=tuple(R_PACKAGES)) -> str:
    """Check, before any R code runs, that rpy2, R and each R package are available.

    An embedded R that cannot start aborts the whole Python process from C ("Fatal error: unable
    to open the base package"), so R_HOME is checked on disk *before* rpy2 starts R.

    Returns
    -------
    str
        The R version string and each package's version.

    Raises
    ------
    MissingRError
        Naming what is missing and how to install it.
    """
    try:
        import rpy2  # noqa: F401
    except ImportError as exc:
        raise MissingRError(
            f"the statistics need the Python package rpy2 ({exc}); install it with "
            "`pip install 'saliency-audit[stats]'` (rpy2==3.5.17), or set `stats: {enabled: false}`"
        ) from exc
    home = _r_home()
    if home is None:
        raise MissingRError(
            "the statistics need R (>= 4.0): no R_HOME is set and `R` is not on PATH; install it with "
            "`sudo apt-get install r-base-core` (Debian/Ubuntu) or use envs/stats.yaml, "
            "or set `stats: {enabled: false}`"
        )
    if not (Path(home) / "library" / "base").is_dir():
        raise MissingRError(
            f"R_HOME={home} is not an R installation (no {home}/library/base); point R_HOME at R "
            "(`R RHOME` prints it) or unset it; install R with `sudo apt-get install r-base-core`"
        )
    try:
        import rpy2.robjects as ro
        from rpy2.robjects import packages as rpackages
    except Exception as exc:  # rpy2 could not load libR
        raise MissingRError(f"rpy2 could not start R from R_HOME={home}: {exc}") from exc
    old_warn = ro.r("getOption('warn')")  # isinstalled() warns about empty site libraries; not news
    ro.r("options(warn = -1)")
    try:
        missing = [p for p in packages if not _quiet(lambda p=p: rpackages.isinstalled(p))]
    finally:
        ro.r["options"](warn=old_warn)
    if missing:
        raise MissingRError(
            f"the statistics need the R package(s) {', '.join(missing)} (R at {home}); " + _install_hint(missing)
        )
    versions = ", ".join(f"{p} {ro.r(f'as.character(packageVersion({p!r}))')[0]}" for p in packages)
    return f"{_quiet(lambda: ro.r('R.version.string')[0])}; {versions}"


def _quiet(fn):
    """Run ``fn`` with R's console output sent to the Python log instead of stdout/stderr."""
    from rpy2.rinterface_lib import callbacks

    old_w, old_e = callbacks.consolewrite_print, callbacks.consolewrite_warnerror
    callbacks.consolewrite_print = lambda s: log.debug("R: %s", s.rstrip())
    callbacks.consolewrite_warnerror = lambda s: log.debug("R: %s", s.rstrip())
    try:
        return fn()
    finally:
        callbacks.consolewrite_print, callbacks.consolewrite_warnerror = old_w, old_e


_R_CODE = r"""
function(df, levels, pair_a, pair_b, const_level, const_value, alpha, seed) {
  warns <- character(0)
  keep <- function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") }
  withCallingHandlers({
  suppressPackageStartupMessages({library(lme4); library(lmerTest); library(multcomp)})
  df$group <- factor(as.character(df$group), levels = levels)
  df$image_id <- factor(as.character(df$image_id))
  m <- lmerTest::lmer(score ~ group + (1 | image_id), data = df, REML = TRUE)
  a <- as.data.frame(anova(m))
  vc <- as.data.frame(VarCorr(m))
  model <- data.frame(F = a[["F value"]][1], num_df = a[["NumDF"]][1], den_df = a[["DenDF"]][1],
                      p_value = a[["Pr(>F)"]][1], sigma = sigma(m),
                      sd_image = vc$sdcor[vc$grp == "image_id"][1], singular = isSingular(m))
  run <- function(g, names, group_a, group_b, shift) {
    set.seed(seed)
    s <- summary(g, test = adjusted("single-step"))
    set.seed(seed)
    ci <- confint(g, level = 1 - alpha)$confint
    data.frame(contrast = names, group_a = group_a, group_b = group_b,
               estimate = unname(s$test$coefficients) - shift, se = unname(s$test$sigma),
               statistic = unname(s$test$tstat), ci_low = unname(ci[, "lwr"]) - shift,
               ci_high = unname(ci[, "upr"]) - shift, p_adj = as.numeric(s$test$pvalues),
               stringsAsFactors = FALSE)
  }
  out <- list()
  if (length(pair_a)) {
    K <- matrix(0, length(pair_a), length(levels), dimnames = list(paste(pair_a, "-", pair_b), levels))
    for (i in seq_along(pair_a)) { K[i, pair_a[i]] <- 1; K[i, pair_b[i]] <- -1 }
    g <- glht(m, linfct = mcp(group = K))
    out[[length(out) + 1]] <- run(g, rownames(K), pair_a, pair_b, 0)
  }
  if (length(const_level)) {
    L <- matrix(0, length(const_level), length(fixef(m)))
    L[, 1] <- 1
    for (i in seq_along(const_level)) { j <- match(const_level[i], levels); if (j > 1) L[i, j] <- 1 }
    g <- glht(m, linfct = L, rhs = const_value)
    out[[length(out) + 1]] <- run(g, paste(const_level, "-", format(const_value, digits = 6)),
                                  const_level, format(const_value, digits = 6), const_value)
  }
  }, warning = keep)
  model$warnings <- paste(unique(trimws(warns)), collapse = "; ")
  list(model = model, contrasts = do.call(rbind, out))
}
"""


@dataclass
class Family:
    """One model fit: the rows (score, group, image_id) and the contrasts asked of it.

    Parameters
    ----------
    data
        Columns ``score``, ``group``, ``image_id``.
    levels
        Group levels in order (the first is the reference of the treatment coding; it does not
        change the contrasts).
    pairs
        ``(a, b)`` contrasts ``a - b``; ``"tukey"`` for all pairs of levels (Tukey's all-pairwise
        comparisons), oriented so that the earlier level in ``levels`` is ``a``.
    constants
        ``{level: c}``: test ``mean(level) - c``; single-step adjusted over these levels.
    questions
        ``{(a, b): question}`` labels of the paper's questions; other contrasts get ``pairwise``.
    """

    criterion: str
    metric: str
    family: str
    data: pd.DataFrame
    levels: list
    pairs: object = "tukey"
    constants: dict = field(default_factory=dict)
    questions: dict = field(default_factory=dict)
    constant_question: str = "vs_constant"

    def pair_list(self):
        if isinstance(self.pairs, str):
            if self.pairs != "tukey":
                raise ValueError(f"pairs must be 'tukey' or a list of pairs, not {self.pairs!r}")
            return list(itertools.combinations(self.levels, 2))
        return [tuple(p) for p in self.pairs]


def fit_family(fam: Family, alpha: float = 0.05, seed: int = 1, dataset: str = ""):
    """Fit ``score ~ group + (1 | image_id)`` and test the family's contrasts.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        One model row (:data:`MODEL_COLUMNS`) and the contrast rows (:data:`CONTRAST_COLUMNS`).
    """
    import rpy2.robjects as ro
    from rpy2.rinterface_lib.embedded import RRuntimeError
    from rpy2.robjects import pandas2ri

    df = fam.data.loc[fam.data["group"].isin(fam.levels), ["score", "group", "image_id"]].copy()
    df["group"] = df["group"].astype(str)
    df["image_id"] = df["image_id"].astype(str)
    df["score"] = df["score"].astype(float)
    if df["score"].isna().any():
        raise InputError(
            f"{fam.criterion}/{fam.metric}: {int(df['score'].isna().sum())} missing scores in family {fam.family}"
        )
    levels = [lv for lv in fam.levels if (df["group"] == lv).any()]
    pairs = [(a, b) for a, b in fam.pair_list() if a in levels and b in levels]
    consts = {k: float(v) for k, v in fam.constants.items() if k in levels}
    if len(levels) < 2 or df["image_id"].nunique() < 2:
        raise FitSkipped(
            f"{fam.criterion}/{fam.metric} family {fam.family}: need >= 2 groups and >= 2 images, "
            f"have groups {levels} and {df['image_id'].nunique()} images"
        )
    fn = _quiet(lambda: ro.r(_R_CODE))
    with (ro.default_converter + pandas2ri.converter).context():
        args = [
            ro.conversion.get_conversion().py2rpy(df.reset_index(drop=True)),
            ro.StrVector(levels),
            ro.StrVector([a for a, _ in pairs]),
            ro.StrVector([b for _, b in pairs]),
            ro.StrVector(list(consts)),
            ro.FloatVector(list(consts.values())),
            float(alpha),
            int(seed),
        ]
        try:
            res = _quiet(lambda: fn(*args))
        except RRuntimeError as exc:
            raise FitSkipped(
                f"{fam.criterion}/{fam.metric} family {fam.family}: R failed to fit the model: {exc}"
            ) from exc
        model, contrasts = res["model"], res["contrasts"]  # a named R list arrives as a dict of data frames
    meta = {
        "dataset": dataset,
        "criterion": fam.criterion,
        "metric": fam.metric,
        "family": fam.family,
        "n_obs": len(df),
        "n_images": df["image_id"].nunique(),
    }
    model = pd.DataFrame(model).reset_index(drop=True).assign(levels=";".join(levels), **meta)
    model["singular"] = model["singular"].astype(bool)
    if model.loc[0, "warnings"]:
        log.warning("%s/%s %s: R warned: %s", fam.criterion, fam.metric, fam.family, model.loc[0, "warnings"])
    contrasts = (
        pd.DataFrame(contrasts).reset_index(drop=True).assign(alpha=alpha, adjust="single-step", seed=seed, **meta)
    )
    contrasts["question"] = [
        fam.questions.get((a, b), "pairwise") if b in levels else fam.constant_question
        for a, b in zip(contrasts["group_a"], contrasts["group_b"])
    ]
    contrasts["p_adj"] = contrasts["p_adj"].clip(lower=0.0, upper=1.0)
    contrasts["significant"] = contrasts["p_adj"] < alpha
    return model[MODEL_COLUMNS], contrasts[CONTRAST_COLUMNS]


def fit_families(families, alpha=0.05, seed=1, dataset=""):
    """Fit every family (checking R first); return the concatenated model and contrast tables."""
    version = check_r()
    log.info("statistics with %s; alpha %s, seed %s", version, alpha, seed)
    models, contrasts = [], []
    for fam in families:
        log.info(
            "fitting %s/%s %s: %d rows, levels %s", fam.criterion, fam.metric, fam.family, len(fam.data), fam.levels
        )
        try:
            m, c = fit_family(fam, alpha=alpha, seed=seed, dataset=dataset)
        except FitSkipped as exc:  # recorded in models.csv; its contrasts read n/a in Table 2
            log.warning("skipped: %s", exc)
            row = dict.fromkeys(MODEL_COLUMNS, np.nan)
            row.update(dataset=dataset, criterion=fam.criterion, metric=fam.metric, family=fam.family)
            row.update(levels=";".join(map(str, fam.levels)), n_obs=len(fam.data), warnings=f"not fitted: {exc}")
            row.update(n_images=fam.data["image_id"].nunique() if len(fam.data) else 0, singular=False)
            m, c = pd.DataFrame([row], columns=MODEL_COLUMNS), None
        models.append(m)
        if c is not None and len(c):
            contrasts.append(c)
    if not models:
        return pd.DataFrame(columns=MODEL_COLUMNS), pd.DataFrame(columns=CONTRAST_COLUMNS)
    contrasts = pd.concat(contrasts, ignore_index=True) if contrasts else pd.DataFrame(columns=CONTRAST_COLUMNS)
    return pd.concat(models, ignore_index=True), contrasts
