"""Figures render from hand-made inputs: files exist, are non-trivial, axes are labelled."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from saliency_audit.report import figures  # noqa: E402

METHODS = ["GRAD", "SG", "GCAM", "XRAI"]
STATES = ["cascade-logits", "cascade-mixed10", "cascade-mixed5", "cascade-mixed1"]


@pytest.fixture
def captured(monkeypatch):
    """Keep every figure figures.save() writes, to inspect its axes after saving."""
    figs = []
    orig = figures.save

    def keep(fig, *a, **k):
        figs.append({"xlabels": [ax.get_xlabel() for ax in fig.axes if ax.get_visible()],
                     "ylabels": [ax.get_ylabel() for ax in fig.axes if ax.get_visible()],
                     "supx": fig.get_supxlabel(),
                     "supy": fig.get_supylabel(),
                     "texts": [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes],
                     "legends": [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()],
                     "fig_legends": [t.get_text() for lg in fig.legends for t in lg.get_texts()],
                     "lines_y": [ln.get_ydata()[0] for ax in fig.axes for ln in ax.get_lines() if len(ln.get_ydata()) == 2 and ln.get_ydata()[0] == ln.get_ydata()[1]]})  # fmt: skip
        orig(fig, *a, **k)

    monkeypatch.setattr(figures, "save", keep)
    return figs


def labelled(groups_means, metric, n=25, seed=0):
    rng = np.random.default_rng(seed)
    rows = [
        pd.DataFrame(
            {"group": g, "metric": metric, "value": np.clip(rng.normal(mu, 0.08, n), 0, 1), "image_id": range(n)}
        )
        for g, mu in groups_means.items()
    ]
    return pd.concat(rows, ignore_index=True)


def check_files(tmp_path, stem):
    png, svg = tmp_path / f"{stem}.png", tmp_path / f"{stem}.svg"
    assert png.stat().st_size > 10_000 and svg.stat().st_size > 10_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and b"<svg" in svg.read_bytes()[:2000]
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporaries


def test_utility_boxplot(tmp_path, captured):
    lab = labelled({"GRAD": 0.1, "SG": 0.05, "GCAM": 0.2, "XRAI": 0.3, "AVG": 0.15, "UNET": 0.45}, "auprc")
    figures.utility_boxplot(lab, "auprc", METHODS, "AVG", "UNET", tmp_path / "f.png", tmp_path / "f.svg")
    check_files(tmp_path, "f")
    f = captured[0]
    assert f["ylabels"] == ["AUPRC (per test image)"] and "baselines" in f["xlabels"][0]
    means = lab.groupby("group")["value"].mean()
    # both baselines drawn as horizontal lines at their means, and named in the legend
    assert np.isclose(f["lines_y"], means["AVG"]).any() and np.isclose(f["lines_y"], means["UNET"]).any()
    assert {"median", "mean"} <= set(f["legends"]) and any(t.startswith("UNET mean") for t in f["legends"])


def test_similarity_boxplot(tmp_path, captured):
    rep = labelled({"GRAD": 0.2, "SG": 0.18, "GCAM": 0.6, "XRAI": 0.65, "UNET": 0.95}, "ssim")
    rpr = labelled({"GRAD": 0.17, "SG": 0.2, "GCAM": 0.5, "XRAI": 0.49, "UNET": 0.95}, "ssim", seed=1)
    figures.similarity_boxplot(
        {"Repeatability": rep, "Reproducibility": rpr}, METHODS, "UNET", 0.5, tmp_path / "f.png", tmp_path / "f.svg"
    )
    check_files(tmp_path, "f")
    f = captured[0]
    assert f["ylabels"][0].startswith("SSIM") and all(f["xlabels"])
    assert f["lines_y"].count(0.5) == 2  # low baseline on both panels
    assert any(t.startswith("high baseline (UNET") for t in f["legends"])


def test_randomization_curves(tmp_path, captured):
    rng = np.random.default_rng(0)
    rows = []
    for m in METHODS:
        for k, s in enumerate(STATES):
            rows += [
                {"method": m, "state": s, "metric": "ssim", "value": v} for v in rng.normal(0.9 - 0.15 * k, 0.05, 10)
            ]
    thr = pd.DataFrame({"method": METHODS[:3], "metric": "ssim", "threshold": [0.3, 0.35, 0.4]})
    figures.randomization_curves(pd.DataFrame(rows), thr, METHODS, STATES, tmp_path / "f.png", tmp_path / "f.svg")
    check_files(tmp_path, "f")
    f = captured[0]
    assert f["supy"].startswith("SSIM between the trained") and "re-initialised" in f["xlabels"][-1]
    assert sorted(round(y, 3) for y in f["lines_y"]) == [0.3, 0.35, 0.4]  # dashed thresholds
    assert "GRAD (threshold 0.300)" in f["texts"] and "XRAI (no threshold)" in f["texts"]
    assert any("degradation threshold" in t for t in f["fig_legends"])


def test_randomization_curves_with_repeats_show_their_mean_and_range(tmp_path, captured, monkeypatch):
    """Fig 3a with 3 cascade repeats: the line is the mean over repeats, the band their min-max."""
    cascades = [[s.replace("cascade-", f"cascade{r}-") if r > 1 else s for s in STATES] for r in (1, 2, 3)]
    rows = [
        {"method": m, "state": s, "metric": "ssim", "value": 0.9 - 0.2 * k + 0.05 * r}
        for m in METHODS[:1]
        for r, run in enumerate(cascades)
        for k, s in enumerate(run)
        for _ in range(4)
    ]
    thr = pd.DataFrame({"method": ["GRAD"], "metric": "ssim", "threshold": [0.3]})
    out = figures.randomization_curves(pd.DataFrame(rows), thr, METHODS[:1], cascades, tmp_path / "f.png")
    assert out == {"cascades": 3, "blocks": 4}
    assert any("mean of 3 cascade repeats" in t for t in captured[0]["fig_legends"])
    assert "range of the repeats" in captured[0]["fig_legends"]
    # the plotted line at each block is the mean over repeats: 0.9 - 0.2 k + mean(0, 0.05, 0.1)
    calls = []
    orig = plt.Axes.plot

    def spy(self, x, y, *a, **k):
        calls.append(np.asarray(y))
        return orig(self, x, y, *a, **k)

    monkeypatch.setattr(plt.Axes, "plot", spy)
    figures.randomization_curves(pd.DataFrame(rows), thr, METHODS[:1], cascades, tmp_path / "g.png")
    assert calls[0] == pytest.approx([0.95, 0.75, 0.55, 0.35])


def test_example_figures(tmp_path, captured):
    rng = np.random.default_rng(0)
    s = 48
    images = rng.integers(0, 255, (2, s, s), dtype=np.uint8)
    masks = np.zeros((2, s, s), np.uint8)
    masks[:, 10:25, 12:30] = 1
    maps = {m: rng.random((2, s, s)) for m in METHODS + ["AVG", "UNET"]}
    auprc = {m: rng.random(2) for m in maps}
    figures.example_overlays(images, masks, maps, auprc, ["a1", "a2"], tmp_path / "ex.png", tmp_path / "ex.svg")
    check_files(tmp_path, "ex")
    assert "ground truth" in captured[0]["supx"]
    assert f"XRAI\nAUPRC {auprc['XRAI'][0]:.3f}" in captured[0]["texts"]
    by_state = {m: {st: rng.random((s, s)) for st in ["original"] + STATES} for m in METHODS}
    figures.randomization_example(
        images[0], by_state, ["original"] + STATES, tmp_path / "rx.png", tmp_path / "rx.svg", image_id="a1"
    )
    check_files(tmp_path, "rx")
    assert "model state" in captured[1]["supx"] and "GCAM" in captured[1]["ylabels"]


def test_pr_curve_matches_sklearn(tmp_path, captured):
    from sklearn.metrics import auc, precision_recall_curve

    rng = np.random.default_rng(0)
    mask = np.zeros((40, 40), np.uint8)
    mask[5:20, 5:20] = 1
    sal = np.clip(mask * 0.5 + rng.random((40, 40)) * 0.7, 0, 1)
    out = figures.pr_curve(sal, mask, tmp_path / "pr.png", tmp_path / "pr.svg", label="XRAI")
    check_files(tmp_path, "pr")
    p, r, _ = precision_recall_curve(mask.ravel(), sal.ravel())
    assert out["auprc"] == pytest.approx(auc(r, p)) and out["prevalence"] == pytest.approx(225 / 1600)
    assert 0.14 < out["auprc"] <= 1
    assert captured[0]["xlabels"][0].startswith("recall") and captured[0]["ylabels"] == ["precision"]
    plt.close("all")
