"""Saliency maps of one (model, state, test shard): one method (job_per: method) or all (job_per: model_state)."""

import numpy as np

from saliency_audit import io
from saliency_audit.data.prepare import to_model_input
from saliency_audit.resources import set_tf_threads
from saliency_audit.saliency.run import load_model_state, shard_maps
from saliency_audit.saliency.xrai import preload_regions
from saliency_audit.smk import progress, rule_logging

with rule_logging(snakemake) as log:
    set_tf_threads(snakemake.threads)
    p = snakemake.params
    shard = io.read_shard(snakemake.input.shard)
    idx = io.map_image_index(shard, p.images)
    x = to_model_input(shard["images"][idx])
    log.info("%d of %d test images get maps; methods %s", len(idx), len(shard["ids"]), list(p.methods))
    if len(idx):
        preload_regions(snakemake.input.regions)  # XRAI's segments, computed once per image
        model = load_model_state(snakemake.input.model, p.arch, snakemake.wildcards.state, p.randomization)
        maps = shard_maps(
            model,
            x,
            dict(p.methods),
            arch=p.arch,
            seeds=dict(p.seeds),
            batch_size=p.batch_size,
            channel_reduction=p.channel_reduction,
            gradcam_layer=p.gradcam_layer,
            target=p.target,
            cam_normalization=p.cam_normalization,
            progress=progress,
            desc=f"{snakemake.wildcards.model} {snakemake.wildcards.state} test_{snakemake.wildcards.shard}",
        )
    else:
        maps = {m: np.zeros((0,) + shard["images"].shape[1:], np.float32) for m in p.methods}
    ids = np.asarray(shard["ids"])[idx].astype(str)
    for method, path in zip(p.methods, snakemake.output):
        io.write_npz(path, ids=ids, maps=maps[method].astype(p.dtype))
        log.info("wrote %s (%s)", path, maps[method].shape)
