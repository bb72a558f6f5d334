"""RSNA without ``class_info_csv``: the paper's class filter is off, and a warning names the setting."""

import logging

from fixtures_data import config_for, make_rsna
from saliency_audit.data.base import get_source


def test_rsna_without_class_info_warns_naming_the_setting(tmp_path, caplog):
    ds, _ = make_rsna(tmp_path / "rsna", size=32)
    caplog.set_level(logging.WARNING, logger="saliency_audit")
    recs = get_source("pna", config_for("pna", {**ds, "class_info_csv": None})).records()
    assert len(recs) == 5  # p4 ("No Lung Opacity / Not Normal") is kept as a negative
    warned = [r for r in caplog.records if r.levelno == logging.WARNING and "class_info_csv" in r.getMessage()]
    assert len(warned) == 1
    msg = warned[0].getMessage()
    assert "datasets.pna.class_info_csv is not set: no class filter" in msg
    assert "['Normal', 'Lung Opacity']" in msg


def test_rsna_with_class_info_does_not_warn(tmp_path, caplog):
    ds, _ = make_rsna(tmp_path / "rsna", size=32)
    caplog.set_level(logging.WARNING, logger="saliency_audit")
    recs = get_source("pna", config_for("pna", ds)).records()
    assert len(recs) == 4  # p4 dropped by the filter
    assert "class_info_csv" not in caplog.text
