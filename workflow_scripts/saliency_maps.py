"""Saliency maps of one model and test shard, for the job's states and methods (saliency.job_per):
each output is .../{state}/{method}/test_{shard}.npz."""

from pathlib import Path

import numpy as np

from saliency_audit import io
from saliency_audit.data.prepare import to_model_input
from saliency_audit.resources import set_tf_threads
from saliency_audit.saliency.run import model_maps
from saliency_audit.saliency.store import MapStore, job_keys, store_root
from saliency_audit.saliency.xrai import preload_regions
from saliency_audit.smk import progress, rule_logging

with rule_logging(snakemake) as log:
    p = snakemake.params
    job = p.job
    shard = io.read_shard(snakemake.input.shard)
    idx = io.map_image_index(shard, p.images, p.max_images)
    x = to_model_input(shard["images"][idx])
    ids = np.asarray(shard["ids"])[idx].astype(str)
    outputs = {Path(o).parts[-3:-1]: o for o in snakemake.output}  # (state, method) -> path
    log.info("%d of %d test images get maps; states %s; methods %s", len(idx), len(shard["ids"]),
             job["states"], list(job["methods"]))
    # maps made before from the same inputs (saliency_audit.saliency.store) are linked, not computed
    store = MapStore(store_root(snakemake.output[0]))
    keys = job_keys(job, model=snakemake.input.model, shard=snakemake.input.shard, images=ids.tolist(), target=p.target,
                    channel_reduction=p.channel_reduction, dtype=p.dtype,
                    code={"saliency": p.code, "models": p.code_models})
    todo = store.fetch(keys, outputs)
    if len(idx) and any(todo.values()):
        set_tf_threads(snakemake.threads)  # imports TensorFlow: not when every map came from the store
        preload_regions(snakemake.input.regions)  # XRAI's segments, computed once per image
        label = f"{job['model']} test_{snakemake.wildcards.shard}"
        states = model_maps(
            snakemake.input.model,
            job["arch"],
            job["states"],
            x,
            dict(job["methods"]),
            seeds=job["seeds"],
            randomization=job["randomization"],
            batch_size=p.batch_size,
            channel_reduction=p.channel_reduction,
            gradcam_layer=job["gradcam_layer"],
            target=p.target,
            cam_normalization=job["cam_normalization"],
            progress=progress,
            desc=label,
            todo=todo,
        )
    else:
        empty = np.zeros((0,) + shard["images"].shape[1:], np.float32)
        states = ((s, {m: empty for m in todo[s]}) for s in job["states"] if todo[s])
    for state, maps in states:
        for method in maps:
            path = outputs[state, method]
            io.write_npz(path, ids=ids, maps=maps[method].astype(p.dtype))
            log.info("wrote %s (%s)", path, maps[method].shape)
        store.put_computed(keys, outputs, [(state, method) for method in maps])
