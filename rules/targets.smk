# Stage targets: `snakemake data` (or models, maps, scores, stats, report) runs the pipeline up to
# that stage for every dataset, the manifest checkpoint included: each target is an input function
# per dataset that goes through checkpoints.manifest.get() (rules/common.smk `shards`), so a fresh
# run plans the manifests first and the shards, models, maps ... once they are known.
# (`snakemake --until shard` plans nothing on a fresh run: the shard list waits for the checkpoint.)
# Bring-your-own-maps datasets have no models: their `models` target is `data`, `maps` imports maps.


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
