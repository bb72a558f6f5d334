"""The paper / released code / this run table (saliency_audit.paper) against the config and the docs."""

import copy
from pathlib import Path

import yaml
from snakemake.utils import validate

from saliency_audit import paper

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = str(ROOT / "schemas" / "config.schema.yaml")


def _leaves(d, prefix=""):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}"


def _config(path):
    c = yaml.safe_load((ROOT / path).read_text())
    validate(c, SCHEMA)
    return c


def test_docs_protocol_table_is_the_module_table():
    text = (ROOT / "docs" / "protocol.md").read_text()
    table = text.split("<!-- paper-table:start -->\n", 1)[1].split("<!-- paper-table:end -->", 1)[0]
    assert table == paper.protocol_table()
    assert table.splitlines()[0] == "| setting (config key) | paper text | released code | our default and why |"


def test_every_demo_override_has_a_line():
    """Each result-changing key config.yaml sets (beyond datasets, shards, the seed, the job shape)."""
    demo = yaml.safe_load((ROOT / "config.yaml").read_text())
    skip = ("seed", "datasets.", "shards.", "saliency.job_per")
    keys = [k for k in _leaves(demo) if not k.startswith(skip)]
    assert keys, "config.yaml sets no keys?"
    missing = [k for k in keys if not any(k == s or k.startswith(s + ".") for s in paper.SETTING_KEYS)]
    assert not missing, missing
    required = {"image_size", "saliency.params.XRAI.steps", "saliency.target", "saliency.noise",
                "randomization.initializer", "randomization.repeats", "randomization.threshold_partners", "randomization.blocks",
                "criteria.ssim_data_range", "saliency.cam_normalization", "utility.auprc",
                "saliency.params.SG.samples", "saliency.params.SG.noise", "saliency.params.IG.steps",
                "saliency.params.IG.baseline", "saliency.params.SIG", "models.inceptionv3.weights",
                "models.inceptionv3.epochs", "models.inceptionv3.lr"}  # fmt: skip
    assert required <= set(paper.SETTING_KEYS)


def test_deviations_of_the_demo_config():
    d = paper.deviations(_config("config.yaml"), "synth-ptx").set_index("key")
    assert list(d.reset_index().columns) == paper.DEVIATION_COLUMNS
    assert d.loc["image_size", "this_run"] == "176" and d.loc["image_size", "differs_from_released"] is True
    assert d.loc["models.inceptionv3.lr_schedule", "this_run"] == "cosine"
    assert d.loc["image_size", "differs_from_paper"] is None  # the paper states no size
    ig = d.loc["saliency.params.IG.steps"]
    assert ig["this_run"] == "10" and ig["differs_from_paper"] is True and ig["differs_from_released"] is False
    sg = d.loc["saliency.params.SG.noise"]  # not overridden: the registry default, as both sources
    assert sg["this_run"] == "0.15" and sg["differs_from_paper"] is False and sg["differs_from_released"] is False
    assert d.loc["saliency.params.SIG", "this_run"] == "4 x 4"
    assert d.loc["models.inceptionv3.weights", "differs_from_paper"] is True
    md = paper.deviations_markdown(d.reset_index(), "synth-ptx")
    assert md.startswith("# Deviations from the paper (synth-ptx)")
    first = md.split("|---|---|---|---|---|---|---|\n", 1)[1].splitlines()[0]
    assert "**differs**" in first  # differing settings first


def test_deviations_follow_the_config():
    c = _config("tests/configs/paper_scale.yaml")
    d = paper.deviations(c, "siim").set_index("key")
    assert d.loc["image_size", "differs_from_released"] is False
    assert d.loc["saliency.params.XRAI.steps", "this_run"] == "100"
    assert d.loc["saliency.params.XRAI.steps", "differs_from_released"] is False
    assert d.loc["datasets.*.kind", "differs_from_paper"] is False
    c2 = copy.deepcopy(c)
    c2["saliency"]["params"] = {"XRAI": {"steps": 25}}
    c2["criteria"]["ssim_data_range"] = 2.0
    d2 = paper.deviations(c2, "siim").set_index("key")
    assert d2.loc["saliency.params.XRAI.steps", "differs_from_released"] is True
    assert d2.loc["criteria.ssim_data_range", "differs_from_released"] is False


def test_our_default_column_is_the_schema_and_registry_default():
    """'our default' of docs/protocol.md is what a config without overrides resolves to."""
    c = {"datasets": {"siim": {"kind": "siim", "images_dir": "x", "rle_csv": "y"}}}
    validate(c, SCHEMA)
    d = paper.deviations(c, "siim")
    for s, this in zip(paper.SETTINGS, d["this_run"]):
        if this == "not set":  # a null default (Keras' own value)
            assert s.ours.startswith("null"), s.key
            continue
        first = s.ours.split()[0]
        same = s.ours.startswith(this) or (first[0].isdigit() and float(first) == float(this))
        assert same, (s.key, s.ours, this)


def test_table2_agreement_counts_cells_as_the_paper():
    """The paper's Table 2 as printed (a: 6 PASS of 56 on SIIM; b: 15 of 56 on RSNA), and a count
    of matching cells by hand."""
    import pandas as pd

    a, b = paper.paper_table2("segmentation"), paper.paper_table2("detection")
    assert a.shape == b.shape == (8, 7)
    assert (a == "PASS").sum().sum() == 6 and (b == "PASS").sum().sum() == 15
    assert a.loc["XRAI"].tolist() == ["PASS", "FAIL", "FAIL", "PASS", "FAIL", "FAIL", "FAIL"]
    assert b.loc["GCAM", "Reproducibility vs 0.5"] == "PASS" and b.loc["IG", "Randomization"] == "FAIL"
    ours = a.reset_index().rename(columns={"method": "Method"})
    ours.loc[ours["Method"] == "GRAD", "Randomization"] = "PASS (0.93)"  # one cell differs, stability kept
    ours.loc[ours["Method"] == "SG", "Utility vs AVG"] = "FAIL (0.70, fragile)"  # same verdict
    agree = paper.table2_agreement(ours, "segmentation")
    assert len(agree) == 56 and int(agree["same"].sum()) == 55
    assert agree.loc[~agree["same"], ["method", "criterion"]].values.tolist() == [["GRAD", "Randomization"]]
