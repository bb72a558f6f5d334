"""The whole workflow on the tiny config: every stage's outputs, the report, and no patient data.

Uses the session's ``tiny_run`` (tests/conftest.py): SIIM-style DICOM phantoms with patient data in
their headers (segmentation) and synthetic phantoms (detection), every stage, then ``--report``.
"""

import base64
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from phi_fixture import SECRETS

pytestmark = pytest.mark.slow

DATASETS = ["tiny-ptx", "tiny-pna"]
CRITERIA = ["utility", "randomization", "repeatability", "reproducibility"]
METHODS = ["GRAD", "SG", "IG", "SIG", "GCAM", "XRAI", "GBP", "GGCAM"]
COLUMNS = ["dataset", "criterion", "method", "model_a", "model_b", "state", "image_id", "metric", "value"]


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_stage_produced_its_tables(tiny_run, dataset):
    res = Path(tiny_run) / "results" / dataset
    manifest = pd.read_csv(res / "data" / "manifest.csv")
    test_pos = set(manifest.query("split == 'test' and has_finding")["image_id"].astype(str))
    for criterion in CRITERIA:
        df = pd.read_csv(res / "scores" / f"{criterion}.csv", dtype={"image_id": str})
        assert list(df.columns) == COLUMNS
        assert set(df["criterion"]) == {criterion}
        assert set(METHODS) <= set(df["method"]), criterion
        assert set(df["image_id"]) == test_pos, criterion  # one score per test image with a finding
        assert np.isfinite(df.loc[df["metric"].isin(["ssim", "auprc", "ap"]), "value"]).all()
    util = pd.read_csv(res / "scores" / "utility.csv")
    baselines = set(util["model_a"])
    loc = "unet_1" if dataset == "tiny-ptx" else "retinanet_1"
    assert {"inceptionv3_1", "avg", loc} <= baselines
    table2 = pd.read_csv(res / "tables" / "table2.csv")
    assert set(METHODS) <= set(table2.iloc[:, 0])
    cells = set(table2.iloc[:, 1:].to_numpy().ravel().astype(str))
    assert cells <= {"PASS", "FAIL", "NA", "nan"}, cells
    assert (res / "tables" / "table2.md").read_text().count("|") > 20


# --- Table 2 and Table S1 re-derived from the tables they are made of -----------------------------

#: Table 2 column -> (criterion, question of the contrast ``method - baseline``, metric kind);
#: Arun et al. 2021, Table 2: PASS = better than the baseline, significantly (adjusted p < alpha).
TABLE2_CONTRASTS = {
    "Utility vs AVG": ("utility", "utility_vs_avg", "auprc"),
    "Utility vs localizer": ("utility", "utility_vs_localizer", "auprc"),
    "Repeatability vs 0.5": ("repeatability", "vs_low_baseline", "ssim"),
    "Repeatability vs localizer": ("repeatability", "vs_localizer", "ssim"),
    "Reproducibility vs 0.5": ("reproducibility", "vs_low_baseline", "ssim"),
    "Reproducibility vs localizer": ("reproducibility", "vs_localizer", "ssim"),
}
VERDICTS = ("PASS", "FAIL", "n/a", "no statistics")


def verdict_word(cell) -> str:
    """The verdict of a Table 2 / S1 cell (annotations after it, if any, are not compared)."""
    text = str(cell).strip()
    word = next((w for w in VERDICTS if text == w or text.startswith(w + " ")), None)
    assert word, f"not a verdict: {cell!r}"
    return word


def read_table(path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""])  # "n/a" is a verdict, not NaN


