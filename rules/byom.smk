# Bring your own maps (docs/byom.md): a dataset with a `maps:` block gets no training and no
# saliency jobs; its precomputed maps (listed in maps.index_csv) are resized onto each test shard
# and written where the saliency stage writes maps, so the criteria, statistics and report run
# unchanged. One job per (dataset, model, state, method, test shard), like the saliency stage.

BYOM_DATASETS = plan.byom_datasets(config)
BYOM_CODE = plan.package_hash("byom")


rule import_maps:
    input:
        index=lambda wc: config["datasets"][wc.dataset]["maps"]["index_csv"],
        manifest=paths.pattern(paths.MANIFEST, RESULTS),
        shard=paths.pattern(paths.SHARD, RESULTS, split="test"),
        maps=byom_map_files,
    output:
        paths.pattern(paths.MAPS, RESULTS),
    log:
        "logs/{dataset}/maps/{model}/{state}/{method}/import_test_{shard}.log",
    benchmark:
        "benchmarks/out/{dataset}/maps/{model}/{state}/{method}/import_test_{shard}.tsv"
    wildcard_constraints:
        dataset=plan.dataset_regex(BYOM_DATASETS),
        state=r"[A-Za-z0-9][A-Za-z0-9._+-]*",
        method=r"[A-Za-z0-9][A-Za-z0-9._+-]*",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        dataset=lambda wc: config["datasets"][wc.dataset],
        images=config["saliency"]["images"],
        max_images=config["saliency"]["max_images"],
        code=BYOM_CODE,
    script:
        "../workflow_scripts/import_maps.py"


rule byom_labels:
    input:
        index=lambda wc: config["datasets"][wc.dataset]["maps"]["index_csv"],
    output:
        paths.pattern(paths.BYOM_LABELS, RESULTS),
    log:
        "logs/{dataset}/byom/labels.log",
    benchmark:
        "benchmarks/out/{dataset}/byom/labels.tsv"
    wildcard_constraints:
        dataset=plan.dataset_regex(BYOM_DATASETS),
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        dataset=lambda wc: config["datasets"][wc.dataset],
        code=BYOM_CODE,
    script:
        "../workflow_scripts/import_maps.py"
