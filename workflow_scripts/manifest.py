"""Manifest of one dataset: records, split, shard (no pixels read)."""

from saliency_audit import io
from saliency_audit.data.prepare import build_manifest, stage_config
from saliency_audit.smk import rule_logging

with rule_logging(snakemake) as log:
    ds, p = snakemake.wildcards.dataset, snakemake.params
    config = stage_config(ds, p.dataset, p.seed, split=p.split, shards=p.shards, image_size=p.image_size)
    m = build_manifest(ds, config)
    log.info("%d images; per split: %s", len(m), m.groupby("split")["label"].agg(["count", "sum"]).to_dict())
    io.write_csv(snakemake.output.manifest, m)
