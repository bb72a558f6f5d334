"""Train one model of a dataset; write model.keras, history.csv and metrics.json."""

from saliency_audit import io
from saliency_audit.models.train import save_model, train_model
from saliency_audit.smk import rule_logging

with rule_logging(snakemake) as log:
    p, wc = snakemake.params, snakemake.wildcards
    result = train_model(
        wc.model,
        list(snakemake.input.train),
        list(snakemake.input.val),
        list(snakemake.input.test),
        models_cfg=p.models,
        image_size=p.image_size,
        seed=p.seed,
        dataset=wc.dataset,
        threads=snakemake.threads,
    )
    save_model(result.model, snakemake.output.model)
    io.write_csv(snakemake.output.history, result.history)
    io.write_json(snakemake.output.metrics, result.metrics)
    log.info("test AUROC %.4f (best epoch %d of %d)", result.metrics["test_auroc"], result.metrics["best_epoch"], result.metrics["epochs_run"])
