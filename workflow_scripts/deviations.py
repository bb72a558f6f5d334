"""The "Deviations from the paper" table of one dataset, from the run's resolved config."""

import pandas as pd

from saliency_audit import io, paper
from saliency_audit.smk import rule_logging

with rule_logging(snakemake) as log:
    df = pd.DataFrame(snakemake.params.rows, columns=paper.DEVIATION_COLUMNS)
    io.write_csv(snakemake.output.csv, df)
    md = paper.deviations_markdown(df, snakemake.wildcards.dataset)
    with io.atomic_path(snakemake.output.md) as tmp:
        tmp.write_text(md)
    log.info("%s", md)
