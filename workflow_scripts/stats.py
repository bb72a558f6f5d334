"""LMM + Tukey-type contrasts of one dataset's scores (R through rpy2): results/{ds}/stats/*.csv."""

from saliency_audit import io
from saliency_audit.smk import rule_logging
from saliency_audit.stats import run

with rule_logging(snakemake) as log:
    s = snakemake.params.settings
    paths = dict(snakemake.input.items())
    scores = run.read_scores(paths)
    thresholds = run.read_thresholds(paths.get("thresholds"))
    models, contrasts = run.run_stats(scores, thresholds, s, snakemake.wildcards.dataset)
    io.write_csv(snakemake.output.models, models)
    io.write_csv(snakemake.output.contrasts, contrasts)
    log.info(
        "%d model fits, %d contrasts (%d significant at alpha %s)",
        len(models),
        len(contrasts),
        int(contrasts["significant"].sum()),
        s["alpha"],
    )
