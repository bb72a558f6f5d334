# Stage targets: `snakemake data` (or models, maps, scores, stats, report) runs the pipeline up to
# that stage for every dataset, the manifest checkpoint included: each target is an input function
# per dataset that goes through checkpoints.manifest.get() (rules/common.smk `shards`), so a fresh
# run plans the manifests first and the shards, models, maps ... once they are known.
# (`snakemake --until shard` plans nothing on a fresh run: the shard list waits for the checkpoint.)
# Bring-your-own-maps datasets have no models: their `models` target is `data`, `maps` imports maps.


#: The stages in data-flow order; each target includes the ones before it.
STAGES = ("data", "models", "maps", "scores", "stats", "report")


def stats_targets(dataset):
    """The statistics of a dataset (none with stats.enabled false)."""
    out = f"{RESULTS}/{dataset}/stats"
    return [f"{out}/contrasts.csv", f"{out}/models.csv"] if STATS_ON else []


def stage_targets(stage, dataset, wildcards=None):
    """Every output of ``dataset`` up to and including ``stage`` (report = every final output)."""
    if stage == "report":
        return dataset_targets(dataset, wildcards)
    byom = plan.is_byom(config["datasets"][dataset])
    own = {
        "data": data_targets,
        "models": (lambda ds: []) if byom else model_targets,
        "maps": byom_targets if byom else saliency_targets,
        "scores": criteria_targets,
        "stats": stats_targets,
    }
    upto = STAGES[: STAGES.index(stage) + 1]
    return list(dict.fromkeys(t for s in upto for t in own[s](dataset)))


def stage_inputs(stage):
    """One input function per dataset (as rule all's), so a dry run shows every manifest checkpoint."""
    return [functools.partial(stage_targets, stage, ds) for ds in DATASETS]


rule data:
    input:
        stage_inputs("data"),


rule models:
    input:
        stage_inputs("models"),


rule maps:
    input:
        stage_inputs("maps"),


rule scores:
    input:
        stage_inputs("scores"),


rule stats:
    input:
        stage_inputs("stats"),


rule report:
    input:
        stage_inputs("report"),
