# Report stage: statistics (R: lme4/lmerTest/multcomp through rpy2), Table 2 / S1 / S2, the
# paper's figures, and the provenance of the run (software versions, the config used). Outputs
# meant for people are report(...) items: `snakemake --report results/report.html` gathers them.
# Tables read the statistics' CSV; only the `fit_stats` rule needs R (skipped when stats.enabled is false).
# (The rule is not called `stats`: that is the stage target of rules/targets.smk, `snakemake stats`.)

REPORT_CODE = plan.package_hash("stats") + "-" + plan.package_hash("report")


rule fit_stats:
    input:
        unpack(score_inputs),
    output:
        contrasts=report(
            paths.pattern(paths.STATS, RESULTS, table="contrasts"),
            caption="../report/stats_contrasts.rst",
            category="5. Statistics",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "table": "LMM contrasts"},
        ),
        models=report(
            paths.pattern(paths.STATS, RESULTS, table="models"),
            caption="../report/stats_models.rst",
            category="5. Statistics",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "table": "LMM fits"},
        ),
    log:
        "logs/{dataset}/report/stats.log",
    benchmark:
        "benchmarks/out/{dataset}/report/stats.tsv"
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        settings=stats_settings,
        code=REPORT_CODE,
    script:
        "../workflow_scripts/stats.py"


rule tables:
    input:
        unpack(table_inputs),
    output:
        table2=report(
            f"{RESULTS}/{{dataset}}/tables/table2.csv",
            caption="../report/table2.rst",
            category="1. Summary (Table 2)",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "table": "Table 2"},
        ),
        table2_md=f"{RESULTS}/{{dataset}}/tables/table2.md",
        table2_stability=report(
            f"{RESULTS}/{{dataset}}/tables/table2_stability.csv",
            caption="../report/table2_stability.rst",
            category="1. Summary (Table 2)",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "table": "Table 2 verdict stability"},
        ),
        table2_stability_md=f"{RESULTS}/{{dataset}}/tables/table2_stability.md",
        sensitivity=report(
            f"{RESULTS}/{{dataset}}/tables/sensitivity.csv",
            caption="../report/sensitivity.rst",
            category="1. Summary (Table 2)",
            subcategory="{dataset}",
            labels={
                "dataset": "{dataset}",
                "table": "Table 2 sensitivity (AP, SSIM data_range 2)",
            },
        ),
        sensitivity_md=f"{RESULTS}/{{dataset}}/tables/sensitivity.md",
        tableS1=report(
            f"{RESULTS}/{{dataset}}/tables/tableS1.csv",
            caption="../report/tableS1.rst",
            category="3. Randomization",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "table": "Table S1"},
        ),
        tableS1_md=f"{RESULTS}/{{dataset}}/tables/tableS1.md",
        tableS2=report(
            f"{RESULTS}/{{dataset}}/tables/tableS2.csv",
            caption="../report/tableS2.rst",
            category="2. Utility",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "table": "Table S2"},
        ),
        tableS2_md=f"{RESULTS}/{{dataset}}/tables/tableS2.md",
    log:
        "logs/{dataset}/report/tables.log",
    benchmark:
        "benchmarks/out/{dataset}/report/tables.tsv"
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        settings=lambda wc: report_run.table_settings(config, wc.dataset),
        code=REPORT_CODE,
    script:
        "../workflow_scripts/tables.py"


rule deviations:
    output:
        csv=report(
            f"{RESULTS}/{{dataset}}/tables/deviations.csv",
            caption="../report/deviations.rst",
            category="0. Deviations from the paper",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "table": "Deviations from the paper"},
        ),
        md=f"{RESULTS}/{{dataset}}/tables/deviations.md",
    log:
        "logs/{dataset}/report/deviations.log",
    benchmark:
        "benchmarks/out/{dataset}/report/deviations.tsv"
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        rows=lambda wc: paper_deviations(wc.dataset),
    script:
        "../workflow_scripts/deviations.py"


rule figure_utility:
    input:
        utility=paths.pattern(paths.SCORES, RESULTS, criterion="utility"),
    output:
        png=report(
            f"{RESULTS}/{{dataset}}/figures/fig2_utility.png",
            caption="../report/fig2_utility.rst",
            category="2. Utility",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "Fig 2a/b"},
        ),
        svg=f"{RESULTS}/{{dataset}}/figures/fig2_utility.svg",
    log:
        "logs/{dataset}/report/figure_utility.log",
    benchmark:
        "benchmarks/out/{dataset}/report/figure_utility.tsv"
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        figure="fig2_utility",  # saliency_audit.report.figure_jobs
        settings=lambda wc: figure_settings(wc, "fig2_utility"),
        left_out=lambda wc: report_examples.left_out_figures(config, wc.dataset),  # caption
        code=REPORT_CODE,
    script:
        "../workflow_scripts/figures.py"


