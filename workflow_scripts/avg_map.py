"""AVG baseline: the mean of all train + val masks (box masks for detection)."""

import numpy as np

from saliency_audit import io
from saliency_audit.models.train import avg_map
from saliency_audit.smk import rule_logging

with rule_logging(snakemake) as log:
    paths = list(snakemake.input.train) + list(snakemake.input.val)
    avg = avg_map(paths, snakemake.params.image_size)
    with io.atomic_path(snakemake.output.avg) as tmp:
        np.save(tmp, avg)
    log.info("AVG map of %d shards: mean %.4f, max %.4f", len(paths), avg.mean(), avg.max())
