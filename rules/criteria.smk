# Criteria stage: per test shard, the tidy scores of each criterion (utility, randomization,
# repeatability, reproducibility) in results/{dataset}/scores/{criterion}/test_{shard}.csv; gathered
# per dataset into results/{dataset}/scores/{criterion}.csv, plus the randomization degradation
# thresholds (need the maps of every test shard; with their per-anchor-image pair means) and a
# summary of means and SDs (and counts of constant maps: the per-image 0/1 metric `constant`).
# Inputs are other stages' files, named by path: maps (rules/saliency.smk), localizer PRED maps
# and the AVG map (rules/models.smk), test shards (rules/data.smk).

SCORE_SETTINGS = score_criteria.settings(config).as_dict()
SCORE_CODE = plan.package_hash("metrics") + "-" + plan.package_hash("saliency")


rule score_shard:
    input:
        lambda wc: score_criteria.plan_inputs(score_plan(wc)),
    output:
        paths.pattern(paths.SHARD_SCORES, RESULTS),
    log:
        "logs/{dataset}/scores/{criterion}_test_{shard}.log",
    benchmark:
        "benchmarks/out/{dataset}/scores/{criterion}_test_{shard}.tsv"
    wildcard_constraints:
        criterion="|".join(score_criteria.CRITERIA),
    conda:
        "../envs/criteria.yaml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=120,
    params:
        plan=score_plan,
        settings=SCORE_SETTINGS,
        code=SCORE_CODE,
    script:
        "../workflow_scripts/score_shard.py"


rule gather_scores:
    input:
        score_shard_files,
    output:
        paths.pattern(paths.SCORES, RESULTS),
    log:
        "logs/{dataset}/scores/gather_{criterion}.log",
    benchmark:
        "benchmarks/out/{dataset}/scores/gather_{criterion}.tsv"
    wildcard_constraints:
        criterion="utility|repeatability|reproducibility",
    conda:
        "../envs/criteria.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        code=SCORE_CODE,
    script:
        "../workflow_scripts/gather_scores.py"


rule gather_randomization:
    input:
        scores=lambda wc: score_shard_files(wc, "randomization"),
        maps=lambda wc: [p for ps in threshold_plan(wc)["methods"].values() for p in ps],
    output:
        scores=paths.pattern(paths.SCORES, RESULTS, criterion="randomization"),
        thresholds=paths.pattern(paths.THRESHOLDS, RESULTS),
        anchors=paths.pattern(paths.ANCHORS, RESULTS),
    log:
        "logs/{dataset}/scores/gather_randomization.log",
    benchmark:
        "benchmarks/out/{dataset}/scores/gather_randomization.tsv"
    conda:
        "../envs/criteria.yaml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=60,
    params:
        plan=threshold_plan,
        settings=SCORE_SETTINGS,
        code=SCORE_CODE,
    script:
        "../workflow_scripts/gather_scores.py"


rule score_summary:
    input:
        lambda wc: [
            p
            for c, p in score_paths(wc.dataset).items()
            if c not in ("thresholds", "anchors")
        ],
    output:
        paths.pattern(paths.SUMMARY, RESULTS),
    log:
        "logs/{dataset}/scores/summary.log",
    benchmark:
        "benchmarks/out/{dataset}/scores/summary.tsv"
    conda:
        "../envs/criteria.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        skipped=lambda wc: score_criteria.skipped(config, wc.dataset),
        code=SCORE_CODE,
    script:
        "../workflow_scripts/gather_scores.py"
