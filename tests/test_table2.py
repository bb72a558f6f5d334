"""Table 2 logic on hand-written tables: every PASS/FAIL branch; no R needed."""

import numpy as np
import pandas as pd
import pytest

from saliency_audit.stats import table2 as t2

ALPHA = 0.05


def contrast(criterion, metric, question, method, estimate, p):
    return dict(criterion=criterion, metric=metric, question=question, group_a=method, estimate=estimate, p_adj=p)


@pytest.mark.parametrize(
    "estimate, p, expected",
    [
        (0.10, 0.001, "PASS"),  # better and significant
        (0.10, 0.20, "FAIL"),  # better, not significant
        (-0.10, 0.001, "FAIL"),  # worse, significant
        (-0.10, 0.20, "FAIL"),  # worse, not significant
        (0.0, 0.001, "FAIL"),  # no difference is not better
        (0.10, 0.05, "FAIL"),  # p == alpha is not significant (p < alpha)
        (np.nan, 0.01, "n/a"),
        (0.1, np.nan, "n/a"),
    ],
)
def test_verdict_branches(estimate, p, expected):
    assert t2.verdict(estimate, p, ALPHA) == expected


@pytest.mark.parametrize(
    "mean, thr, expected",
    [(0.20, 0.30, "PASS"), (0.40, 0.30, "FAIL"), (0.30, 0.30, "FAIL"), (np.nan, 0.3, "n/a"), (0.2, np.nan, "n/a")],
)
def test_randomization_branches(mean, thr, expected):
    assert t2.randomization_verdict(mean, thr) == expected


def hand_table():
    rows = [
        # XRAI: better than AVG (significant), worse than UNET, repeatability above 0.5 (sig), ...
        contrast("utility", "auprc", "utility_vs_avg", "XRAI", 0.08, 0.001),
        contrast("utility", "auprc", "utility_vs_localizer", "XRAI", -0.18, 0.001),
        contrast("repeatability", "ssim", "vs_low_baseline", "XRAI", 0.14, 0.0001),
        contrast("repeatability", "ssim", "vs_localizer", "XRAI", 0.02, 0.30),  # better but n.s.
        contrast("reproducibility", "ssim", "vs_low_baseline", "XRAI", 0.03, 0.40),
        contrast("reproducibility", "ssim", "vs_localizer", "XRAI", 0.05, 0.01),  # better and sig.
        # GRAD: all worse
        contrast("utility", "auprc", "utility_vs_avg", "GRAD", -0.05, 0.03),
        contrast("utility", "auprc", "utility_vs_localizer", "GRAD", -0.30, 0.001),
        contrast("repeatability", "ssim", "vs_low_baseline", "GRAD", -0.3, 0.001),
        contrast("repeatability", "ssim", "vs_localizer", "GRAD", -0.7, 0.001),
        contrast("reproducibility", "ssim", "vs_low_baseline", "GRAD", -0.3, 0.001),
        # GRAD reproducibility vs localizer missing -> n/a
        # distractors that must not be read: other metric, pairwise contrasts, other methods as group_b
        contrast("utility", "auroc", "utility_vs_avg", "GRAD", 0.5, 0.0001),
        contrast("utility", "auprc", "pairwise", "GRAD", 0.5, 0.0001),
    ]
    return pd.DataFrame(rows)


def randomization():
    return pd.DataFrame({"method": ["XRAI", "GRAD"], "mean": [0.81, 0.25], "threshold": [0.63, 0.30]})


def test_table2_every_column():
    tab = t2.table2(["XRAI", "GRAD", "GCAM"], hand_table(), randomization(), ALPHA)
    assert list(tab.columns) == list(t2.TABLE2_COLUMNS)
    assert tab.loc["XRAI"].tolist() == ["PASS", "FAIL", "FAIL", "PASS", "FAIL", "FAIL", "PASS"]
    assert tab.loc["GRAD"].tolist() == ["FAIL", "FAIL", "PASS", "FAIL", "FAIL", "FAIL", "n/a"]
    assert (tab.loc["GCAM"] == "n/a").all()  # no contrasts and no randomization row


def test_table2_alpha_from_config_changes_verdict():
    tab = t2.table2(["XRAI"], hand_table(), randomization(), alpha=0.5)
    assert tab.loc["XRAI", "Repeatability vs localizer"] == "PASS"  # p = 0.30 < 0.5
    assert tab.loc["XRAI", "Reproducibility vs 0.5"] == "PASS"


def test_table2_without_statistics():
    tab = t2.table2(["XRAI", "GRAD"], None, randomization(), ALPHA)
    assert tab.loc["XRAI", "Randomization"] == "FAIL" and tab.loc["GRAD", "Randomization"] == "PASS"
    other = tab.drop(columns="Randomization")
    assert (other == "no statistics").all().all()


