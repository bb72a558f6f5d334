"""Bring your own maps: one imported maps file (rule import_maps) or the label table (rule byom_labels)."""

from saliency_audit import io
from saliency_audit.byom.importer import import_maps_file, labels_table
from saliency_audit.smk import rule_logging

with rule_logging(snakemake) as log:
    wc = snakemake.wildcards
    if snakemake.rule == "byom_labels":
        io.write_csv(snakemake.output[0], labels_table(wc.dataset, snakemake.params.dataset))
    else:
        arrays = import_maps_file(
            wc.dataset,
            snakemake.params.dataset,
            snakemake.input.manifest,
            snakemake.input.shard,
            wc.model,
            wc.state,
            wc.method,
            snakemake.params.images,
            snakemake.params.max_images,
        )
        io.write_npz(snakemake.output[0], **arrays)
        log.info("imported %d %s maps of %s/%s to %s", len(arrays["ids"]), wc.method, wc.model, wc.state,
                 snakemake.output[0])
