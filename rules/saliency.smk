# Saliency stage: raw 2-D maps per (dataset, model, state, method, test shard), written to
# results/{dataset}/maps/{model}/{state}/{method}/test_{shard}.npz (ids + maps).
# Two job shapes (saliency.job_per): `method` = one job per method (cluster); `model_state` = one
# job per (model, state, shard) computing every method (amortizes TensorFlow start-up on laptops).
# Only one of the two rules is defined; both write the same files.

from saliency_audit.saliency.jobs import job_params  # noqa: E402

SAL = config["saliency"]
SALIENCY_METHODS = list(SAL["methods"])


SALIENCY_CONSTRAINTS = dict(
    dataset=plan.dataset_regex(plan.trained_datasets(config)),  # never a BYOM dataset
    method="|".join(SALIENCY_METHODS) if SALIENCY_METHODS else "NONE",
    state=r"original|cascade[0-9]*-[a-z0-9]+|indep-[a-z0-9]+",  # plan.parse_state
)


SALIENCY_COMMON = dict(
    images=SAL["images"],
    batch_size=SAL["batch_size"],
    channel_reduction=SAL["channel_reduction"],
    dtype=SAL["dtype"],
    target=SAL["target"],
)


if SAL["job_per"] == "method":

    rule saliency_maps:
        input:
            model=f"{RESULTS}/{{dataset}}/models/{{model}}/model.keras",
            shard=f"{RESULTS}/{{dataset}}/data/shards/test_{{shard}}.npz",
            regions=xrai_regions_file,
        output:
            f"{RESULTS}/{{dataset}}/maps/{{model}}/{{state}}/{{method}}/test_{{shard}}.npz",
        log:
            "logs/{dataset}/maps/{model}/{state}/{method}/test_{shard}.log",
        benchmark:
            "benchmarks/out/{dataset}/maps/{model}/{state}/{method}/test_{shard}.tsv"
        wildcard_constraints:
            **SALIENCY_CONSTRAINTS,
        conda:
            "../envs/tensorflow.yaml"
        threads: tf_threads
        resources:
            mem_mb=maps_mem,  # rules/cost.smk
            runtime=lambda wc: maps_runtime(wc, [wc.method]),  # rules/estimate.smk
            gpu=1,
        params:
            methods=lambda wc: job_params(
                config, wc.dataset, wc.model, wc.state, wc.shard, [wc.method]
            )["methods"],
            seeds=lambda wc: job_params(
                config, wc.dataset, wc.model, wc.state, wc.shard, [wc.method]
            )["seeds"],
            arch=lambda wc: plan.arch_of(wc.model),
            randomization=lambda wc: job_params(
                config, wc.dataset, wc.model, wc.state, wc.shard, []
            )["randomization"],
            gradcam_layer=lambda wc: job_params(
                config, wc.dataset, wc.model, wc.state, wc.shard, []
            )["gradcam_layer"],
            target=SALIENCY_COMMON["target"],
            cam_normalization=lambda wc: job_params(
                config, wc.dataset, wc.model, wc.state, wc.shard, [wc.method]
            )["cam_normalization"],
            images=SALIENCY_COMMON["images"],
            batch_size=SALIENCY_COMMON["batch_size"],
            channel_reduction=SALIENCY_COMMON["channel_reduction"],
            dtype=SALIENCY_COMMON["dtype"],
            code=plan.package_hash("saliency"),
            code_models=plan.package_hash("models"),
        script:
            "../workflow_scripts/saliency_maps.py"

else:

    rule saliency_maps_all_methods:
        input:
            model=f"{RESULTS}/{{dataset}}/models/{{model}}/model.keras",
            shard=f"{RESULTS}/{{dataset}}/data/shards/test_{{shard}}.npz",
            regions=xrai_regions_file,
        output:
            expand(
                f"{RESULTS}/{{{{dataset}}}}/maps/{{{{model}}}}/{{{{state}}}}/{{method}}/test_{{{{shard}}}}.npz",
                method=SALIENCY_METHODS,
            ),
        log:
            "logs/{dataset}/maps/{model}/{state}/all_methods_test_{shard}.log",
        benchmark:
            "benchmarks/out/{dataset}/maps/{model}/{state}/all_methods_test_{shard}.tsv"
        wildcard_constraints:
            **SALIENCY_CONSTRAINTS,
        conda:
            "../envs/tensorflow.yaml"
        threads: tf_threads
        resources:
            mem_mb=maps_mem,  # rules/cost.smk
            runtime=lambda wc: maps_runtime(wc, SALIENCY_METHODS),  # rules/estimate.smk
            gpu=1,
        params:
            methods=lambda wc: job_params(
                config, wc.dataset, wc.model, wc.state, wc.shard, SALIENCY_METHODS
            )["methods"],
            seeds=lambda wc: job_params(
                config, wc.dataset, wc.model, wc.state, wc.shard, SALIENCY_METHODS
            )["seeds"],
            arch=lambda wc: plan.arch_of(wc.model),
            randomization=lambda wc: job_params(
                config, wc.dataset, wc.model, wc.state, wc.shard, []
            )["randomization"],
            gradcam_layer=lambda wc: job_params(
                config, wc.dataset, wc.model, wc.state, wc.shard, []
            )["gradcam_layer"],
            target=SALIENCY_COMMON["target"],
            cam_normalization=lambda wc: job_params(
                config, wc.dataset, wc.model, wc.state, wc.shard, SALIENCY_METHODS
            )["cam_normalization"],
            images=SALIENCY_COMMON["images"],
            batch_size=SALIENCY_COMMON["batch_size"],
            channel_reduction=SALIENCY_COMMON["channel_reduction"],
            dtype=SALIENCY_COMMON["dtype"],
            code=plan.package_hash("saliency"),
            code_models=plan.package_hash("models"),
        script:
            "../workflow_scripts/saliency_maps.py"


rule xrai_segments:
    input:
        shard=f"{RESULTS}/{{dataset}}/data/shards/test_{{shard}}.npz",
    output:
        f"{RESULTS}/{{dataset}}/maps/xrai_segments/test_{{shard}}.npz",
    log:
        "logs/{dataset}/maps/xrai_segments/test_{shard}.log",
    benchmark:
        "benchmarks/out/{dataset}/maps/xrai_segments/test_{shard}.tsv"
    wildcard_constraints:
        dataset=SALIENCY_CONSTRAINTS["dataset"],
    conda:
        "../envs/tensorflow.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=lambda wc: segments_runtime(wc),  # rules/estimate.smk
    params:
        images=SALIENCY_COMMON["images"],
        code=plan.package_hash("saliency"),
    script:
        "../workflow_scripts/xrai_segments.py"
