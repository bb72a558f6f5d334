# Data stage: a manifest (checkpoint: splits and shards are known only after the labels are read)
# and one shard file of preprocessed images + ground truth per (split, shard).


checkpoint manifest:
    input:
        backgrounds=background_files,
    output:
        manifest=paths.pattern(paths.MANIFEST, RESULTS),
    log:
        "logs/{dataset}/data/manifest.log",
    benchmark:
        "benchmarks/out/{dataset}/data/manifest.tsv"
    conda:
        "../envs/data.yaml"
    priority: plan.job_priority("data")
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        dataset=lambda wc: config["datasets"][wc.dataset],
        split=config["split"],
        shards=config["shards"],
        image_size=lambda wc: plan.image_size(config, wc.dataset),  # a source may read it (synthetic)
        seed=config["seed"],
        code=plan.package_hash("data"),
    script:
        "../workflow_scripts/manifest.py"


rule shard:
    input:
        manifest=paths.pattern(paths.MANIFEST, RESULTS),
        backgrounds=background_files,
    output:
        shard=paths.pattern(paths.SHARD, RESULTS),
    log:
        "logs/{dataset}/data/shard_{split}_{shard}.log",
    benchmark:
        "benchmarks/out/{dataset}/data/shard_{split}_{shard}.tsv"
    conda:
        "../envs/data.yaml"
    priority: plan.job_priority("data")
    resources:
        mem_mb=shard_mem,  # rules/cost.smk
        runtime=shard_runtime,
    params:
        dataset=lambda wc: config["datasets"][wc.dataset],
        image_size=lambda wc: plan.image_size(config, wc.dataset),
        seed=config["seed"],
        code=plan.package_hash("data"),
    script:
        "../workflow_scripts/shard.py"
