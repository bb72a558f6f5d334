# saliency-audit: are saliency maps of chest-radiograph classifiers trustworthy for localization?
# Arun et al., Radiology: AI 2021, reproduced end to end. Data flows one way:
# raw data -> shards -> models -> maps -> scores -> statistics -> report.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/cost.smk"
include: "rules/data.smk"
include: "rules/byom.smk"
include: "rules/models.smk"
include: "rules/saliency.smk"
include: "rules/criteria.smk"
include: "rules/report.smk"
include: "rules/targets.smk"
include: "rules/estimate.smk"


rule all:
    default_target: True
    input:
        ALL_TARGETS,


# the end of a run prints the time each stage took (from the benchmark files this run wrote)
onsuccess:
    print_stage_times()


onerror:
    print_stage_times()