def check_table2(res: Path) -> pd.DataFrame:
    """Table 2 of one dataset equals its re-derivation from stats/contrasts.csv (or reads "no
    statistics" without it) and from Table S1 (Randomization); Table S1's means and verdicts equal
    their re-derivation from scores/randomization.csv and the thresholds. Returns Table 2."""
    table2 = read_table(res / "tables" / "table2.csv").set_index("method")
    assert set(TABLE2_CONTRASTS) | {"Randomization"} <= set(table2.columns), list(table2.columns)
    contrasts = read_table(res / "stats" / "contrasts.csv") if (res / "stats" / "contrasts.csv").exists() else None
    for method, row in table2.iterrows():
        for col, (criterion, question, metric) in TABLE2_CONTRASTS.items():
            if contrasts is None:
                expect = "no statistics"
            else:
                hit = contrasts[(contrasts["criterion"] == criterion) & (contrasts["question"] == question)
                                & (contrasts["metric"] == metric) & (contrasts["group_a"].astype(str) == method)]
                assert len(hit) <= 1, (method, col, hit)
                if hit.empty:
                    expect = "n/a"
                else:
                    h = hit.iloc[0]
                    expect = "PASS" if h["estimate"] > 0 and h["p_adj"] < h["alpha"] else "FAIL"
            assert verdict_word(row[col]) == expect, (res.parent.name, method, col, row[col], expect)
    # Table S1: per image the mean over the fully randomized states (one per cascade repeat), then over images
    s1 = read_table(res / "tables" / "tableS1.csv").set_index("method")
    scores = pd.read_csv(res / "scores" / "randomization.csv", dtype={"image_id": str})
    thresholds = pd.read_csv(res / "scores" / "randomization_thresholds.csv")
    for method, row in s1.iterrows():
        states = str(row["states"]).split(";")
        assert states and all(re.fullmatch(r"cascade\d*-[a-z0-9]+", st) for st in states), states  # fully randomized
        sel = scores[(scores["method"] == method) & scores["state"].isin(states) & (scores["metric"] == "ssim")
                     & (scores["model_a"] == "inceptionv3_1")]
        if sel.empty:  # no randomized maps of this method (bring-your-own-maps)
            assert not np.isfinite(float(row["mean"])) and verdict_word(row["verdict"]) == "n/a", method
        else:
            assert set(sel["state"]) == set(states), (method, states)
            mean = sel.groupby("image_id")["value"].mean().mean()
            thr = thresholds[(thresholds["method"] == method) & (thresholds["metric"] == "ssim")]["threshold"]
            assert len(thr) == 1 and row["threshold"] == pytest.approx(float(thr.iloc[0]), rel=1e-9)
            assert row["mean"] == pytest.approx(mean, rel=1e-9, abs=1e-12), method
            assert verdict_word(row["verdict"]) == ("PASS" if mean < float(thr.iloc[0]) else "FAIL"), method
        assert verdict_word(table2.loc[method, "Randomization"]) == verdict_word(row["verdict"]), method
    assert set(s1.index) == set(table2.index)
    return table2


@pytest.mark.needs_r
@pytest.mark.parametrize("dataset", DATASETS)
def test_table2_rederived_from_contrasts_and_table_s1(tiny_run, dataset):
    table2 = check_table2(Path(tiny_run) / "results" / dataset)
    words = {verdict_word(c) for c in table2.to_numpy().ravel()}
    assert words & {"PASS", "FAIL"}, f"{dataset}: Table 2 has no verdict at all: {words}"
    assert "no statistics" not in words  # the tiny run fits the statistics


def _report_entries(html: str) -> dict[str, str]:
    """{result path: data URI} of every result embedded in a Snakemake HTML report."""
    out = {}
    for m in re.finditer(r'"(results/[^"]+)": \{"name": ', html):
        uri = re.search(r'"data_uri": "([^"]*)"', html[m.end():])
        assert uri, m.group(1)
        out[m.group(1)] = uri.group(1)
    return out


def test_report_embeds_every_figure(tiny_run):
    """Every figure of the run (PNG; the SVG beside it is for print) is in the self-contained report,
    byte for byte, and every figure the report shows exists; each dataset has the paper's figures of
    its four criteria."""
    report = Path(tiny_run) / "results" / "report.html"
    entries = _report_entries(report.read_text(encoding="utf-8"))
    figures = {k: v for k, v in entries.items() if "/figures/" in k}
    on_disk = {p.relative_to(tiny_run).as_posix() for p in (Path(tiny_run) / "results").glob("*/figures/*.png")}
    assert set(figures) == on_disk, sorted(set(figures) ^ on_disk)
    for path, uri in figures.items():
        assert uri.startswith("data:") and ";base64," in uri, (path, uri[:80])
        assert base64.b64decode(uri.split(";base64,", 1)[1]) == (Path(tiny_run) / path).read_bytes(), path
    for ds in DATASETS:
        for fig in ("fig2_utility", "fig2_examples", "figS4_pr_curve", "fig3a_randomization",
                    "fig3b_randomization_example", "fig4_repeatability_reproducibility"):
            assert f"results/{ds}/figures/{fig}.png" in figures, (ds, fig)
    for ds in DATASETS:  # and the tables Table 2 and S1 of every dataset
        assert {f"results/{ds}/tables/table2.csv", f"results/{ds}/tables/tableS1.csv"} <= set(entries)


def test_report_parser_reads_an_entry():
    html = ('{"results/d/figures/f.png": {"name": "f.png", "caption": "<p>x</p>", '
            '"data_uri": "data:image/png;charset=utf8;filename=f.png;base64,aGk="}}')
    uri = _report_entries(html)["results/d/figures/f.png"]
    assert base64.b64decode(uri.split(";base64,", 1)[1]) == b"hi"