def test_table2_duplicate_contrast_is_an_error():
    c = pd.concat([hand_table(), hand_table().iloc[:1]])
    with pytest.raises(ValueError, match="2 contrasts for XRAI"):
        t2.table2(["XRAI"], c, None, ALPHA)


def test_randomization_table_and_markdown():
    scores = pd.DataFrame(
        {
            "method": ["XRAI"] * 3 + ["GRAD"] * 3 + ["GRAD"],
            "model_a": ["inceptionv3_1"] * 7,
            "state": ["cascade-mixed1"] * 6 + ["cascade-logits"],
            "metric": ["ssim"] * 7,
            "value": [0.8, 0.9, 1.0, 0.1, 0.2, 0.3, 0.99],
        }
    )
    thr = pd.DataFrame(
        {
            "method": ["XRAI", "GRAD", "XRAI"],
            "metric": ["ssim", "ssim", "spearman"],
            "threshold": [0.6, 0.25, 0.1],
            "n_pairs": 50,
        }
    )
    s1 = t2.randomization_table(scores, thr, ["XRAI", "GRAD"], ["cascade-mixed1"]).set_index("method")
    assert s1.loc["XRAI", "mean"] == pytest.approx(0.9) and s1.loc["XRAI", "sd"] == pytest.approx(0.1)
    assert s1.loc["GRAD", "mean"] == pytest.approx(0.2) and s1.loc["GRAD", "threshold"] == 0.25
    assert s1.loc["XRAI", "verdict"] == "FAIL" and s1.loc["GRAD", "verdict"] == "PASS"
    tab = t2.table2(["XRAI", "GRAD"], None, s1.reset_index(), ALPHA)
    md = t2.to_markdown(tab, "Table 2", notes=["PASS = better and significant"])
    assert md.splitlines()[2] == "| method | " + " | ".join(t2.TABLE2_COLUMNS) + " |"
    assert "| XRAI | no statistics | no statistics | FAIL |" in md
    assert t2.fmt_mean_sd(s1.reset_index()).tolist() == ["0.900 ± 0.100", "0.200 ± 0.100"]


def _tidy(criterion, rows):
    cols = ["dataset", "criterion", "method", "model_a", "model_b", "state", "image_id", "metric", "value"]
    return pd.DataFrame([["ds", criterion, *r] for r in rows], columns=cols)


def test_make_tables_needs_no_r(monkeypatch):
    """Tables read the statistics' CSV: they work with rpy2 unimportable."""
    import sys

    from saliency_audit.stats import run

    for mod in ("rpy2", "rpy2.robjects", "saliency_audit.stats.lmm"):
        monkeypatch.setitem(sys.modules, mod, None)
    s = {
        "methods": ["XRAI", "GRAD"], "localizer": "unet", "full_states": ["cascade-mixed1"], "primary": "inceptionv3_1",
        "alpha": 0.05, "low_baseline_ssim": 0.5, "seed": 1, "resamples": 200, "fragile": 0.8, "sensitivity": True,
    }  # fmt: skip
    ut = _tidy("utility", [
        ["XRAI", "inceptionv3_1", "", "original", "a", "auroc", 0.8], ["XRAI", "inceptionv3_1", "", "original", "b", "auroc", 0.6],
        ["GRAD", "inceptionv3_1", "", "original", "a", "auroc", 0.7], ["GRAD", "inceptionv3_1", "", "original", "b", "auroc", 0.7],
        ["AVG", "avg", "", "original", "a", "auroc", 0.75], ["AVG", "avg", "", "original", "b", "auroc", 0.65],
        ["PRED", "unet_1", "", "original", "a", "auroc", 0.9], ["PRED", "unet_1", "", "original", "b", "auroc", 1.0],
        ["PRED", "unet_2", "", "original", "a", "auroc", 0.1],  # second replicate: not the baseline
        ["XRAI", "inceptionv3_1", "", "cascade-mixed1", "a", "auroc", 0.1],  # randomized: not in Table S2
    ])  # fmt: skip
    rnd = _tidy("randomization", [
        ["XRAI", "inceptionv3_1", "", "cascade-mixed1", "a", "ssim", 0.9], ["GRAD", "inceptionv3_1", "", "cascade-mixed1", "a", "ssim", 0.1],
    ])  # fmt: skip
    thr = pd.DataFrame({"method": ["XRAI", "GRAD"], "metric": "ssim", "threshold": [0.6, 0.3], "n_pairs": 50})
    tabs = run.make_tables({"utility": ut, "randomization": rnd}, thr, hand_table(), s, "ds")
    t2tab, md = tabs["table2"]
    assert t2tab.loc["XRAI", "Utility vs AVG"] == "PASS" and t2tab.loc["GRAD", "Randomization"] == "PASS"
    assert "# Table 2 (ds)" in md and "alpha = 0.05" in md
    s2 = tabs["tableS2"][0].set_index(["metric", "group"])
    assert s2.loc[("auroc", "XRAI"), "mean"] == pytest.approx(0.7) and s2.loc[("auroc", "XRAI"), "n"] == 2
    assert s2.loc[("auroc", "UNET"), "mean"] == pytest.approx(0.95) and s2.loc[("auroc", "AVG"), "sd"] == pytest.approx(
        np.std([0.75, 0.65], ddof=1)
    )
    assert "| XRAI | 0.700 ± 0.141 |" in tabs["tableS2"][1]
    assert tabs["tableS1"][0].set_index("method").loc["XRAI", "verdict"] == "FAIL"
    no_stats = run.make_tables({"utility": ut}, None, None, s, "ds")["table2"]
    assert no_stats[0].loc["XRAI", "Utility vs AVG"] == "no statistics" and "no statistics" in no_stats[1]


