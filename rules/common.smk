# Config validation, input functions and the target list. Cheap at parse time: no TensorFlow,
# no globbing of image folders; shard lists come from the manifest checkpoint.

import functools
import os
import sys
import time
from pathlib import Path

import pandas as pd
import yaml
from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from saliency_audit.smk import quiet_tensorflow  # noqa: E402

# Jobs inherit the environment: keep TensorFlow's C++ start-up chatter out of their logs (the one
# place that sets TF_CPP_MIN_LOG_LEVEL; see its docstring).
quiet_tensorflow()
# conda envs install this package from here (envs/*.post-deploy.sh)
os.environ.setdefault("SALIENCY_AUDIT_SRC", str(Path(workflow.basedir)))
from saliency_audit import io, paper, paths, plan  # noqa: E402
from saliency_audit.progress import format_stage_times, stage_times  # noqa: E402
from saliency_audit.resources import tf_job_threads  # noqa: E402
from saliency_audit.saliency.registry import resolve_params  # noqa: E402
from saliency_audit.byom import expand_datasets  # noqa: E402
from saliency_audit.config import (  # noqa: E402
    check_config,
    check_dataset_names,
    coerce_cli_strings,
)

# The stage modules the input functions below use: imported here, not in rules/<stage>.smk, so no
# function of this file needs a name defined in a later file (`snakemake --lint` wants the
# functions apart from the rules: "Mixed rules and functions in same snakefile").
from saliency_audit.byom import index as byom_index  # noqa: E402
from saliency_audit.metrics import criteria as score_criteria  # noqa: E402
from saliency_audit.report import examples as report_examples  # noqa: E402
from saliency_audit.report import figure_jobs  # noqa: E402
from saliency_audit.stats import run as report_run  # noqa: E402

check_dataset_names(config)
# nested --config values arrive as strings: type them as the schema (and method registry) say
coerce_cli_strings(
    config,
    yaml.safe_load((Path(workflow.basedir) / "schemas/config.schema.yaml").read_text()),
)
validate(config, "../schemas/config.schema.yaml")
check_config(config)
expand_datasets(
    config
)  # datasets with `findings: [...]` -> one dataset per finding (BYOM)

DATASETS = list(config["datasets"])
RESULTS = "results"
STATS_ON = bool(config["stats"]["enabled"])  # the R step (rules/report.smk: fit_stats)

RUN_STARTED = time.time()  # benchmark files written after this are this run's


def print_stage_times():
    """Time per stage of this run (Snakefile onsuccess/onerror), from the benchmark files."""
    print(
        format_stage_times(stage_times("benchmarks/out", since=RUN_STARTED)),
        file=sys.stderr,
    )


wildcard_constraints:
    dataset="|".join(DATASETS),
    split="train|val|test",
    shard=r"\d{3}",
    model=r"[a-z0-9]+(-shuffled)?_\d+",


@functools.lru_cache(maxsize=None)
def _read_manifest(path, mtime_ns):
    return pd.read_csv(path, dtype={"image_id": str})


def manifest(dataset):
    """The manifest of a dataset (waits for the manifest checkpoint); read once per file version."""
    path = checkpoints.manifest.get(dataset=dataset).output.manifest
    return _read_manifest(path, os.stat(path).st_mtime_ns).copy()


def shards(dataset, split):
    m = manifest(dataset)
    return [f"{s:03d}" for s in sorted(m.loc[m["split"] == split, "shard"].unique())]


def shard_files(dataset, split):
    return expand(
        paths.pattern(paths.SHARD, RESULTS),
        dataset=dataset,
        split=split,
        shard=shards(dataset, split),
    )


def data_targets(dataset):
    return [
        f for split in ("train", "val", "test") for f in shard_files(dataset, split)
    ]


@functools.lru_cache(maxsize=None)
def _background_files(dataset):
    folder = config["datasets"][dataset].get("backgrounds")
    if not folder:
        return []
    # lists one folder, reads no pixels
    from saliency_audit.data.backgrounds import list_backgrounds

    return [str(p) for p in list_backgrounds(folder)]


