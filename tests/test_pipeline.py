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


def test_report_exists(tiny_run):
    report = Path(tiny_run) / "results" / "report.html"
    assert report.stat().st_size > 100_000


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
