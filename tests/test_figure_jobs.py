"""One package function per figure rule (report.figure_jobs), each given only its own settings
(figure_settings: what the rule's params carry), on hand-built score tables, shard and maps."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import auc, precision_recall_curve

from saliency_audit import io, paths
from saliency_audit.config import with_defaults
from saliency_audit.metrics import tables
from saliency_audit.report import examples, figure_jobs
from saliency_audit.stats.run import settings as dataset_settings

S, DS = 16, "d"
CONFIG = with_defaults({
    "datasets": {DS: {"kind": "synthetic", "task": "segmentation"}},
    "saliency": {"methods": ["GRAD", "GCAM"], "normalization": "minmax"},
    "randomization": {"repeats": 2},
    "report": {"example_images": 2, "pr_method": "GCAM", "dpi": 50},
})
SETTINGS = dataset_settings(CONFIG, DS)
IDS = ["a", "b", "c"]  # a and c have a finding


def write_inputs(root):
    """Shard 000, every maps file the example figures read, the utility and similarity tables."""
    rng = np.random.default_rng(0)
    masks = np.zeros((3, S, S), np.uint8)
    masks[0, 2:8, 2:8] = masks[2, 6:14, 4:10] = 1
    images = rng.integers(0, 255, (3, S, S)).astype(np.uint8)
    io.write_npz(paths.path(paths.SHARD, root, dataset=DS, split="test", shard="000"), ids=np.array(IDS),
                 images=images, masks=masks, labels=np.array([1, 0, 1], np.int8),
                 has_finding=np.array([True, False, True]), boxes=np.zeros((0, 5), np.float32))  # fmt: skip
    with_maps = np.array(["a", "c"])
    plan = examples.overlay_files(SETTINGS, DS, "000", results=root)
    rand = examples.randomization_files(SETTINGS, DS, "000", results=root)
    for f in [*plan["maps"].values(), plan["localizer"], *examples.flat(rand["maps"])]:
        io.write_npz(f, ids=with_maps, maps=rng.random((2, S, S)).astype(np.float32))
    Path(plan["avg"]).parent.mkdir(parents=True)
    np.save(plan["avg"], masks.mean(axis=0))
    util, sim = [], []
    for m in SETTINGS["methods"]:
        for model, state in (("inceptionv3_1", "original"), ("inceptionv3_1", SETTINGS["full_states"][0])):
            util.append(tables.rows(DS, "utility", m, model, "", state, with_maps, {"auprc": rng.random(2)}))
        for c, other in (("repeatability", "inceptionv3_2"), ("reproducibility", "densenet121_1")):
            sim.append(tables.rows(DS, c, m, "inceptionv3_1", other, "original", with_maps, {"ssim": rng.random(2)}))
        for st in [s for run in SETTINGS["cascades"] for s in run]:
            sim.append(tables.rows(DS, "randomization", m, "inceptionv3_1", "", st, with_maps, {"ssim": rng.random(2)}))
    util.append(tables.rows(DS, "utility", "AVG", "avg", "", "original", with_maps, {"auprc": rng.random(2)}))
    util.append(tables.rows(DS, "utility", "PRED", "unet_1", "", "original", with_maps, {"auprc": rng.random(2)}))
    high = {"ssim": rng.random(2)}  # the localizer replicates' similarity
    sim.append(tables.rows(DS, "repeatability", "PRED", "unet_1", "unet_2", "original", with_maps, high))
    files = {"utility": tables.concat(util)}
    both = tables.concat(sim)
    for c in ("repeatability", "reproducibility", "randomization"):
        files[c] = both[both["criterion"] == c]
    out = {}
    for c, df in files.items():
        out[c] = paths.path(paths.SCORES, root, dataset=DS, criterion=c)
        io.write_csv(out[c], df)
    out["thresholds"] = paths.path(paths.THRESHOLDS, root, dataset=DS)
    pd.DataFrame({"method": SETTINGS["methods"], "metric": "ssim", "threshold": [0.3, 0.4]}).to_csv(
        out["thresholds"], index=False
    )
    return plan, rand, out, files["utility"]


def test_every_figure_draws_from_its_own_settings_only(tmp_path):
    root = str(tmp_path / "results")
    plan, rand, scores, utility = write_inputs(root)
    overlay = {"shard": plan["shard"], "maps": list(plan["maps"].values()), "localizer": plan["localizer"],
               "avg": plan["avg"], "utility": scores["utility"]}  # fmt: skip
    inputs = {
        "fig2_utility": {"utility": scores["utility"]},
        "fig2_examples": overlay,
        "figS4_pr_curve": overlay,
        "fig3a_randomization": {k: scores[k] for k in ("randomization", "thresholds")},
        "fig3b_randomization_example": {"shard": rand["shard"], "maps": examples.flat(rand["maps"])},
        "fig4_repeatability_reproducibility": {k: scores[k] for k in ("repeatability", "reproducibility")},
    }
    assert set(inputs) == set(figure_jobs.KEYS)
    lines = {}
    for fig, inp in inputs.items():
        s = figure_jobs.figure_settings(SETTINGS, fig)
        png, svg = tmp_path / f"{fig}.png", tmp_path / f"{fig}.svg"
        lines[fig] = getattr(figure_jobs, fig)(inp, s, DS, str(png), str(svg), shard="000")
        assert png.stat().st_size > 1000 and svg.stat().st_size > 1000, fig
        assert "no example" not in lines[fig], lines[fig]
    # Fig S4: report.pr_method's map of the first example image with a finding, its AUPRC as sklearn's
    # auc(recall, precision) on the raw map (min-max scaling keeps the ranks), and the scores table's value
    ids, maps = np.load(plan["maps"]["GCAM"])["ids"], np.load(plan["maps"]["GCAM"])["maps"]
    mask = io.read_shard(plan["shard"])["masks"][0]
    precision, recall, _ = precision_recall_curve(mask.ravel(), maps[0].ravel())
    got = re.search(r"PR curve of GCAM on a: AUPRC ([\d.]+) \(scores table: ([\d.]+)\)", lines["figS4_pr_curve"])
    assert got, lines["figS4_pr_curve"]
    assert float(got.group(1)) == pytest.approx(auc(recall, precision), abs=1e-4)
    table = utility[(utility["method"] == "GCAM") & (utility["state"] == "original") & (utility["image_id"] == "a")]
    assert float(got.group(2)) == pytest.approx(table["value"].iloc[0], abs=1e-4) and ids[0] == "a"

