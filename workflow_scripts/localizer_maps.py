"""Pixel maps of a localizer (U-Net sigmoid / RetinaNet box-score heatmap) for one test shard."""

from saliency_audit import io
from saliency_audit.models import load_model, localizer_maps
from saliency_audit.plan import arch_of
from saliency_audit.resources import set_tf_threads
from saliency_audit.smk import rule_logging

with rule_logging(snakemake) as log:
    set_tf_threads(snakemake.threads)
    shard = io.read_shard(snakemake.input.shard)
    idx = io.map_image_index(shard, snakemake.params.images, snakemake.params.max_images)
    model = load_model(snakemake.input.model)
    arch = arch_of(snakemake.wildcards.model)
    maps = localizer_maps(model, arch, shard["images"][idx], score_threshold=snakemake.params.score_threshold)
    io.write_npz(snakemake.output.maps, ids=shard["ids"][idx], maps=maps)
    log.info("%s maps of %d images written to %s", arch, len(idx), snakemake.output.maps)
