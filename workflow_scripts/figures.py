"""One paper figure of one dataset (PNG + SVG): the package function its rule names in ``params.figure``
(saliency_audit.report.figure_jobs), with that figure's settings."""

from saliency_audit.report import figure_jobs
from saliency_audit.smk import rule_logging

with rule_logging(snakemake) as log:
    p, out = snakemake.params, snakemake.output
    draw = getattr(figure_jobs, p.figure)
    ds = snakemake.wildcards.dataset
    log.info("%s", draw(snakemake.input, p.settings, ds, out.png, out.svg, shard=p.get("shard")))