def test_table2_under_other_metrics_reads_their_contrasts():
    c = pd.concat(
        [
            hand_table(),
            pd.DataFrame(
                [
                    contrast("utility", "ap", "utility_vs_avg", "XRAI", -0.01, 0.5),  # flips to FAIL under AP
                    contrast("repeatability", "ssim_dr2", "vs_low_baseline", "XRAI", 0.2, 0.001),
                ]
            ),
        ]
    )
    base = t2.table2(["XRAI"], c, randomization(), ALPHA)
    alt = t2.table2(["XRAI"], c, randomization(), ALPHA, utility_metric="ap", similarity_metric="ssim_dr2")
    assert base.loc["XRAI", "Utility vs AVG"] == "PASS" and alt.loc["XRAI", "Utility vs AVG"] == "FAIL"
    assert alt.loc["XRAI", "Repeatability vs 0.5"] == "PASS" and alt.loc["XRAI", "Utility vs localizer"] == "n/a"
    from saliency_audit.stats import stability

    sens = stability.sensitivity_table(base, alt).set_index("column")
    assert sens.loc["Utility vs AVG", "flipped"] and sens.loc["Utility vs AVG", "alt_metric"] == "ap"
    assert sens.loc["Repeatability vs 0.5", "alt_metric"] == "ssim_dr2"
    assert not sens.loc["Repeatability vs 0.5", "flipped"]  # FAIL -> PASS would flip; here 0.14 p 1e-4 was PASS
    assert not sens.loc["Utility vs localizer", "flipped"]  # n/a is no flip
    assert sens["flipped"].sum() == 1


def test_randomization_table_averages_repeats_and_counts_constant_maps():
    scores = _tidy("randomization", [
        ["GCAM", "inceptionv3_1", "", "cascade-mixed1", "a", "ssim", 0.2], ["GCAM", "inceptionv3_1", "", "cascade2-mixed1", "a", "ssim", 0.4],
        ["GCAM", "inceptionv3_1", "", "cascade-mixed1", "b", "ssim", 0.6], ["GCAM", "inceptionv3_1", "", "cascade2-mixed1", "b", "ssim", 0.8],
        ["GCAM", "inceptionv3_1", "", "cascade-mixed1", "a", "constant", 1], ["GCAM", "inceptionv3_1", "", "cascade2-mixed1", "a", "constant", 0],
        ["GCAM", "inceptionv3_1", "", "cascade-mixed1", "b", "constant", 1], ["GCAM", "inceptionv3_1", "", "cascade2-mixed1", "b", "constant", 1],
        ["GCAM", "inceptionv3_1", "", "cascade-mixed5", "b", "ssim", 0.99],  # not fully randomized
    ])  # fmt: skip
    thr = pd.DataFrame({"method": ["GCAM"], "metric": "ssim", "threshold": [0.45], "ci_low": 0.4, "ci_high": 0.5})
    s1 = t2.randomization_table(scores, thr, ["GCAM"], ["cascade-mixed1", "cascade2-mixed1"]).set_index("method")
    # per image: a 0.3, b 0.7 -> mean 0.5, SD of (0.3, 0.7)
    assert s1.loc["GCAM", "mean"] == pytest.approx(0.5) and s1.loc["GCAM", "n"] == 2
    assert s1.loc["GCAM", "sd"] == pytest.approx(np.std([0.3, 0.7], ddof=1))
    assert s1.loc["GCAM", "constant"] == 3 and s1.loc["GCAM", "n_maps"] == 4
    assert s1.loc["GCAM", "verdict"] == "FAIL" and s1.loc["GCAM", "ci_low"] == 0.4
    assert t2.fmt_ci(0.5, 0.41, 0.6) == "0.500 [0.410, 0.600]" and t2.fmt_ci(np.nan, 0, 1) == ""