# --- the second tiny run: saliency.job_per: method (rule saliency_maps) and independent randomization


def test_method_run_maps_every_state_by_rule_saliency_maps(tiny_method_run):
    from saliency_audit.plan import INCEPTION_CASCADE

    root = Path(tiny_method_run)
    config = yaml.safe_load((root / "tiny_method.yaml").read_text())
    (ds,) = config["datasets"]
    methods = config["saliency"]["methods"]
    # two cascade runs (randomization.repeats: 2): cascade-<block> and cascade2-<block>
    states = ["original"] + [f"{kind}-{b}" for kind in ("cascade", "cascade2", "indep") for b in INCEPTION_CASCADE]
    maps = {p.relative_to(root / "results" / ds / "maps").as_posix()
            for p in (root / "results" / ds / "maps").rglob("*.npz")}
    assert any(m.startswith(".store/") for m in maps)  # the map store (saliency/store.py) holds them too
    maps = {m for m in maps if not m.startswith(".store/")}
    expected = {f"inceptionv3_1/{st}/{m}/test_000.npz" for st in states for m in methods}
    assert expected <= maps and len(expected) == 2 * 34
    assert maps - expected == {"unet_1/original/PRED/test_000.npz"}  # the localizer; no other classifier
    # one job per (model, state, method, shard): rule saliency_maps' log per method
    logs = {p.relative_to(root / "logs" / ds / "maps" / "inceptionv3_1").as_posix()
            for p in (root / "logs" / ds / "maps" / "inceptionv3_1").rglob("*.log")}
    assert logs == {f"{st}/{m}/test_000.log" for st in states for m in methods}
    # independent states are scored by the randomization criterion, every method
    rnd = pd.read_csv(root / "results" / ds / "scores" / "randomization.csv", dtype={"image_id": str})
    ssim = rnd[rnd["metric"] == "ssim"]
    scored = set(zip(ssim["method"], ssim["state"]))
    assert {(m, st) for m in methods for st in states[1:]} <= scored
    assert np.isfinite(ssim["value"]).all()
    # maps differ between the cascade and the single-block state of the same lower block
    a = np.load(root / "results" / ds / "maps" / "inceptionv3_1" / "cascade-mixed5" / "IG" / "test_000.npz")
    b = np.load(root / "results" / ds / "maps" / "inceptionv3_1" / "indep-mixed5" / "IG" / "test_000.npz")
    key = next(k for k in a.files if a[k].dtype.kind == "f")
    assert not np.allclose(a[key], b[key])
    # the second cascade run re-draws the weights: its maps differ from the first run's
    c = np.load(root / "results" / ds / "maps" / "inceptionv3_1" / "cascade2-mixed5" / "IG" / "test_000.npz")
    assert not np.allclose(a[key], c[key])


def test_method_run_table2(tiny_method_run):
    root = Path(tiny_method_run)
    config = yaml.safe_load((root / "tiny_method.yaml").read_text())
    (ds,) = config["datasets"]
    table2 = check_table2(root / "results" / ds)
    assert list(table2.index) == config["saliency"]["methods"]
    assert {verdict_word(c) for c in table2["Randomization"]} <= {"PASS", "FAIL"}  # no statistics needed
    assert {verdict_word(c) for c in table2["Utility vs AVG"]} == {"no statistics"}  # stats.enabled: false


def _contents(path):
    """The bytes of a file and of whatever it packs: zip members (npz, keras), base64 in HTML."""
    data = path.read_bytes()
    yield data
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                yield name.encode()
                yield z.read(name)
    if path.suffix == ".html":
        for blob in re.findall(rb"base64,([A-Za-z0-9+/=]{16,})", data):
            try:
                yield base64.b64decode(blob)
            except ValueError:
                pass


def test_no_patient_data_in_any_output(tiny_run):
    """PHI scan: no header value of the input DICOMs occurs in results/, logs/ or the report
    (raw bytes, zip members of npz/keras files, base64 payloads of the HTML report)."""
    needles = [s.encode() for s in SECRETS] + [s.encode("utf-16-le") for s in SECRETS]
    scanned = 0
    for top in ("results", "logs", "benchmarks"):
        for path in (Path(tiny_run) / top).rglob("*"):
            if path.is_file():
                scanned += 1
                for data in _contents(path):
                    for needle in needles:
                        assert needle not in data, f"{needle!r} found in {path}"
    assert scanned > 50
