"""The paper's figures of one dataset (the rule name says which): PNG + SVG."""

import pandas as pd

from saliency_audit.report import examples, figures
from saliency_audit.smk import rule_logging
from saliency_audit.stats import groups, run

with rule_logging(snakemake) as log:
    s = snakemake.params.settings
    ds, rule, out = snakemake.wildcards.dataset, snakemake.rule, snakemake.output
    loc = groups.LOCALIZER_LABEL[s["localizer"]]
    kw = dict(png=out.png, svg=out.svg, dpi=s["dpi"])
    if rule == "figure_utility":
        lab = groups.label_groups(
            run.read_scores({"utility": snakemake.input.utility})["utility"],
            "utility",
            s["methods"],
            s["localizer"],
            s["full_states"],
            s["primary"],
        )
        figures.utility_boxplot(
            lab, "auprc", s["methods"], groups.AVG, loc, title=f"Utility of InceptionV3 saliency maps ({ds})", **kw
        )
    elif rule == "figure_similarity":
        sc = run.read_scores(dict(snakemake.input.items()))
        panels = {
            c.capitalize(): groups.label_groups(
                sc[c],
                c,
                s["methods"],
                s["localizer"],
                s["full_states"],
                s["primary"],
                baseline_rows=sc.get("repeatability"),
            )
            for c in ("repeatability", "reproducibility")
            if c in sc
        }
        figures.similarity_boxplot(
            panels, s["methods"], loc, s["low_baseline_ssim"], title=f"Repeatability and reproducibility ({ds})", **kw
        )
    elif rule == "figure_randomization":
        sc = run.read_scores({"randomization": snakemake.input.randomization})["randomization"]
        sc = sc[sc["model_a"] == s["primary"]]
        figures.randomization_curves(
            sc,
            run.read_thresholds(snakemake.input.thresholds),
            s["methods"],
            s["cascades"],
            title=f"Cascading randomization of InceptionV3 ({ds})",
            **kw,
        )
    elif rule == "figure_randomization_example":
        files = examples.randomization_files_from_input(snakemake.input, s)
        image_id, image, maps = examples.randomization_data(files, s)
        if image_id is None:
            figures.empty_figure(message=f"no test image with maps in test shard {snakemake.params.shard}", **kw)
        else:
            figures.randomization_example(
                image,
                maps,
                ["original"] + s["states"],
                image_id=image_id,
                title=f"Cascading randomization, test image {image_id} ({ds})",
                **kw,
            )
    elif rule in ("figure_examples", "figure_pr_curve"):
        files = examples.overlay_files_from_input(snakemake.input, s)
        utility = run.read_scores({"utility": snakemake.input.utility})["utility"]
        ids, images, masks, maps, scores = examples.overlay_data(files, s, utility)
        if not len(ids):
            figures.empty_figure(message=f"no test image with maps in test shard {snakemake.params.shard}", **kw)
        elif rule == "figure_examples":
            figures.example_overlays(
                images, masks, maps, scores, ids, title=f"Example maps with their AUPRC ({ds}, InceptionV3)", **kw
            )
        else:
            m = s["pr_method"] if s["pr_method"] in s["methods"] else s["methods"][0]
            i = next((k for k in range(len(ids)) if masks[k].any()), None)  # an image with ground truth
            if i is None:
                figures.empty_figure(message="no example image with a finding", **kw)
            else:
                title = f"{m} map of test image {ids[i]} ({ds})"
                res = figures.pr_curve(maps[m][i], masks[i], label=m, title=title, **kw)
                msg = "PR curve of %s on %s: AUPRC %.4f (scores table: %.4f), AP %.4f"
                log.info(msg, m, ids[i], res["auprc"], scores[m][i], res["ap"])
    else:
        raise ValueError(f"no figure for rule {rule}")
    log.info("wrote %s", out.png)