rule figure_examples:
    input:
        unpack(overlay_inputs),
    output:
        png=report(
            f"{RESULTS}/{{dataset}}/figures/fig2_examples.png",
            caption="../report/fig2_examples.rst",
            category="2. Utility",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "Fig 2c/d"},
        ),
        svg=f"{RESULTS}/{{dataset}}/figures/fig2_examples.svg",
    log:
        "logs/{dataset}/report/figure_examples.log",
    benchmark:
        "benchmarks/out/{dataset}/report/figure_examples.tsv"
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    params:
        figure="fig2_examples",  # saliency_audit.report.figure_jobs
        settings=lambda wc: figure_settings(wc, "fig2_examples"),
        shard=lambda wc: first_test_shard(wc.dataset),
        code=REPORT_CODE,
    script:
        "../workflow_scripts/figures.py"


rule figure_pr_curve:
    input:
        unpack(overlay_inputs),
    output:
        png=report(
            f"{RESULTS}/{{dataset}}/figures/figS4_pr_curve.png",
            caption="../report/figS4_pr_curve.rst",
            category="2. Utility",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "Fig S4"},
        ),
        svg=f"{RESULTS}/{{dataset}}/figures/figS4_pr_curve.svg",
    log:
        "logs/{dataset}/report/figure_pr_curve.log",
    benchmark:
        "benchmarks/out/{dataset}/report/figure_pr_curve.tsv"
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        figure="figS4_pr_curve",  # saliency_audit.report.figure_jobs
        settings=lambda wc: figure_settings(wc, "figS4_pr_curve"),
        shard=lambda wc: first_test_shard(wc.dataset),
        code=REPORT_CODE,
    script:
        "../workflow_scripts/figures.py"


rule figure_randomization:
    input:
        randomization=paths.pattern(paths.SCORES, RESULTS, criterion="randomization"),
        thresholds=paths.pattern(paths.THRESHOLDS, RESULTS),
    output:
        png=report(
            f"{RESULTS}/{{dataset}}/figures/fig3a_randomization.png",
            caption="../report/fig3a_randomization.rst",
            category="3. Randomization",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "Fig 3a"},
        ),
        svg=f"{RESULTS}/{{dataset}}/figures/fig3a_randomization.svg",
    log:
        "logs/{dataset}/report/figure_randomization.log",
    benchmark:
        "benchmarks/out/{dataset}/report/figure_randomization.tsv"
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        figure="fig3a_randomization",  # saliency_audit.report.figure_jobs
        settings=lambda wc: figure_settings(wc, "fig3a_randomization"),
        code=REPORT_CODE,
    script:
        "../workflow_scripts/figures.py"


rule figure_randomization_example:
    input:
        unpack(randomization_example_inputs),
    output:
        png=report(
            f"{RESULTS}/{{dataset}}/figures/fig3b_randomization_example.png",
            caption="../report/fig3b_randomization_example.rst",
            category="3. Randomization",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "Fig 3b"},
        ),
        svg=f"{RESULTS}/{{dataset}}/figures/fig3b_randomization_example.svg",
    log:
        "logs/{dataset}/report/figure_randomization_example.log",
    benchmark:
        "benchmarks/out/{dataset}/report/figure_randomization_example.tsv"
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=15,
    params:
        figure="fig3b_randomization_example",  # saliency_audit.report.figure_jobs
        settings=lambda wc: figure_settings(wc, "fig3b_randomization_example"),
        shard=lambda wc: first_test_shard(wc.dataset),
        code=REPORT_CODE,
    script:
        "../workflow_scripts/figures.py"


rule figure_similarity:
    input:
        unpack(lambda wc: score_inputs(wc, ("repeatability", "reproducibility"))),
    output:
        png=report(
            f"{RESULTS}/{{dataset}}/figures/fig4_repeatability_reproducibility.png",
            caption="../report/fig4_repeatability_reproducibility.rst",
            category="4. Repeatability and reproducibility",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "Fig 4"},
        ),
        svg=f"{RESULTS}/{{dataset}}/figures/fig4_repeatability_reproducibility.svg",
    log:
        "logs/{dataset}/report/figure_similarity.log",
    benchmark:
        "benchmarks/out/{dataset}/report/figure_similarity.tsv"
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        figure="fig4_repeatability_reproducibility",  # saliency_audit.report.figure_jobs
        settings=lambda wc: figure_settings(wc, "fig4_repeatability_reproducibility"),
        code=REPORT_CODE,
    script:
        "../workflow_scripts/figures.py"


rule software_versions:
    output:
        versions=report(
            f"{RESULTS}/report/software_versions.csv",
            caption="../report/software_versions.rst",
            category="6. Provenance",
            labels={"file": "software versions"},
        ),
        config=report(
            f"{RESULTS}/report/config.yaml",
            caption="../report/config.rst",
            category="6. Provenance",
            labels={"file": "configuration used"},
        ),
    log:
        "logs/report/software_versions.log",
    benchmark:
        "benchmarks/out/report/software_versions.tsv"
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        config=config,
        stats=STATS_ON,
        code=REPORT_CODE,
    script:
        "../workflow_scripts/versions.py"
