"""The tidy score table's facts are defined once (saliency_audit.io, below the sibling layers metrics
and stats), and what its two readers make of the files the workflow writes.

metrics.tables.read_scores (gathering) keeps an empty text cell as ""; stats.run.read_scores
(statistics, tables, figures) reads it as NaN. They agree on every value and every non-empty text
cell, so they stay two readers until the statistics are shown not to depend on "" vs NaN.
"""

import numpy as np
import pandas as pd

from saliency_audit import io
from saliency_audit.metrics import criteria, tables
from saliency_audit.stats import groups, run

TEXT = [c for c in io.SCORE_COLUMNS if c != "value"]


def test_criteria_and_score_columns_have_one_definition():
    assert criteria.CRITERIA is run.CRITERIA is io.CRITERIA
    assert tables.COLUMNS is groups.SCORE_COLUMNS is io.SCORE_COLUMNS
    assert io.SCORE_COLUMNS[-1] == "value" and len(set(io.SCORE_COLUMNS)) == 9


def workflow_table():
    """Rows shaped as the criteria stage writes them (tables.rows + io.write_csv): utility rows with
    no model_b, an AVG row, pair rows with and without a state, an undefined (NaN) value, and image
    ids that pandas would otherwise read as numbers or NA."""
    ids = ["001", "NA", "nan"]
    return tables.concat([
        tables.rows("d", "utility", "GRAD", "inceptionv3_1", None, "original", ids,
                    {"auprc": [0.5, np.nan, 0.25], "constant": [0.0, 1.0, 0.0]}),
        tables.rows("d", "utility", "AVG", "avg", "", "original", ids[:1], {"auprc": [0.75]}),
        tables.rows("d", "repeatability", "PRED", "unet_1", "unet_2", "", ids, {"ssim": [0.9, 0.8, np.nan]}),
        tables.rows("d", "randomization", "GRAD", "inceptionv3_1", "inceptionv3_1", "cascade-mixed1", ids[1:],
                    {"ssim": [0.1, 0.2]}),
    ])  # fmt: skip


def test_the_two_score_readers_differ_only_on_empty_text_cells(tmp_path):
    table = workflow_table()
    path = tmp_path / "scores.csv"
    io.write_csv(path, table)
    gathered = tables.read_scores(path)
    stats = run.read_scores({"utility": path})["utility"]

    # the gathering reader round-trips the file exactly ("001", "NA" and "nan" stay ids; "" stays "")
    pd.testing.assert_frame_equal(gathered, table)
    # the statistics reader: the same values (NaN where undefined) and the same non-empty text ...
    np.testing.assert_array_equal(stats["value"].to_numpy(), table["value"].to_numpy())
    assert stats["value"].isna().sum() == 2
    assert list(stats.columns) == io.SCORE_COLUMNS
    for c in TEXT:
        written = table[c].to_numpy()
        assert (stats[c].isna().to_numpy() == (written == "")).all(), c
        assert stats[c].fillna("").tolist() == written.tolist(), c
    # ... but NaN for an empty text cell: utility's model_b, the localizer pairs' state
    assert stats["model_b"].isna().sum() == 7 and stats["state"].isna().sum() == 3
    assert (gathered["model_b"] == "").sum() == 7 and (gathered["state"] == "").sum() == 3
