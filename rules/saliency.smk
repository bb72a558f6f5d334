# Saliency stage: raw 2-D maps per (dataset, model, state, method, test shard), written to
# results/{dataset}/maps/{model}/{state}/{method}/test_{shard}.npz (ids + maps).
# Three job shapes (saliency.job_per), all writing the same files with the same script and params:
#   method       rule saliency_maps: one job per (model, state, method, shard) (cluster);
#   model_state  rule saliency_maps: one job per (model, state, shard), every method;
#   model        one job per (model, shard): saliency_maps (every method) for the trained-only models
#                and saliency_maps_states for the primary InceptionV3, whose every randomization
#                state is computed in one TensorFlow process that traces once (laptops).

SAL = config["saliency"]
SALIENCY_METHODS = list(SAL["methods"])
#: the primary model's states when one job computes them all (job_per: model)
PRIMARY_STATES = ["original"] + plan.randomization_states(config)
MAPS_TEMPLATE = paths.pattern(paths.MAPS, RESULTS)


SALIENCY_CONSTRAINTS = dict(
    dataset=plan.dataset_regex(plan.trained_datasets(config)),  # never a BYOM dataset
    # job_per: model: the primary model's maps come from saliency_maps_states
    model=rf"(?!{plan.PRIMARY}/)[^/]+" if SAL["job_per"] == "model" else r"[^/]+",
    method="|".join(SALIENCY_METHODS) if SALIENCY_METHODS else "NONE",
    state=r"original|cascade[0-9]*-[a-z0-9]+|indep-[a-z0-9]+",  # plan.parse_state
)


ONE_METHOD = SAL["job_per"] == "method"
#: the params every maps job shares (`job` is the job's own: rules/common.smk maps_job)
MAPS_PARAMS = dict(
    target=SAL["target"],
    images=SAL["images"],
    max_images=SAL["max_images"],
    batch_size=SAL["batch_size"],
    channel_reduction=SAL["channel_reduction"],
    dtype=SAL["dtype"],
    code=plan.package_hash("saliency"),
    code_models=plan.package_hash("models"),
)


rule saliency_maps:
    input:
        model=paths.pattern(paths.MODEL, RESULTS),
        shard=paths.pattern(paths.SHARD, RESULTS, split="test"),
        regions=xrai_regions_file,
    output:
        MAPS_TEMPLATE
        if ONE_METHOD
        else expand(MAPS_TEMPLATE, method=SALIENCY_METHODS, allow_missing=True),
    log:
        "logs/{dataset}/maps/{model}/{state}/"
        + ("{method}/test_{shard}.log" if ONE_METHOD else "all_methods_test_{shard}.log"),
    benchmark:
        "benchmarks/out/{dataset}/maps/{model}/{state}/"
        + ("{method}/test_{shard}.tsv" if ONE_METHOD else "all_methods_test_{shard}.tsv")
    wildcard_constraints:
        **SALIENCY_CONSTRAINTS,
    conda:
        "../envs/tensorflow.yaml"
    priority: lambda wc: plan.job_priority("maps", wc.model)
    threads: tf_threads
    resources:
        mem_mb=maps_mem,  # rules/cost.smk
        runtime=lambda wc: maps_runtime(
            wc, [wc.method] if ONE_METHOD else SALIENCY_METHODS
        ),
        gpu=1,
    params:
        job=lambda wc: maps_job(
            wc, [wc.state], [wc.method] if ONE_METHOD else SALIENCY_METHODS
        ),
        **MAPS_PARAMS,
    script:
        "../workflow_scripts/saliency_maps.py"


if SAL["job_per"] == "model":

    rule saliency_maps_states:
        input:
            model=paths.pattern(paths.MODEL, RESULTS, model=plan.PRIMARY),
            shard=paths.pattern(paths.SHARD, RESULTS, split="test"),
            regions=xrai_regions_file,
        output:
            expand(
                MAPS_TEMPLATE,
                model=plan.PRIMARY,
                state=PRIMARY_STATES,
                method=SALIENCY_METHODS,
                allow_missing=True,
            ),
        log:
            f"logs/{{dataset}}/maps/{plan.PRIMARY}/states_test_{{shard}}.log",
        benchmark:
            f"benchmarks/out/{{dataset}}/maps/{plan.PRIMARY}/states_test_{{shard}}.tsv"
        wildcard_constraints:
            dataset=SALIENCY_CONSTRAINTS["dataset"],
        conda:
            "../envs/tensorflow.yaml"
        priority: plan.job_priority("states")
        threads: tf_threads
        resources:
            mem_mb=maps_mem,  # rules/cost.smk
            runtime=lambda wc: maps_runtime(
                wc, SALIENCY_METHODS, plan.PRIMARY, len(PRIMARY_STATES)
            ),
            gpu=1,
        params:
            job=lambda wc: maps_job(wc, PRIMARY_STATES, SALIENCY_METHODS, plan.PRIMARY),
            **MAPS_PARAMS,
        script:
            "../workflow_scripts/saliency_maps.py"


rule xrai_segments:
    input:
        shard=paths.pattern(paths.SHARD, RESULTS, split="test"),
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
    priority: plan.job_priority("data")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=lambda wc: segments_runtime(wc),  # rules/estimate.smk
    params:
        images=SAL["images"],
        max_images=SAL["max_images"],
        code=plan.package_hash("saliency"),
    script:
        "../workflow_scripts/xrai_segments.py"
