"""Scores of one criterion on one test shard: read the planned maps, score them, write tidy rows."""

from saliency_audit import io
from saliency_audit.metrics import criteria
from saliency_audit.smk import rule_logging

with rule_logging(snakemake) as log:
    plan = snakemake.params.plan
    log.info(
        "%s on %d maps files, settings %s",
        plan["criterion"],
        len(criteria.plan_inputs(plan)),
        snakemake.params.settings,
    )
    if plan["criterion"] in ("repeatability", "reproducibility") and not any(
        q["method"] == "PRED" for q in plan["pairs"]
    ):
        log.warning("no high baseline: fewer than 2 localizer replicates in the config")
    scores = criteria.score_shard(plan, criteria.ScoreSettings.from_dict(snakemake.params.settings))
    log.info("%d rows for %d images", len(scores), scores["image_id"].nunique())
    io.write_csv(snakemake.output[0], scores)
