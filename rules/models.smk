# Models stage: one training job per (dataset, model id) of plan.model_ids (classifiers with
# replicates, the label-shuffled InceptionV3, the dataset's localizer), the AVG baseline map, and
# the localizer's pixel maps per test shard. Model randomization has no job: the saliency stage
# applies saliency_audit.models.randomize.apply_state at map time.


rule train_model:
    input:
        train=lambda wc: shard_files(wc.dataset, "train"),
        val=lambda wc: shard_files(wc.dataset, "val"),
        test=lambda wc: shard_files(wc.dataset, "test"),
    output:
        model=paths.pattern(paths.MODEL, RESULTS),
        history=paths.pattern(paths.HISTORY, RESULTS),
        metrics=paths.pattern(paths.MODEL_METRICS, RESULTS),
    log:
        "logs/{dataset}/models/{model}/train.log",
    benchmark:
        "benchmarks/out/{dataset}/models/{model}/train.tsv"
    priority: lambda wc: plan.job_priority("train", wc.model)
    conda:
        "../envs/tensorflow.yaml"
    threads: tf_threads
    resources:
        gpu=1,
        mem_mb=lambda wc: 12000 if plan.is_classifier(wc.model) else 8000,
        runtime=train_runtime,  # rules/cost.smk
    params:
        models=lambda wc: model_cfg(wc.model),
        image_size=lambda wc: model_image_size(wc.dataset),
        seed=lambda wc: plan.model_seed(config, wc.dataset, wc.model),
        code=plan.package_hash("models"),
    script:
        "../workflow_scripts/train.py"


rule avg_map:
    input:
        train=lambda wc: shard_files(wc.dataset, "train"),
        val=lambda wc: shard_files(wc.dataset, "val"),
    output:
        avg=paths.pattern(paths.AVG_MAP, RESULTS),
    log:
        "logs/{dataset}/models/avg_map.log",
    benchmark:
        "benchmarks/out/{dataset}/models/avg_map.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        image_size=lambda wc: model_image_size(wc.dataset),
        code=plan.package_hash("models"),
    script:
        "../workflow_scripts/avg_map.py"


rule localizer_maps:
    input:
        model=paths.pattern(paths.MODEL, RESULTS),
        shard=paths.pattern(paths.SHARD, RESULTS, split="test"),
    output:
        maps=paths.pattern(paths.MAPS, RESULTS, state="original", method="PRED"),
    log:
        "logs/{dataset}/maps/{model}/PRED_test_{shard}.log",
    benchmark:
        "benchmarks/out/{dataset}/maps/{model}/PRED_test_{shard}.tsv"
    wildcard_constraints:
        model=r"(unet|retinanet)_\d+",
        dataset=plan.dataset_regex(plan.trained_datasets(config)),  # never a BYOM dataset
    priority: lambda wc: plan.job_priority("maps", wc.model)
    conda:
        "../envs/tensorflow.yaml"
    threads: tf_threads
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=60,
    params:
        images=config["saliency"]["images"],
        max_images=config["saliency"]["max_images"],
        # RetinaNet only: a new threshold must not rerun the U-Net maps
        score_threshold=lambda wc: (
            config["models"]["retinanet"]["score_threshold"]
            if plan.arch_of(wc.model) == "retinanet"
            else None
        ),
        code=plan.package_hash("models"),
    script:
        "../workflow_scripts/localizer_maps.py"
