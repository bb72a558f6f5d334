"""Verdict stability and the bootstrap helpers on hand-made cases whose answer is known."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from saliency_audit import resample
from saliency_audit.stats import run, stability
from saliency_audit.stats import table2 as t2

B = 1000


def test_indices_and_mean_ci_are_seeded():
    idx = resample.indices(7, 50, seed=3)
    assert idx.shape == (50, 7) and idx.min() >= 0 and idx.max() < 7
    np.testing.assert_array_equal(idx, resample.indices(7, 50, seed=3))
    assert not np.array_equal(idx, resample.indices(7, 50, seed=4))
    v = np.arange(10.0)
    lo, hi = resample.mean_ci(v, 2000, seed=1)
    assert resample.mean_ci(v, 2000, seed=1) == (lo, hi)
    # the bootstrap SE of a mean is about sd(ddof=0) / sqrt(n): the 95% interval spans about 2 x 1.96 SE
    assert hi - lo == pytest.approx(2 * 1.96 * v.std() / np.sqrt(10), rel=0.1)
    assert lo < v.mean() < hi and np.isnan(resample.mean_ci([])[0])


def test_paired_pass_matches_scipy_ttest_on_the_full_sample():
    rng = np.random.default_rng(0)
    d = rng.normal(0.05, 0.2, 40)
    ident = np.arange(40)[None]  # the "resample" that is the sample itself
    p = sps.ttest_1samp(d, 0.0).pvalue
    for m in (1, 3, 45):
        assert stability.paired_pass(d, ident, 0.05, m)[0] == (d.mean() > 0 and min(1, p * m) < 0.05)
    assert not stability.paired_pass(-np.abs(d), ident, 0.05)[0]  # worse is never PASS
    assert stability.paired_pass(np.full(5, 0.1), np.arange(5)[None], 0.05)[0]  # zero variance, positive mean


def test_huge_effect_is_stable_and_an_effect_at_the_threshold_is_a_coin_flip():
    rng = np.random.default_rng(1)
    idx = resample.indices(60, B, seed=2)
    assert stability.paired_pass(rng.normal(1.0, 0.1, 60), idx, 0.05, 10).mean() == 1.0
    # randomization: per-image randomized values and anchor means with the same mean -> about half below
    r = rng.normal(0.4, 0.05, 200)
    a = r[::-1].copy()  # same values, so equal means, shuffled pairing
    frac = stability.threshold_pass(r, a, resample.indices(200, B, seed=3)).mean()
    assert 0.4 < frac < 0.6
    assert stability.threshold_pass(r - 0.3, a, resample.indices(200, B, seed=3)).mean() == 1.0


def _tidy(criterion, rows):
    cols = ["dataset", "criterion", "method", "model_a", "model_b", "state", "image_id", "metric", "value"]
    return pd.DataFrame([["ds", criterion, *r] for r in rows], columns=cols)


def _scores(n=30, seed=0):
    rng = np.random.default_rng(seed)
    ids = [f"i{k}" for k in range(n)]
    util, rnd, rep = [], [], []
    for i in ids:
        util += [
            ["XRAI", "inceptionv3_1", "", "original", i, "auprc", 0.6 + rng.normal(0, 0.01)],  # far above AVG
            ["GRAD", "inceptionv3_1", "", "original", i, "auprc", 0.3 + rng.normal(0, 0.1)],  # about AVG
            ["AVG", "avg", "", "original", i, "auprc", 0.3 + rng.normal(0, 0.1)],
            ["PRED", "unet_1", "", "original", i, "auprc", 0.9],
        ]
        rnd += [
            ["XRAI", "inceptionv3_1", "", "cascade-mixed1", i, "ssim", 0.9],
            ["GRAD", "inceptionv3_1", "", "cascade-mixed1", i, "ssim", 0.1 + rng.normal(0, 0.01)],
        ]
        rep += [
            ["XRAI", "inceptionv3_1", "inceptionv3_2", "original", i, "ssim", 0.9 + rng.normal(0, 0.01)],
            ["GRAD", "inceptionv3_1", "inceptionv3_2", "original", i, "ssim", 0.2],
            ["PRED", "unet_1", "unet_2", "original", i, "ssim", 0.95],
        ]
    anchors = pd.DataFrame({"method": ["XRAI"] * n + ["GRAD"] * n, "metric": "ssim", "image_id": ids * 2, "n_pairs": 5,
                            "mean": [0.3] * n + [0.5] * n})  # fmt: skip
    return {"utility": _tidy("utility", util), "randomization": _tidy("randomization", rnd),
            "repeatability": _tidy("repeatability", rep)}, anchors  # fmt: skip


S = {
    "methods": ["XRAI", "GRAD"], "localizer": "unet", "full_states": ["cascade-mixed1"], "primary": "inceptionv3_1",
    "alpha": 0.05, "low_baseline_ssim": 0.5, "seed": 1, "resamples": B, "fragile": 0.8, "sensitivity": True,
}  # fmt: skip


def test_stability_table_of_table2_cells():
    scores, anchors = _scores()
    contrasts = pd.DataFrame(
        [
            dict(criterion="utility", metric="auprc", family="f", question="utility_vs_avg", group_a="XRAI", estimate=0.3, p_adj=1e-9),
            dict(criterion="utility", metric="auprc", family="f", question="utility_vs_avg", group_a="GRAD", estimate=0.01, p_adj=0.6),
            dict(criterion="repeatability", metric="ssim", family="g", question="vs_low_baseline", group_a="XRAI", estimate=0.4, p_adj=1e-9),
        ]
    )  # fmt: skip
    tab = t2.table2(S["methods"], contrasts, None, 0.05)
    tab["Randomization"] = ["FAIL", "PASS"]  # as Table S1 would say: XRAI 0.9 > 0.3, GRAD 0.1 < 0.5
    st = stability.stability_table(tab, scores, anchors, contrasts, S, "ds").set_index(["method", "column"])
    assert (
        st.loc[("XRAI", "Utility vs AVG"), "stability"] == 1.0
        and st.loc[("XRAI", "Utility vs AVG"), "verdict"] == "PASS"
    )
    assert (
        st.loc[("XRAI", "Randomization"), "stability"] == 1.0 and st.loc[("GRAD", "Randomization"), "stability"] == 1.0
    )
    assert st.loc[("XRAI", "Repeatability vs 0.5"), "stability"] == 1.0
    assert "Bonferroni x2" in st.loc[("XRAI", "Utility vs AVG"), "test"]  # two contrasts in family f
    assert (
        st.loc[("GRAD", "Utility vs AVG"), "verdict"] == "FAIL"
        and st.loc[("GRAD", "Utility vs AVG"), "stability"] > 0.8
    )
    assert ("GRAD", "Utility vs localizer") not in st.index  # n/a cells have no stability
    assert (st["n_images"] == 30).all() and not st["fragile"].any()
    again = stability.stability_table(tab, scores, anchors, contrasts, S, "ds").set_index(["method", "column"])
    pd.testing.assert_frame_equal(st, again)  # seeded
    md = t2.to_markdown(stability.with_stability(tab, st.reset_index()), "T")
    assert "| XRAI | PASS (1.00) |" in md


def test_fragile_cell_is_marked():
    scores, anchors = _scores()
    r = scores["randomization"].query("method == 'GRAD'")["value"].to_numpy()
    anchors.loc[anchors["method"] == "GRAD", "mean"] = r[::-1]  # threshold = the randomized mean: a coin flip
    tab = pd.DataFrame({"Randomization": ["PASS"]}, index=pd.Index(["GRAD"], name="method"))
    st = stability.stability_table(tab, scores, anchors, None, S, "ds").iloc[0]
    assert 0.2 < st["stability"] < 0.8 and st["fragile"]
    assert "PASS (" in stability.with_stability(tab, pd.DataFrame([st])).loc["GRAD", "Randomization"]
    assert "fragile" in stability.with_stability(tab, pd.DataFrame([st])).loc["GRAD", "Randomization"]


def test_make_tables_writes_stability_sensitivity_and_flags_constant_maps():
    scores, anchors = _scores()
    rows = []  # fully randomized GCAM: 3 of 4 maps constant, its AUPRC ~ 0.5 and AP the prevalence
    for k, const in enumerate([1, 1, 1, 0]):
        rows += [["GCAM", "inceptionv3_1", "", "cascade-mixed1", f"i{k}", "auprc", 0.51],
                 ["GCAM", "inceptionv3_1", "", "cascade-mixed1", f"i{k}", "ap", 0.02],
                 ["GCAM", "inceptionv3_1", "", "cascade-mixed1", f"i{k}", "constant", const]]  # fmt: skip
    scores["utility"] = pd.concat([scores["utility"], _tidy("utility", rows)], ignore_index=True)
    thr = pd.DataFrame({"method": ["XRAI", "GRAD"], "metric": "ssim", "threshold": [0.3, 0.5]})
    s = {**S, "methods": ["XRAI", "GRAD", "GCAM"]}
    tabs = run.make_tables(scores, thr, None, s, "ds", anchors)
    assert set(tabs) == {"table2", "table2_stability", "tableS1", "tableS2", "sensitivity"}
    assert "FAIL (1.00)" in tabs["table2"][1] and "verdict stability" in tabs["table2"][1]
    md = tabs["tableS2"][1]
    assert "| GCAM (random) |" in md and "0.510 ± 0.000 (constant maps: 3/4)" in md
    assert "0.020 ± 0.000 (constant maps: 3/4)" in md  # AP beside the trapezoidal AUPRC
    assert "(constant maps" not in md.split("| GCAM (random) |")[0]  # trained maps are not flagged
    assert tabs["sensitivity"][0]["flipped"].sum() == 0 and "cells that flip: 0" in tabs["sensitivity"][1]
