# Cost model of the maps jobs (saliency_audit.saliency.cost): the maps rules' `runtime`, the
# `calibrate` rule that measures it where the work runs, and the `estimate` target that prints what
# a run costs before it is submitted:
#   snakemake calibrate --profile slurm   (one short GPU job; writes results/calibration.csv)
#   snakemake estimate [--configfile ...]  (local; writes results/estimate.tsv and prints it)
# Without results/calibration.csv the table shipped in resources/calibration_cpu.csv (this
# repository's development CPU) is used, and the estimate says so.


rule calibrate:
    output:
        CALIBRATION_FILE,
    log:
        "logs/calibrate.log",
    conda:
        "../envs/tensorflow.yaml"
    threads: tf_threads
    resources:
        mem_mb=MAPS_MEM_MB,
        runtime=30,
        gpu=1,
    params:
        archs=sorted(
            {
                plan.arch_of(m)
                for ds in plan.trained_datasets(config)
                for m, _ in plan.map_models(config, ds)
            }
        ),
        image_sizes=sorted(
            {model_image_size(ds) for ds in plan.trained_datasets(config)}
        ),
        batch_size=SAL["batch_size"],
        batches=2,
    script:
        "../workflow_scripts/calibrate.py"


localrules:
    estimate,


rule estimate:
    log:
        "logs/estimate.log",
    conda:
        "../envs/report.yaml"
    params:
        rows=lambda wc: cost.estimate_rows(
            config,
            estimate_test_images(),
            CALIBRATION,
            groups=slurm_grouping()[0],
            components=slurm_grouping()[1],
            shard_images=estimate_shard_images(),
            split_images={
                ds: split_images(ds) for ds in plan.trained_datasets(config)
            },
        ),
        calibration=CALIBRATION_USED,
        shipped=CALIBRATION_USED == str(cost.SHIPPED_CALIBRATION),
        out=f"{RESULTS}/estimate.tsv",
    script:
        "../workflow_scripts/estimate.py"
