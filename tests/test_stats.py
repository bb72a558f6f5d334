"""LMM + multcomp statistics (R through rpy2), checked against hand-computed two-way ANOVA numbers."""

import itertools
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from saliency_audit.stats import groups, lmm


def _r_ok():
    try:
        lmm.check_r()
        return True
    except lmm.MissingRError:
        return False


needs_r = pytest.mark.skipif(not _r_ok(), reason="R with lme4/lmerTest/multcomp not available")


def constructed(n=40, effects=None, seed=0, sd_image=0.1, sd_noise=0.05):
    """Balanced design: every group scored on the same n images; image random intercepts."""
    effects = effects or {"A": 0.0, "BIG": 0.3, "NULL": 0.0}
    rng = np.random.default_rng(seed)
    u = rng.normal(0, sd_image, n)
    rows = []
    for g, eff in effects.items():
        y = 0.4 + eff + u + rng.normal(0, sd_noise, n)
        rows.append(pd.DataFrame({"score": y, "group": g, "image_id": [f"img{i:03d}" for i in range(n)]}))
    return pd.concat(rows, ignore_index=True)


def anova_reference(df, levels):
    """Two-way additive ANOVA (image + group) by hand: group means, MSE, F, den df.

    In a balanced design with a positive image variance the REML LMM gives the same fixed
    effects, residual variance and F test (Satterthwaite df = (n-1)(k-1)).
    """
    y = df.pivot(index="image_id", columns="group", values="score")[levels].to_numpy()
    n, k = y.shape
    resid = y - y.mean(1, keepdims=True) - y.mean(0, keepdims=True) + y.mean()
    dfe = (n - 1) * (k - 1)
    mse = (resid**2).sum() / dfe
    msg = n * ((y.mean(0) - y.mean()) ** 2).sum() / (k - 1)
    return dict(means=dict(zip(levels, y.mean(0))), mse=mse, F=msg / mse, den_df=dfe, n=n)


@needs_r
def test_large_effect_found_null_effect_not():
    df = constructed()
    fam = lmm.Family("utility", "auprc", "t", df, ["A", "BIG", "NULL"], "tukey")
    model, c = lmm.fit_family(fam, alpha=0.05, seed=1)
    ref = anova_reference(df, ["A", "BIG", "NULL"])
    c = c.set_index("contrast")
    # Tukey: all three pairs, oriented earlier level minus later level
    assert sorted(c.index) == ["A - BIG", "A - NULL", "BIG - NULL"]
    for a, b in itertools.combinations(["A", "BIG", "NULL"], 2):
        row = c.loc[f"{a} - {b}"]
        assert row["estimate"] == pytest.approx(ref["means"][a] - ref["means"][b], abs=1e-8)
        assert row["se"] == pytest.approx(np.sqrt(2 * ref["mse"] / ref["n"]), rel=1e-5)
        assert row["ci_low"] < row["estimate"] < row["ci_high"]
    assert c.loc["A - BIG", "p_adj"] < 0.001 and c.loc["BIG - NULL", "p_adj"] < 0.001
    assert c.loc["A - NULL", "p_adj"] > 0.05
    assert c.loc["A - NULL", "ci_low"] < 0 < c.loc["A - NULL", "ci_high"]
    assert not c.loc["A - NULL", "significant"] and c.loc["A - BIG", "significant"]
    assert model.loc[0, "F"] == pytest.approx(ref["F"], rel=1e-5)
    assert model.loc[0, "den_df"] == pytest.approx(ref["den_df"], rel=1e-3)
    assert model.loc[0, "p_value"] < 0.001
    assert model.loc[0, "n_images"] == 40 and model.loc[0, "n_obs"] == 120


