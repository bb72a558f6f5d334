"""One function per figure rule of rules/report.smk: read the rule's inputs, draw, write PNG + SVG.

Each function takes the rule's named input (a dict or Snakemake's ``Namedlist``), the figure's
settings (:func:`figure_settings`: only the keys of :data:`KEYS` for that figure, so a rule's
params change exactly when its figure would), the dataset, the PNG and SVG paths and, for the
example figures, the test shard shown; it returns a line for the job's log. The drawing is in
:mod:`.figures`, the file plans and arrays of the example figures in :mod:`.examples`.
"""

from __future__ import annotations

from ..stats import groups
from ..stats.run import read_scores, read_thresholds
from . import examples, figures

#: The settings (:func:`saliency_audit.stats.run.settings`) each figure reads.
KEYS = {
    "fig2_utility": ("methods", "localizer", "full_states", "primary", "dpi"),
    "fig2_examples": (
        "methods", "localizer", "primary", "images", "max_images", "normalization", "cam_normalization",
        "example_images", "dpi",
    ),
    "figS4_pr_curve": (
        "methods", "localizer", "primary", "images", "max_images", "normalization", "cam_normalization",
        "example_images", "pr_method", "dpi",
    ),
    "fig3a_randomization": ("methods", "primary", "cascades", "dpi"),
    "fig3b_randomization_example": (
        "states", "randomized_methods", "images", "max_images", "normalization", "cam_normalization", "dpi",
    ),
    "fig4_repeatability_reproducibility": (
        "methods", "localizer", "full_states", "primary", "low_baseline_ssim", "dpi",
    ),
}  # fmt: skip


def figure_settings(settings: dict, figure: str) -> dict:
    """The part of a dataset's settings that ``figure`` reads (a figure rule's params)."""
    return {k: settings[k] for k in KEYS[figure]}


def _labelled(scores, criterion, s, baseline_rows=None):
    return groups.label_groups(
        scores, criterion, s["methods"], s["localizer"], s["full_states"], s["primary"], baseline_rows=baseline_rows
    )


def fig2_utility(inputs, s: dict, dataset: str, png: str, svg: str, shard=None) -> str:
    """Fig 2a/b: AUPRC per method with the AVG and localizer baselines."""
    lab = _labelled(read_scores({"utility": inputs["utility"]})["utility"], "utility", s)
    loc = groups.LOCALIZER_LABEL[s["localizer"]]
    title = f"Utility of InceptionV3 saliency maps ({dataset})"
    figures.utility_boxplot(lab, "auprc", s["methods"], groups.AVG, loc, title=title, png=png, svg=svg, dpi=s["dpi"])
    return f"wrote {png}"


def fig4_repeatability_reproducibility(inputs, s: dict, dataset: str, png: str, svg: str, shard=None) -> str:
    """Fig 4: repeatability and reproducibility SSIM with the low and high baselines."""
    sc = read_scores(dict(inputs.items()))
    panels = {
        c.capitalize(): _labelled(sc[c], c, s, baseline_rows=sc.get("repeatability"))
        for c in ("repeatability", "reproducibility")
        if c in sc
    }
    loc = groups.LOCALIZER_LABEL[s["localizer"]]
    title = f"Repeatability and reproducibility ({dataset})"
    figures.similarity_boxplot(
        panels, s["methods"], loc, s["low_baseline_ssim"], title=title, png=png, svg=svg, dpi=s["dpi"]
    )
    return f"wrote {png}"


def fig3a_randomization(inputs, s: dict, dataset: str, png: str, svg: str, shard=None) -> str:
    """Fig 3a: SSIM along the cascade (every repeat), with the degradation thresholds."""
    sc = read_scores({"randomization": inputs["randomization"]})["randomization"]
    figures.randomization_curves(
        sc[sc["model_a"] == s["primary"]],
        read_thresholds(inputs["thresholds"]),
        s["methods"],
        s["cascades"],
        title=f"Cascading randomization of InceptionV3 ({dataset})",
        png=png,
        svg=svg,
        dpi=s["dpi"],
    )
    return f"wrote {png}"


def fig3b_randomization_example(inputs, s: dict, dataset: str, png: str, svg: str, shard=None) -> str:
    """Fig 3b: the first example image's maps across the states of cascade repeat 1."""
    files = examples.randomization_files_from_input(inputs, s)
    image_id, image, maps = examples.randomization_data(files, s)
    if image_id is None:
        figures.empty_figure(message=f"no test image with maps in test shard {shard}", png=png, svg=svg, dpi=s["dpi"])
        return f"wrote {png} (no example image)"
    title = f"Cascading randomization, test image {image_id} ({dataset})"
    states = ["original"] + list(s["states"])
    figures.randomization_example(image, maps, states, image_id=image_id, title=title, png=png, svg=svg, dpi=s["dpi"])
    return f"wrote {png}"


def _overlay(inputs, s):
    files = examples.overlay_files_from_input(inputs, s)
    return examples.overlay_data(files, s, read_scores({"utility": inputs["utility"]})["utility"])


def fig2_examples(inputs, s: dict, dataset: str, png: str, svg: str, shard=None) -> str:
    """Fig 2c/d: the first example images with each method's map and its AUPRC."""
    ids, images, masks, maps, scores = _overlay(inputs, s)
    if not len(ids):
        figures.empty_figure(message=f"no test image with maps in test shard {shard}", png=png, svg=svg, dpi=s["dpi"])
        return f"wrote {png} (no example image)"
    title = f"Example maps with their AUPRC ({dataset}, InceptionV3)"
    figures.example_overlays(images, masks, maps, scores, ids, title=title, png=png, svg=svg, dpi=s["dpi"])
    return f"wrote {png}"


def figS4_pr_curve(inputs, s: dict, dataset: str, png: str, svg: str, shard=None) -> str:
    """Fig S4: the precision-recall curve of ``report.pr_method``'s map of the first example image
    with a finding (the first method when ``pr_method`` is not among the methods)."""
    ids, images, masks, maps, scores = _overlay(inputs, s)
    kw = dict(png=png, svg=svg, dpi=s["dpi"])
    if not len(ids):
        figures.empty_figure(message=f"no test image with maps in test shard {shard}", **kw)
        return f"wrote {png} (no example image)"
    m = s["pr_method"] if s["pr_method"] in s["methods"] else s["methods"][0]
    i = next((k for k in range(len(ids)) if masks[k].any()), None)  # an image with ground truth
    if i is None:
        figures.empty_figure(message="no example image with a finding", **kw)
        return f"wrote {png} (no example image with a finding)"
    res = figures.pr_curve(maps[m][i], masks[i], label=m, title=f"{m} map of test image {ids[i]} ({dataset})", **kw)
    return (
        f"PR curve of {m} on {ids[i]}: AUPRC {res['auprc']:.4f} (scores table: {scores[m][i]:.4f}), "
        f"AP {res['ap']:.4f}; wrote {png}"
    )