def background_files(wildcards):
    """The real radiographs of a semi-synthetic dataset: an input of its manifest and shards, so
    a changed, added or removed file reruns them."""
    return _background_files(wildcards.dataset)


def dataset_targets(dataset, wildcards):
    """Every final output of one dataset, from each stage's `<stage>_targets(dataset)`."""
    # bring your own maps: no training, no saliency
    if plan.is_byom(config["datasets"][dataset]):
        stages = [byom_targets]
    else:
        stages = [model_targets, saliency_targets]
    return data_targets(dataset) + [
        t for f in (*stages, criteria_targets, report_targets) for t in f(dataset)
    ]


# One input function per dataset, so the dry run shows every dataset's manifest checkpoint.
ALL_TARGETS = [functools.partial(dataset_targets, ds) for ds in DATASETS]


# --- input functions and targets of rules/byom.smk --------------------------------------------------------


def byom_layout(dataset):
    return byom_index.layout(dataset, config["datasets"][dataset])


def byom_targets(dataset):
    """Every imported maps file of a BYOM dataset and its table of model/state labels."""
    test = shards(dataset, "test")
    return [
        paths.path(
            paths.MAPS,
            RESULTS,
            dataset=dataset,
            model=model,
            state=state,
            method=method,
            shard=shard,
        )
        for model, state, method in byom_layout(dataset)["triples"]
        for shard in test
    ] + [paths.path(paths.BYOM_LABELS, RESULTS, dataset=dataset)]


def byom_map_files(wildcards):
    """The index's existing map files for the images of this test shard: a missing one
    stops the job naming the index CSV row (MissingInputException would name no row)."""
    m = manifest(wildcards.dataset)
    m = m[(m["split"] == "test") & (m["shard"] == int(wildcards.shard))]
    m = m.iloc[
        io.map_image_index(
            m, config["saliency"]["images"], config["saliency"]["max_images"]
        )
    ]
    rows = byom_layout(wildcards.dataset)["rows"]
    sel = rows[
        (rows["model_id"] == wildcards.model)
        & (rows["state_id"] == wildcards.state)
        & (rows["method_id"] == wildcards.method)
        & rows["image_id"].isin(set(m["image_id"]))
    ]
    return sorted(p for p in set(sel["path"]) if os.path.exists(p))


# --- input functions and targets of rules/criteria.smk ----------------------------------------------------


def score_paths(dataset, criteria=None):
    """Named gathered score tables of the active criteria (those in ``criteria`` when given);
    with randomization, its thresholds and their per-anchor means."""
    files = {
        c: paths.path(paths.SCORES, RESULTS, dataset=dataset, criterion=c)
        for c in score_criteria.active(config, dataset)
        if criteria is None or c in criteria
    }
    if "randomization" in files:
        files["thresholds"] = paths.path(paths.THRESHOLDS, RESULTS, dataset=dataset)
        files["anchors"] = paths.path(paths.ANCHORS, RESULTS, dataset=dataset)
    return files


def criteria_targets(dataset):
    """Gathered score tables of the criteria the config allows, thresholds and summary."""
    return [*score_paths(dataset).values(), paths.path(paths.SUMMARY, RESULTS, dataset=dataset)]


def score_plan(wildcards):
    return score_criteria.shard_plan(
        config, wildcards.dataset, wildcards.criterion, wildcards.shard, results=RESULTS
    )


def score_shard_files(wildcards, criterion=None):
    return expand(
        paths.pattern(paths.SHARD_SCORES, RESULTS),
        dataset=wildcards.dataset,
        criterion=criterion or wildcards.criterion,
        shard=shards(wildcards.dataset, "test"),
    )


def threshold_plan(wildcards):
    return score_criteria.threshold_plan(
        config, wildcards.dataset, shards(wildcards.dataset, "test"), results=RESULTS
    )