@needs_r
def test_null_only_design_not_significant_and_seeded():
    df = constructed(effects={"A": 0.0, "B": 0.0, "C": 0.0, "D": 0.0}, seed=3)
    fam = lmm.Family("repeatability", "ssim", "t", df, ["A", "B", "C", "D"], "tukey")
    m1, c1 = lmm.fit_family(fam, alpha=0.05, seed=5)
    _, c2 = lmm.fit_family(fam, alpha=0.05, seed=5)
    assert len(c1) == 6 and not c1["significant"].any()
    assert m1.loc[0, "p_value"] > 0.05
    # multcomp's single-step p-values are Monte-Carlo: the seed makes them reproducible
    np.testing.assert_array_equal(c1["p_adj"].to_numpy(), c2["p_adj"].to_numpy())
    np.testing.assert_array_equal(c1["ci_low"].to_numpy(), c2["ci_low"].to_numpy())
    # simultaneous CIs are wider than the unadjusted 95% normal interval
    width = (c1["ci_high"] - c1["ci_low"]) / 2
    assert (width > 1.96 * c1["se"]).all()


@needs_r
def test_mean_vs_constant():
    df = constructed(effects={"LOW": 0.0, "HIGH": 0.3}, seed=4)  # means about 0.4 and 0.7
    fam = lmm.Family(
        "repeatability",
        "ssim",
        "t",
        df,
        ["LOW", "HIGH"],
        [],
        {"LOW": 0.5, "HIGH": 0.5},
        constant_question="vs_low_baseline",
    )
    _, c = lmm.fit_family(fam, alpha=0.05, seed=1)
    c = c.set_index("group_a")
    means = df.groupby("group")["score"].mean()
    assert c.loc["HIGH", "estimate"] == pytest.approx(means["HIGH"] - 0.5, abs=1e-8)
    assert c.loc["LOW", "estimate"] == pytest.approx(means["LOW"] - 0.5, abs=1e-8)
    assert (c["question"] == "vs_low_baseline").all()
    assert c.loc["HIGH", "p_adj"] < 0.001 and c.loc["LOW", "p_adj"] < 0.001
    assert c.loc["HIGH", "ci_low"] > 0 > c.loc["LOW", "ci_high"]


def _scores(criterion, rows):
    return pd.DataFrame(rows, columns=groups.SCORE_COLUMNS).assign(criterion=criterion)


def hand_made_scores(n=30, seed=0):
    """Tidy score tables as helper E writes them: two methods, AVG, U-Net; replicate SSIMs."""
    rng = np.random.default_rng(seed)
    ids = [f"p{i}" for i in range(n)]
    u = rng.normal(0, 0.05, n)
    ut, rep = [], []
    for (method, model, state), mu in {
        ("XRAI", "inceptionv3_1", "original"): 0.30,
        ("GRAD", "inceptionv3_1", "original"): 0.10,
        ("XRAI", "inceptionv3_1", "cascade-mixed1"): 0.30,
        ("GRAD", "inceptionv3_1", "cascade-mixed1"): 0.05,
        ("AVG", "avg", "original"): 0.15,
        ("PRED", "unet_1", "original"): 0.50,
        ("PRED", "unet_2", "original"): 0.90,  # second replicate: not a group
    }.items():
        for i, v in zip(ids, mu + u + rng.normal(0, 0.02, n)):
            ut.append(["ds", "utility", method, model, "", state, i, "auprc", v])
    for (method, a, b), mu in {
        ("XRAI", "inceptionv3_1", "inceptionv3_2"): 0.65,
        ("GRAD", "inceptionv3_1", "inceptionv3_2"): 0.2,
        ("PRED", "unet_1", "unet_2"): 0.95,
    }.items():
        for i, v in zip(ids, mu + rng.normal(0, 0.03, n)):
            rep.append(["ds", "repeatability", method, a, b, "original", i, "ssim", v])
    return {"utility": _scores("utility", ut), "repeatability": _scores("repeatability", rep)}


