"""Table 2 (PASS/FAIL) with its verdict stability, Table S1 (randomization), Table S2 (utility) and the
sensitivity table of one dataset; no R needed."""

import pandas as pd

from saliency_audit import io
from saliency_audit.smk import rule_logging
from saliency_audit.stats import run

with rule_logging(snakemake) as log:
    s = snakemake.params.settings
    paths = dict(snakemake.input.items())
    scores = run.read_scores(paths)
    thresholds = run.read_thresholds(paths.get("thresholds"))
    anchors = run.read_anchors(paths.get("anchors"))
    contrasts = pd.read_csv(paths["contrasts"]) if "contrasts" in paths else None
    tables = run.make_tables(scores, thresholds, contrasts, s, snakemake.wildcards.dataset, anchors)
    for name, (df, md) in tables.items():
        io.write_csv(getattr(snakemake.output, name), df.reset_index() if df.index.name else df)
        with io.atomic_path(getattr(snakemake.output, f"{name}_md")) as tmp:
            tmp.write_text(md)
    log.info("%s", tables["table2"][1])
