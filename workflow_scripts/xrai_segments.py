"""XRAI's regions (Felzenszwalb segments, dilated) of one test shard's map images, computed once
for every model and randomization state."""

from saliency_audit import io
from saliency_audit.data.prepare import to_model_input
from saliency_audit.saliency.xrai import write_regions
from saliency_audit.smk import progress, rule_logging

with rule_logging(snakemake) as log:
    shard = io.read_shard(snakemake.input.shard)
    idx = io.map_image_index(shard, snakemake.params.images, snakemake.params.max_images)
    write_regions(snakemake.output[0], shard["ids"][idx], to_model_input(shard["images"][idx]), progress=progress)
    log.info("XRAI regions of %d images written to %s", len(idx), snakemake.output[0])
