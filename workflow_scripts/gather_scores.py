"""Gather per-shard score tables of a dataset; for randomization also the degradation thresholds
(and their per-anchor-image pair means); for the summary, means and SDs of every gathered criterion."""

import pandas as pd

from saliency_audit import io
from saliency_audit.metrics import criteria, tables
from saliency_audit.smk import rule_logging

with rule_logging(snakemake) as log:
    if snakemake.rule == "score_summary":
        for criterion, reason in snakemake.params.skipped.items():
            log.info("criterion %s skipped: %s", criterion, reason)
        scores = tables.gather(snakemake.input)
        io.write_csv(snakemake.output[0], tables.summarize(scores))
        log.info("summary of %d rows from %s", len(scores), list(snakemake.input))
    elif snakemake.rule == "gather_randomization":
        scores = tables.gather(snakemake.input.scores)
        io.write_csv(snakemake.output.scores, scores)
        thresholds, anchors = criteria.randomization_thresholds(
            snakemake.params.plan, criteria.ScoreSettings.from_dict(snakemake.params.settings), scores
        )
        io.write_csv(snakemake.output.thresholds, thresholds)
        io.write_csv(snakemake.output.anchors, anchors)
        with pd.option_context("display.width", 200):
            log.info("degradation thresholds and verdicts:\n%s", thresholds.to_string(index=False))
    else:
        scores = tables.gather(snakemake.input)
        io.write_csv(snakemake.output[0], scores)
        log.info("%d rows from %d shards", len(scores), len(snakemake.input))