@needs_r
def test_families_answer_the_papers_questions():
    sc = hand_made_scores()
    fams = groups.build_families(sc, None, ["XRAI", "GRAD"], "unet", "cascade-mixed1")
    assert [(f.criterion, f.family) for f in fams] == [
        ("utility", "methods_baselines"),
        ("utility", "trained_vs_random"),
        ("repeatability", "methods_baselines"),
    ]
    _, c = lmm.fit_families(fams, alpha=0.05, seed=1, dataset="ds")
    u = c[(c["criterion"] == "utility") & (c["family"] == "methods_baselines")]
    # Tukey over 4 groups = 6 contrasts, the paper's questions labelled
    assert sorted(u["contrast"]) == sorted(
        ["XRAI - GRAD", "XRAI - AVG", "XRAI - UNET", "GRAD - AVG", "GRAD - UNET", "AVG - UNET"]
    )
    q = u.set_index("contrast")["question"]
    assert q["XRAI - AVG"] == "utility_vs_avg" and q["GRAD - UNET"] == "utility_vs_localizer"
    assert q["XRAI - GRAD"] == "pairwise"
    est = u.set_index("contrast")["estimate"]
    assert est["XRAI - AVG"] == pytest.approx(0.15, abs=0.02) and est["GRAD - UNET"] == pytest.approx(-0.40, abs=0.02)
    tr = c[c["family"] == "trained_vs_random"].set_index("group_a")
    assert tr.loc["GRAD", "group_b"] == "GRAD (random)" and tr.loc["GRAD", "p_adj"] < 0.001
    assert tr.loc["XRAI", "p_adj"] > 0.05 and (tr["question"] == "trained_vs_random").all()
    r = c[c["criterion"] == "repeatability"]
    assert set(r["question"]) == {"vs_localizer", "pairwise", "vs_low_baseline"}
    low = r[r["question"] == "vs_low_baseline"].set_index("group_a")
    assert low.loc["XRAI", "estimate"] > 0 and low.loc["GRAD", "estimate"] < 0
    assert (c["dataset"] == "ds").all() and list(c.columns) == lmm.CONTRAST_COLUMNS


def test_missing_r_package_clear_message():
    with pytest.raises(lmm.MissingRError, match=r"notapkg_xyz.*apt-get install r-cran-notapkg_xyz"):
        lmm.check_r(packages=("lme4", "notapkg_xyz"))


def test_r_home_pointed_away_clear_message(tmp_path):
    """A broken R_HOME aborts an embedded R from C; the check must refuse before R starts."""
    code = "from saliency_audit.stats.lmm import check_r\ncheck_r()\n"
    env = dict(os.environ, R_HOME=str(tmp_path / "no-R-here"))
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode != 0
    assert "MissingRError" in p.stderr and "no-R-here" in p.stderr and "not an R installation" in p.stderr
    assert "Fatal error" not in p.stderr


@needs_r
def test_unfittable_family_is_skipped_and_recorded():
    """One test image (tiny runs) cannot carry an image random effect: that family is skipped, not fatal."""
    one = constructed(n=1)
    good = constructed(n=20)
    fams = [
        lmm.Family("repeatability", "ssim", "one_image", one, ["A", "BIG"], "tukey"),
        lmm.Family("utility", "auprc", "ok", good, ["A", "BIG"], "tukey"),
    ]
    models, c = lmm.fit_families(fams, seed=1, dataset="ds")
    assert models["family"].tolist() == ["one_image", "ok"]
    assert models.loc[0, "warnings"].startswith("not fitted:") and "1 images" in models.loc[0, "warnings"]
    assert np.isnan(models.loc[0, "F"]) and models.loc[1, "F"] > 100
    assert set(c["family"]) == {"ok"} and c.loc[0, "p_adj"] < 0.001