# --- input functions and targets of rules/models.smk ------------------------------------------------------


def model_cfg(model_id):
    """The settings of one model that change its result (its own section + global switches).

    The replicate count and the seed list are left out: the model's own seed is a param of its
    own, so changing one replicate's seed retrains that replicate only.
    """
    m = config["models"]
    keep = (plan.arch_of(model_id), "mixed_precision", "jit_compile", "shuffle_buffer")
    cfg = {k: m[k] for k in keep if k in m}
    arch = plan.arch_of(model_id)
    cfg[arch] = {k: v for k, v in cfg[arch].items() if k not in ("replicates", "seeds")}
    return cfg


def model_image_size(dataset):
    return plan.image_size(config, dataset)


def tf_threads(wildcards):
    """Threads of a TensorFlow job: the cores shared by the `gpu` slots locally, 2 on a cluster."""
    res = workflow.global_resources
    return tf_job_threads(
        res["_cores"].value, res.get("gpu").value, workflow.local_exec
    )


def localizer_ids(dataset):
    return [m for m in plan.model_ids(config, dataset) if not plan.is_classifier(m)]


def model_targets(dataset):
    """Every model's metrics.json, the AVG map and the localizer maps of one dataset."""
    out = [
        paths.path(paths.MODEL_METRICS, RESULTS, dataset=dataset, model=m)
        for m in plan.model_ids(config, dataset)
    ]
    out.append(paths.path(paths.AVG_MAP, RESULTS, dataset=dataset))
    out += expand(
        paths.pattern(paths.MAPS, RESULTS, dataset=dataset, state="original", method="PRED"),
        model=localizer_ids(dataset),
        shard=shards(dataset, "test"),
    )
    return out


# --- input functions and targets of rules/report.smk ------------------------------------------------------


def figure_settings(wildcards, figure):
    """The settings a figure reads (report.figure_jobs.KEYS): a figure rule's params."""
    return figure_jobs.figure_settings(report_run.settings(config, wildcards.dataset), figure)


def stats_settings(wildcards):
    return report_run.stats_settings(config, wildcards.dataset)


def paper_deviations(dataset):
    """Each setting of saliency_audit.paper: paper | released | this run (rows, JSON-able)."""
    return paper.deviations(config, dataset).to_dict("records")


def score_inputs(wildcards, criteria=None):
    """:func:`score_paths` as a rule's named input."""
    return score_paths(wildcards.dataset, criteria)


def table_inputs(wildcards):
    files = score_inputs(wildcards)
    if STATS_ON:
        files["contrasts"] = paths.path(
            paths.STATS, RESULTS, dataset=wildcards.dataset, table="contrasts"
        )
    return files


def first_test_shard(dataset):
    return shards(dataset, "test")[0]


def overlay_inputs(wildcards):
    """Named inputs of Fig 2c/d and S4: shard, maps (in settings' method order), localizer, avg, utility."""
    s = report_run.settings(config, wildcards.dataset)
    files = report_examples.overlay_files(
        s, wildcards.dataset, first_test_shard(wildcards.dataset), results=RESULTS
    )
    files["maps"] = list(files["maps"].values())
    files["utility"] = paths.path(
        paths.SCORES, RESULTS, dataset=wildcards.dataset, criterion="utility"
    )
    if files["avg"] is None:  # no AVG baseline (bring-your-own-maps, all-test datasets)
        del files["avg"]
    return files


def randomization_example_inputs(wildcards):
    """Named inputs of Fig 3b: shard, maps (method-major, then original + cascade states)."""
    s = report_run.settings(config, wildcards.dataset)
    files = report_examples.randomization_files(
        s, wildcards.dataset, first_test_shard(wildcards.dataset), results=RESULTS
    )
    return {"shard": files["shard"], "maps": report_examples.flat(files["maps"])}


