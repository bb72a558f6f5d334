"""One shard of preprocessed images and ground truth."""

import pandas as pd

from saliency_audit import io
from saliency_audit.data.prepare import build_shard, stage_config
from saliency_audit.smk import progress, rule_logging

with rule_logging(snakemake) as log:
    wc, p = snakemake.wildcards, snakemake.params
    manifest = pd.read_csv(snakemake.input.manifest, dtype={"image_id": str})
    config = stage_config(wc.dataset, p.dataset, p.seed, image_size=p.image_size)
    arrays = build_shard(wc.dataset, config, manifest, wc.split, int(wc.shard), progress=progress)
    io.write_npz(snakemake.output.shard, **arrays)
    log.info("wrote %d images to %s", len(arrays["ids"]), snakemake.output.shard)