@needs_r
def test_pairs_equal_multcomps_own_tukey():
    """Our all-pairs contrast matrix = multcomp's mcp(group = "Tukey") (up to each contrast's sign)."""
    import rpy2.robjects as ro
    from rpy2.robjects import pandas2ri

    df = constructed(effects={"A": 0.0, "B": 0.05, "C": 0.3, "D": 0.02}, seed=9)
    _, ours = lmm.fit_family(lmm.Family("u", "m", "t", df, ["A", "B", "C", "D"], "tukey"), seed=3)
    code = """function(df) {
      suppressPackageStartupMessages({library(lmerTest); library(multcomp)})
      df$group <- factor(df$group, levels = c("A", "B", "C", "D")); df$image_id <- factor(df$image_id)
      m <- lmer(score ~ group + (1 | image_id), data = df)
      set.seed(3); s <- summary(glht(m, linfct = mcp(group = "Tukey")))
      data.frame(contrast = names(s$test$coefficients), estimate = unname(s$test$coefficients),
                 p = as.numeric(s$test$pvalues))
    }"""
    with (ro.default_converter + pandas2ri.converter).context():
        ref = ro.r(code)(ro.conversion.get_conversion().py2rpy(df))
    ref = pd.DataFrame(ref)
    assert len(ref) == len(ours) == 6
    for _, r in ref.iterrows():
        b, a = r["contrast"].split(" - ")  # multcomp writes later - earlier; ours earlier - later
        row = ours.set_index("contrast").loc[f"{a} - {b}"]
        assert row["estimate"] == pytest.approx(-r["estimate"], abs=1e-10)
        assert row["p_adj"] == pytest.approx(r["p"], abs=2e-3)


# --- variance components and adjusted p-values against closed forms (balanced) and a hand REML fit


def mean_squares(df, levels):
    """Two-way additive ANOVA of a balanced design: (MS_image, MS_error, n images, k groups)."""
    y = df.pivot(index="image_id", columns="group", values="score")[levels].to_numpy()
    n, k = y.shape
    resid = y - y.mean(1, keepdims=True) - y.mean(0, keepdims=True) + y.mean()
    ms_error = (resid**2).sum() / ((n - 1) * (k - 1))
    ms_image = k * ((y.mean(1) - y.mean()) ** 2).sum() / (n - 1)
    return ms_image, ms_error, n, k


@needs_r
def test_sigma_and_image_variance_equal_anova_mean_squares():
    """Balanced design, positive image variance: REML's sigma^2 = MS_error and
    var_image = (MS_image - MS_error) / k (k groups per image)."""
    levels = ["A", "B", "C"]
    df = constructed(n=30, effects={"A": 0.0, "B": 0.1, "C": -0.05}, seed=11, sd_image=0.08, sd_noise=0.04)
    model, _ = lmm.fit_family(lmm.Family("utility", "auprc", "t", df, levels, "tukey"), seed=1)
    ms_image, ms_error, n, k = mean_squares(df, levels)
    assert ms_image > 3 * ms_error  # the image variance is clearly positive (not a boundary fit)
    assert model.loc[0, "sigma"] ** 2 == pytest.approx(ms_error, rel=1e-5)
    assert model.loc[0, "sd_image"] ** 2 == pytest.approx((ms_image - ms_error) / k, rel=1e-4)
    assert not model.loc[0, "singular"]


@needs_r
def test_tukey_adjusted_p_values_equal_studentized_range():
    """All-pairs contrasts of a balanced design: the single-step adjusted p-value of z = est / se is
    P(Q > sqrt(2) |z|) for the studentized range Q of k groups (multcomp tests an LMM's contrasts
    asymptotically: df = infinity); the simultaneous interval is est +- q_(1-alpha) / sqrt(2) se.
    multcomp's numbers are quasi-Monte-Carlo, hence the tolerance."""
    from scipy.stats import studentized_range

    levels = ["A", "B", "C", "D"]
    df = constructed(n=40, effects={"A": 0.0, "B": 0.02, "C": 0.035, "D": -0.01}, seed=12, sd_noise=0.05)
    _, c = lmm.fit_family(lmm.Family("utility", "auprc", "t", df, levels, "tukey"), alpha=0.05, seed=2)
    k = len(levels)
    z = (c["estimate"] / c["se"]).to_numpy()
    np.testing.assert_allclose(c["statistic"], z, rtol=1e-8)
    expect = studentized_range.sf(np.sqrt(2) * np.abs(z), k, np.inf)
    assert ((expect > 0.01) & (expect < 0.99)).sum() >= 3  # p-values in the informative range
    np.testing.assert_allclose(c["p_adj"], expect, atol=2e-3)
    half = studentized_range.ppf(0.95, k, np.inf) / np.sqrt(2) * c["se"]
    np.testing.assert_allclose(c["ci_high"] - c["estimate"], half, rtol=2e-3)
    np.testing.assert_allclose(c["estimate"] - c["ci_low"], half, rtol=2e-3)


