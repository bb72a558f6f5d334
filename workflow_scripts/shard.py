"""One shard of preprocessed images and ground truth."""

import pandas as pd

from saliency_audit import io
from saliency_audit.data.prepare import build_shard
from saliency_audit.smk import progress, rule_logging

with rule_logging(snakemake) as log:
    wc = snakemake.wildcards
    manifest = pd.read_csv(snakemake.input.manifest, dtype={"image_id": str})
    arrays = build_shard(wc.dataset, snakemake.config, manifest, wc.split, int(wc.shard), progress=progress)
    io.write_npz(snakemake.output.shard, **arrays)
    log.info("wrote %d images to %s", len(arrays["ids"]), snakemake.output.shard)