def report_targets(dataset):
    """Statistics, tables, figures of one dataset, and the run's provenance files."""
    active = score_criteria.active(config, dataset)
    out = f"{RESULTS}/{dataset}"
    targets = [
        f"{out}/tables/{t}.{ext}"
        for t in (
            "table2",
            "table2_stability",
            "sensitivity",
            "tableS1",
            "tableS2",
            "deviations",
        )
        for ext in ("csv", "md")
    ]
    targets += stats_targets(dataset)
    figs = []
    if "utility" in active:
        left_out = report_examples.left_out_figures(config, dataset)  # no localizer
        figs += ["fig2_utility", "fig2_examples", "figS4_pr_curve"]
        figs = [f for f in figs if f not in left_out]
    if "randomization" in active:
        figs += ["fig3a_randomization", "fig3b_randomization_example"]
    if "repeatability" in active or "reproducibility" in active:
        figs += ["fig4_repeatability_reproducibility"]
    targets += [f"{out}/figures/{f}.{ext}" for f in figs for ext in ("png", "svg")]
    return targets + [
        f"{RESULTS}/report/software_versions.csv",
        f"{RESULTS}/report/config.yaml",
    ]


# --- input functions and targets of rules/saliency.smk ----------------------------------------------------


def xrai_regions_file(wildcards):
    """The test shard's XRAI regions (segmented once per image) for a maps job computing XRAI
    with algorithm `full` (`fast` is PAIR's own code, which segments by itself)."""
    methods = [wildcards.method] if hasattr(wildcards, "method") else SALIENCY_METHODS
    xrai = (config["saliency"]["params"] or {}).get("XRAI")
    if "XRAI" not in methods or resolve_params("XRAI", xrai)["algorithm"] != "full":
        return []
    return (
        f"{RESULTS}/{wildcards.dataset}/maps/xrai_segments/test_{wildcards.shard}.npz"
    )


def maps_job(wildcards, states, methods, model=None):
    """The one params dict of a maps job (saliency.jobs.states_params): ``model`` for a rule
    without a model wildcard (saliency_maps_states)."""
    from saliency_audit.saliency.jobs import states_params

    return states_params(
        config, wildcards.dataset, model or wildcards.model, states, wildcards.shard, methods
    )


def saliency_targets(dataset):
    """Every maps file of a dataset: map_models x methods x test shards."""
    test = shards(dataset, "test")
    return [
        paths.path(
            paths.MAPS,
            RESULTS,
            dataset=dataset,
            model=model,
            state=state,
            method=method,
            shard=shard,
        )
        for model, state in plan.map_models(config, dataset)
        for method in SALIENCY_METHODS
        for shard in test
    ]


# ---- stage targets (rules/targets.smk)

#: The stages in data-flow order; each target includes the ones before it.
STAGES = ("data", "models", "maps", "scores", "stats", "report")


def stats_targets(dataset):
    """The statistics of a dataset (none with stats.enabled false)."""
    if not STATS_ON:
        return []
    return [
        paths.path(paths.STATS, RESULTS, dataset=dataset, table=t)
        for t in ("contrasts", "models")
    ]


def stage_targets(stage, dataset, wildcards=None):
    """Every output of ``dataset`` up to and including ``stage`` (report = every final output)."""
    if stage == "report":
        return dataset_targets(dataset, wildcards)
    byom = plan.is_byom(config["datasets"][dataset])
    own = {
        "data": data_targets,
        "models": (lambda ds: []) if byom else model_targets,
        "maps": byom_targets if byom else saliency_targets,
        "scores": criteria_targets,
        "stats": stats_targets,
    }
    upto = STAGES[: STAGES.index(stage) + 1]
    return list(dict.fromkeys(t for s in upto for t in own[s](dataset)))


def stage_inputs(stage):
    """One input function per dataset (as rule all's), so a dry run shows every manifest checkpoint."""
    return [functools.partial(stage_targets, stage, ds) for ds in DATASETS]
