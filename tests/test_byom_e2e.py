"""Bring your own maps through Snakemake (no TensorFlow job): a primary-model-only index and an index
with every role. Utility scores are checked against scikit-learn on the imported maps and the
ground truth; with no localizer, Fig 2c/d and Fig S4 are left out and the report says why."""

import zipfile

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score

from conftest import r_missing_reason, snakemake
from saliency_audit import io
from saliency_audit.metrics import criteria
from test_byom import IDS, make_byom

pytestmark = pytest.mark.slow


def byom_config(root, roles: str):
    """The CheXlocalize-style BYOM set of tests/test_byom.py; ``roles``: 'primary' or 'all'."""
    config, masks = make_byom(root / "input")
    ds = config["datasets"]["cxl"]
    if roles == "primary":  # one model, trained maps only, no model / state columns
        df = pd.read_csv(root / "input" / "index.csv", dtype=str, keep_default_na=False)
        df = df[(df["model"] == "netA") & (df["state"] == "")][["image_id", "method", "path", "finding"]]
        df.to_csv(root / "input" / "index.csv", index=False)
        ds["maps"] = {"index_csv": str(root / "input" / "index.csv")}
    config["image_size"] = 80  # the schema's minimum (InceptionV3); the dataset's own grid is 32
    config.pop("randomization")  # schema defaults
    config["stats"] = {"enabled": r_missing_reason() is None}
    path = root / "byom.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, masks


def check_utility_against_sklearn(res, masks, model, method):
    """Every image's AUPRC (trapezoidal PR area), AP and AUROC against scikit-learn."""
    util = pd.read_csv(res / "scores" / "utility.csv", dtype={"image_id": str})
    ids, maps = criteria.read_maps(res / "maps" / model / "original" / method / "test_000.npz")
    shard = io.read_shard(res / "data" / "shards" / "test_000.npz")
    truth = dict(zip(np.asarray(shard["ids"]).astype(str), shard["masks"]))
    norm = criteria.normalize(maps, method, "released")
    assert list(ids) == [IDS[0], IDS[1], IDS[3]]  # the images with a finding (image 2 has none)
    for i, iid in enumerate(ids):
        y = truth[iid].ravel().astype(bool)
        np.testing.assert_array_equal(y, masks[IDS.index(iid)].ravel())  # the hand-made ground truth
        prec, rec, _ = precision_recall_curve(y, norm[i].ravel())
        ref = {"auprc": auc(rec, prec), "ap": average_precision_score(y, norm[i].ravel()),
               "auroc": roc_auc_score(y, norm[i].ravel())}
        for metric, expected in ref.items():
            got = util.query("model_a == @model and state == 'original' and method == @method "
                             "and metric == @metric and image_id == @iid")["value"]
            assert len(got) == 1 and got.iloc[0] == pytest.approx(expected, abs=1e-9), (model, method, metric, iid)
    return util


def run_byom(root, roles):
    """The whole workflow on the BYOM set; returns (config file, results/cxl, hand-made masks)."""
    config, masks = byom_config(root, roles)
    snakemake(root, configfile=config)
    return config, root / "results" / "cxl", masks


def test_byom_primary_model_only(tmp_path):
    config, res, masks = run_byom(tmp_path, "primary")
    util = check_utility_against_sklearn(res, masks, "inceptionv3_1", "gradcam")
    check_utility_against_sklearn(res, masks, "inceptionv3_1", "ig")
    assert set(util["model_a"]) == {"inceptionv3_1"}
    assert {"iou_otsu", "iou_0.5", "hit"} <= set(util["metric"])  # CheXlocalize's localization metrics
    assert sorted(p.name for p in (res / "scores").glob("*.csv")) == ["summary.csv", "utility.csv"]
    # Table 2: no baseline to compare with (no AVG without train masks, no localizer): every column n/a
    t2 = pd.read_csv(res / "tables" / "table2.csv", keep_default_na=False)
    assert list(t2["method"]) == ["gradcam", "ig"]
    assert (t2.drop(columns="method") == "n/a").all().all()
    # the figures that show the localizer's maps are left out, and the report says why
    figs = sorted(p.name for p in (res / "figures").iterdir())
    assert figs == ["fig2_utility.png", "fig2_utility.svg"]
    assert not list((tmp_path / "results").glob("cxl/maps/unet_*"))
    snakemake(tmp_path, "--report", "report.zip", configfile=config)
    with zipfile.ZipFile(tmp_path / "report.zip") as z:
        html = next(z.read(n).decode() for n in z.namelist() if n.endswith("report.html"))
    for fig in ("fig2_examples", "figS4_pr_curve"):
        assert (f"<strong>{fig}</strong> left out: dataset cxl has no localizer maps (unet_1; for bring-your-own "
                "maps, datasets.cxl.maps.models.localizer)") in html


def test_byom_all_roles(tmp_path):
    _, res, masks = run_byom(tmp_path, "all")
    util = check_utility_against_sklearn(res, masks, "inceptionv3_1", "gradcam")
    check_utility_against_sklearn(res, masks, "unet_1", "PRED")
    check_utility_against_sklearn(res, masks, "unet_2", "PRED")
    assert set(util["model_a"]) == {"inceptionv3_1", "inceptionv3_2", "densenet121_1", "unet_1", "unet_2"}
    assert {p.stem for p in (res / "scores").glob("*.csv")} >= {
        "utility", "randomization", "repeatability", "reproducibility", "randomization_thresholds"
    }
    figs = {p.stem for p in (res / "figures").glob("*.png")}
    assert {"fig2_utility", "fig2_examples", "figS4_pr_curve", "fig3a_randomization",
            "fig3b_randomization_example", "fig4_repeatability_reproducibility"} <= figs
    labels = pd.read_csv(res / "byom" / "labels.csv")
    assert dict(zip(labels["internal"], labels["label"]))["unet_2"] == "seg2"