def reml_fit(df, levels):
    """score ~ group + (1 | image) by hand: REML criterion minimised over (log sigma, log tau) with
    scipy, then GLS fixed effects (treatment coding, first level reference) and their covariance."""
    from scipy.optimize import minimize

    y = df["score"].to_numpy(float)
    X = np.column_stack([np.ones(len(df))] + [(df["group"] == lv).to_numpy(float) for lv in levels[1:]])
    img = pd.factorize(df["image_id"])[0]
    Z = np.eye(img.max() + 1)[img]
    ZZ = Z @ Z.T

    def parts(theta):
        s2, t2 = np.exp(2 * theta)
        V = s2 * np.eye(len(y)) + t2 * ZZ
        Vi = np.linalg.inv(V)
        XtViX = X.T @ Vi @ X
        beta = np.linalg.solve(XtViX, X.T @ Vi @ y)
        r = y - X @ beta
        crit = np.linalg.slogdet(V)[1] + np.linalg.slogdet(XtViX)[1] + r @ Vi @ r
        return crit, beta, np.linalg.inv(XtViX)

    start = np.log([df["score"].std() / 2, df["score"].std() / 2])
    opt = minimize(lambda t: parts(t)[0], start, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12,
                                                                               "maxiter": 4000})
    _, beta, cov = parts(opt.x)
    sigma, tau = np.exp(opt.x)
    return dict(sigma=sigma, tau=tau, beta=beta, cov=cov)


@needs_r
def test_unbalanced_design_equals_hand_reml():
    """Unbalanced: one group misses a third of the images, another has images no one else has.
    sigma, sd_image, estimates and standard errors equal a hand REML fit; with two groups the
    single-step p-value is the two-sided normal one (no Monte-Carlo)."""
    from scipy.stats import norm

    rng = np.random.default_rng(13)
    df = constructed(n=30, effects={"A": 0.0, "B": 0.04, "C": 0.08}, seed=13, sd_image=0.08, sd_noise=0.05)
    drop = (df["group"] == "B") & df["image_id"].isin([f"img{i:03d}" for i in range(10)])
    extra = pd.DataFrame({"score": 0.5 + rng.normal(0, 0.1, 5), "group": "C",
                          "image_id": [f"only{i}" for i in range(5)]})
    df = pd.concat([df[~drop], extra], ignore_index=True)
    levels = ["A", "B", "C"]
    model, c = lmm.fit_family(lmm.Family("utility", "auprc", "t", df, levels, "tukey"), seed=1)
    ref = reml_fit(df, levels)
    assert model.loc[0, "sigma"] == pytest.approx(ref["sigma"], rel=1e-3)
    assert model.loc[0, "sd_image"] == pytest.approx(ref["tau"], rel=1e-3)
    assert model.loc[0, "n_obs"] == len(df) and model.loc[0, "n_images"] == 35
    c = c.set_index("contrast")
    coef = dict(zip(levels, [np.eye(3)[0] * 0, np.eye(3)[1], np.eye(3)[2]]))
    for a, b in itertools.combinations(levels, 2):
        L = coef[a] - coef[b]
        assert c.loc[f"{a} - {b}", "estimate"] == pytest.approx(L @ ref["beta"], abs=1e-5)
        assert c.loc[f"{a} - {b}", "se"] == pytest.approx(np.sqrt(L @ ref["cov"] @ L), rel=1e-3)
    # the unbalance changes the standard errors: B (fewer images) is less precise than A
    assert c.loc["A - B", "se"] > c.loc["A - C", "se"] * 1.02
    _, two = lmm.fit_family(lmm.Family("utility", "auprc", "t2", df, ["A", "B"], "tukey"), seed=1)
    z = two.loc[0, "estimate"] / two.loc[0, "se"]
    assert 0.001 < two.loc[0, "p_adj"] < 0.5
    assert two.loc[0, "p_adj"] == pytest.approx(2 * norm.sf(abs(z)), abs=1e-6)
