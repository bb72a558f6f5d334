"""Manifest of one dataset: records, split, shard (no pixels read)."""

from saliency_audit import io
from saliency_audit.data.prepare import build_manifest
from saliency_audit.smk import rule_logging

with rule_logging(snakemake) as log:
    m = build_manifest(snakemake.wildcards.dataset, snakemake.config)
    log.info("%d images; per split: %s", len(m), m.groupby("split")["label"].agg(["count", "sum"]).to_dict())
    io.write_csv(snakemake.output.manifest, m)
