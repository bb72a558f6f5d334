"""The paper's figures (Arun et al., Radiology: AI 2021) from tidy score tables and map arrays.

Every function takes plain pandas / numpy inputs, draws with matplotlib's Agg backend and writes a
PNG and an SVG (atomically). Figure numbers follow the paper:

* Fig 2a/b :func:`utility_boxplot` - utility (AUPRC) per method with the AVG and localizer baselines;
* Fig 2c/d :func:`example_overlays` - image + ground truth + each method's map with its AUPRC;
* Fig 3a :func:`randomization_curves` - SSIM(original, randomized) along the cascade (mean and
  range over the cascade repeats), dashed degradation thresholds;
* Fig 3b :func:`randomization_example` - one image's maps across randomization states;
* Fig 4 :func:`similarity_boxplot` - repeatability / reproducibility SSIM with the low (0.5) and high
  (localizer replicates) baselines;
* Fig S4 :func:`pr_curve` - the precision-recall curve of one map against its ground truth, with
  the released code's AUPRC (``sklearn.metrics.auc(recall, precision)``).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from ..io import atomic_path  # noqa: E402

BASELINE_COLOR = {"AVG": "#9e9e9e", "UNET": "#4d4d4d", "RNET": "#4d4d4d"}
MEDIAN = dict(color="black", linewidth=1.8)
MEAN = dict(marker="D", markerfacecolor="white", markeredgecolor="black", markersize=5)


def method_colors(methods):
    """One colour per method: tab10 without its grey (grey is kept for the baselines)."""
    cmap = plt.get_cmap("tab10")
    palette = [cmap(i) for i in range(10) if i != 7] + [plt.get_cmap("Dark2")(i) for i in range(8)]
    return {m: palette[i % len(palette)] for i, m in enumerate(methods)}


def save(fig, png, svg=None, dpi=150):
    """Write ``fig`` to ``png`` (and ``svg``) atomically and close it."""
    for path in [p for p in (png, svg) if p]:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=Path(path).suffix.lstrip("."))
    plt.close(fig)


def empty_figure(png, svg=None, message="no data", dpi=150):
    """A placeholder figure that says why there is nothing to show (e.g. no test image with maps)."""
    fig, ax = plt.subplots(figsize=(5, 1.5))
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    ax.set_axis_off()
    save(fig, png, svg, dpi)


def _box(ax, groups, values, colors, mean_lines=()):
    """Box plots (median line, mean diamond) of ``values`` (list of arrays), one per group."""
    keep = [(g, np.asarray(v, float)) for g, v in zip(groups, values) if len(v)]
    if not keep:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        return
    groups, values = zip(*keep)
    bp = ax.boxplot(
        values,
        tick_labels=groups,
        showmeans=True,
        meanprops=MEAN,
        medianprops=MEDIAN,
        patch_artist=True,
        widths=0.6,
        flierprops=dict(marker=".", markersize=3, alpha=0.5),
    )
    for patch, g in zip(bp["boxes"], groups):
        patch.set_facecolor(colors.get(g, "#cccccc"))
        patch.set_alpha(0.55)
    ax.tick_params(axis="x", labelrotation=45)
    for lab in ax.get_xticklabels():
        lab.set_horizontalalignment("right")


def _legend(ax, extra=(), where="right"):
    """Legend outside the axes (right or below), so it never hides a box."""
    handles = [Line2D([], [], **MEDIAN, label="median"), Line2D([], [], linestyle="none", **MEAN, label="mean")]
    if where == "right":
        ax.legend(handles=handles + list(extra), fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(handles=handles + list(extra), fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.27), ncol=1)


def utility_boxplot(
    labelled: pd.DataFrame, metric: str, methods, avg: str, localizer: str, png, svg=None, title="", dpi=150
):
    """Fig 2a/b: per-image utility of each method's map, with the AVG and localizer baselines.

    Parameters
    ----------
    labelled
        Utility rows with a ``group`` column (:func:`saliency_audit.stats.groups.label_groups`).
    metric
        ``auprc`` (Arun et al. Fig 2), ``ap`` or ``auroc``.
    avg, localizer
        Group labels of the low (AVG) and high (U-Net / RetinaNet) baselines.
    """
    d = labelled[labelled["metric"] == metric]
    order = list(methods) + [avg, localizer]
    colors = method_colors(methods) | BASELINE_COLOR
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(order), 4.6))
    _box(ax, order, [d.loc[d["group"] == g, "value"] for g in order], colors)
    extra = []
    for g, style in ((avg, ":"), (localizer, "--")):
        vals = d.loc[d["group"] == g, "value"]
        if len(vals):
            ax.axhline(vals.mean(), color=BASELINE_COLOR.get(g, "k"), linestyle=style, linewidth=1.2, zorder=0)
            extra.append(
                Line2D([], [], color=BASELINE_COLOR.get(g, "k"), linestyle=style, label=f"{g} mean {vals.mean():.3f}")
            )
    ax.set_ylabel(metric.upper() + " (per test image)")
    ax.set_xlabel("saliency method (InceptionV3) and baselines")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title or f"Utility: {metric.upper()} against the ground truth")
    ax.grid(axis="y", alpha=0.3)
    _legend(ax, extra)
    save(fig, png, svg, dpi)


def similarity_boxplot(
    panels: dict, methods, localizer: str, low_baseline: float, png, svg=None, metric="ssim", title="", dpi=150
):
    """Fig 4: repeatability and reproducibility SSIM per method, with both baselines.

    Parameters
    ----------
    panels
        ``{"Repeatability": labelled rows, "Reproducibility": labelled rows}`` (a ``group`` column;
        the localizer group holds the SSIM of two localizer replicates' maps = high baseline).
    low_baseline
        The low baseline SSIM (0.5, ``criteria.low_baseline_ssim``).
    """
    order = list(methods) + [localizer]
    colors = method_colors(methods) | BASELINE_COLOR
    fig, axes = plt.subplots(
        1, len(panels), figsize=(0.5 + 0.7 * len(order) * len(panels), 4.6), sharey=True, squeeze=False
    )
    for ax, (name, lab) in zip(axes[0], panels.items()):
        d = lab[lab["metric"] == metric]
        _box(ax, order, [d.loc[d["group"] == g, "value"] for g in order], colors)
        ax.axhline(low_baseline, color="#1f77b4", linestyle=":", linewidth=1.4, zorder=0)
        extra = [
            Line2D([], [], color="#1f77b4", linestyle=":", label=f"low baseline {metric.upper()} {low_baseline:g}")
        ]
        hi = d.loc[d["group"] == localizer, "value"]
        if len(hi):
            ax.axhline(hi.mean(), color=BASELINE_COLOR.get(localizer, "k"), linestyle="--", linewidth=1.2, zorder=0)
            extra.append(
                Line2D(
                    [], [], color="k", linestyle="--", label=f"high baseline ({localizer} replicates) {hi.mean():.3f}"
                )
            )
        ax.set_title(name)
        ax.set_xlabel("saliency method and localizer baseline")
        ax.grid(axis="y", alpha=0.3)
        _legend(ax, extra, where="below")
    axes[0, 0].set_ylabel(f"{metric.upper()} between the two models' maps")
    axes[0, 0].set_ylim(-0.05, 1.05)
    if title:
        fig.suptitle(title)
    save(fig, png, svg, dpi)


def randomization_curves(
    scores: pd.DataFrame, thresholds: pd.DataFrame, methods, cascades, png, svg=None, metric="ssim", title="", dpi=150
):
    """Fig 3a: mean similarity (original vs randomized map) along the cascade, one panel per method.

    Parameters
    ----------
    scores
        ``randomization.csv`` rows of the primary model (method, state, metric, value).
    thresholds
        ``randomization_thresholds.csv`` (method, metric, threshold): dashed lines.
    cascades
        One list of states per cascade repeat, each in cascade order (``plan.cascade_states``); a
        single flat list of states is one repeat. The line is the mean over repeats of the mean over
        images at each block; the band is the repeats' range (min to max), or +/- 1 SD over images
        with a single repeat.
    """
    if cascades and isinstance(cascades[0], str):
        cascades = [list(cascades)]
    cascades = [list(c) for c in cascades if len(c)]
    n_blocks = max((len(c) for c in cascades), default=0)
    states = [s for c in cascades for s in c]
    d = scores[(scores["metric"] == metric) & scores["state"].isin(states)]
    thr = (
        thresholds[thresholds["metric"] == metric].set_index("method")["threshold"]
        if len(thresholds)
        else pd.Series(dtype=float)
    )
    ncol = min(4, max(1, len(methods)))
    nrow = int(np.ceil(len(methods) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.9 * nrow), sharex=True, sharey=True, squeeze=False)
    colors = method_colors(methods)
    x = np.arange(n_blocks)
    labels = [s.split("-", 1)[1] if "-" in s else s for s in (cascades[0] if cascades else [])]
    repeated = len(cascades) > 1
    for ax, m in zip(axes.flat, methods):
        g = d[d["method"] == m].groupby("state")["value"]
        means = np.array([g.mean().reindex(c).to_numpy() for c in cascades]) if cascades else np.zeros((0, 0))
        if len(means):
            mean = np.nanmean(means, axis=0) if np.isfinite(means).any() else means[0]
            if repeated:
                lo, hi = np.nanmin(means, axis=0), np.nanmax(means, axis=0)
            else:
                sd = g.std().reindex(cascades[0]).to_numpy()
                lo, hi = mean - sd, mean + sd
            ax.plot(x, mean, "-o", color=colors[m], markersize=3)
            ax.fill_between(x, lo, hi, color=colors[m], alpha=0.2, linewidth=0)
        if m in thr.index:
            ax.axhline(thr[m], color=colors[m], linestyle="--", linewidth=1.2)
            ax.set_title(f"{m} (threshold {thr[m]:.3f})", fontsize=10)
        else:
            ax.set_title(f"{m} (no threshold)", fontsize=10)
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(methods) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xticks(x, labels, rotation=60, fontsize=7)
        ax.set_xlabel("re-initialised from the top down to")
    fig.supylabel(f"{metric.upper()} between the trained and the randomized model's map", fontsize=10)
    # the bottom row may have hidden panels: label the last visible panel of each column too
    for j in range(ncol):
        col = [axes[i, j] for i in range(nrow) if i * ncol + j < len(methods)]
        if col:
            col[-1].set_xlabel("re-initialised from the top down to")
            col[-1].xaxis.set_tick_params(labelbottom=True)
    from matplotlib.patches import Patch

    what = f"mean {metric.upper()} over test images" + (
        f", mean of {len(cascades)} cascade repeats" if repeated else ""
    )
    handles = [
        Line2D([], [], color="k", marker="o", markersize=3, label=what),
        Patch(color="k", alpha=0.2, label="range of the repeats" if repeated else "± 1 SD"),
        Line2D([], [], color="k", linestyle="--", label="degradation threshold (random pairs of different images)"),
    ]
    fig.suptitle(title or "Cascading randomization (InceptionV3)")
    fig.legend(handles=handles, loc="upper center", ncol=3, fontsize=8, bbox_to_anchor=(0.5, 0.955), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    save(fig, png, svg, dpi)
    return {"cascades": len(cascades), "blocks": n_blocks}


def randomization_example(image: np.ndarray, maps: dict, states, png, svg=None, image_id="", title="", dpi=150):
    """Fig 3b: one image's maps from the trained model and each cascade state.

    Parameters
    ----------
    image
        (S, S) uint8 or float image.
    maps
        ``{method: {state: (S, S) normalized map}}``; ``original`` is the trained model.
    states
        Column order (``original`` first).
    """
    methods = list(maps)
    fig, axes = plt.subplots(
        len(methods), len(states) + 1, figsize=(1.35 * (len(states) + 1), 1.45 * len(methods) + 0.6), squeeze=False
    )
    for i, m in enumerate(methods):
        axes[i, 0].imshow(image, cmap="gray")
        for j, s in enumerate(states, start=1):
            mp = maps[m].get(s)
            if mp is not None:
                axes[i, j].imshow(mp, cmap="inferno", vmin=0, vmax=1)
            else:
                axes[i, j].text(0.5, 0.5, "missing", ha="center", va="center", fontsize=6)
        axes[i, 0].set_ylabel(m, fontsize=8, rotation=0, ha="right", va="center")
    axes[0, 0].set_title("image", fontsize=7)
    for j, s in enumerate(states, start=1):
        axes[0, j].set_title(s.replace("cascade-", "") if s != "original" else "trained", fontsize=7, rotation=45)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.supxlabel("model state: trained, then re-initialised from the top down to the named block", fontsize=8)
    fig.supylabel("saliency method", fontsize=8)
    fig.suptitle(title or f"Cascading randomization, image {image_id}", fontsize=9)
    save(fig, png, svg, dpi)


def example_overlays(images, masks, maps: dict, scores: dict, ids, png, svg=None, metric="AUPRC", title="", dpi=150):
    """Fig 2c/d: each example image with its ground truth, and each method's map with its utility.

    Parameters
    ----------
    images, masks
        (N, S, S) images and 0/1 ground-truth masks (boxes filled) of the examples.
    maps
        ``{column name: (N, S, S) map in [0, 1]}`` (methods, then AVG and the localizer).
    scores
        ``{column name: (N,) utility}`` shown in each panel title (NaN: not shown).
    """
    cols = list(maps)
    n = len(ids)
    fig, axes = plt.subplots(n, len(cols) + 1, figsize=(1.55 * (len(cols) + 1), 1.7 * n + 0.5), squeeze=False)
    for i in range(n):
        axes[i, 0].imshow(images[i], cmap="gray")
        if masks[i].any():
            axes[i, 0].contour(masks[i], levels=[0.5], colors="lime", linewidths=0.8)
        axes[i, 0].set_ylabel(str(ids[i]), fontsize=7)
        if i == 0:
            axes[i, 0].set_title("image + ground truth", fontsize=7)
        for j, c in enumerate(cols, start=1):
            ax = axes[i, j]
            ax.imshow(images[i], cmap="gray")
            ax.imshow(maps[c][i], cmap="jet", alpha=0.45, vmin=0, vmax=1)
            if masks[i].any():
                ax.contour(masks[i], levels=[0.5], colors="lime", linewidths=0.6)
            v = scores.get(c, [np.nan] * n)[i]
            ax.set_title(f"{c}\n{metric} {v:.3f}" if np.isfinite(v) else c, fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.supxlabel("map overlaid on the image (jet, 0-1); ground truth outlined in green", fontsize=8)
    fig.supylabel("test image", fontsize=8)
    fig.suptitle(title or "Example maps", fontsize=9)
    save(fig, png, svg, dpi)


def pr_curve(saliency: np.ndarray, mask: np.ndarray, png, svg=None, label="", title="", dpi=150):
    """Fig S4: pixel-wise precision-recall curve of one map against its ground-truth mask.

    AUPRC as in the released code: ``sklearn.metrics.auc(recall, precision)`` over
    ``precision_recall_curve(mask, map)``; average precision (``average_precision_score``) also shown.

    Returns
    -------
    dict
        ``auprc``, ``ap`` and ``prevalence`` (the no-skill precision).
    """
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve

    y = np.asarray(mask).ravel() > 0
    s = np.asarray(saliency, float).ravel()
    precision, recall, _ = precision_recall_curve(y, s)
    out = {
        "auprc": float(auc(recall, precision)),
        "ap": float(average_precision_score(y, s)),
        "prevalence": float(y.mean()),
    }
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    ax.plot(
        recall,
        precision,
        drawstyle="steps-post",
        color="#1f77b4",
        label=f"{label} AUPRC {out['auprc']:.3f} (AP {out['ap']:.3f})",
    )
    ax.axhline(out["prevalence"], color="grey", linestyle="--", label=f"no skill (prevalence {out['prevalence']:.3f})")
    ax.set_xlabel("recall (fraction of ground-truth pixels)")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    ax.set_title(title or "Precision-recall curve of one map", fontsize=9)
    save(fig, png, svg, dpi)
    return out
