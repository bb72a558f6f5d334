# Config validation, input functions and the target list. Cheap at parse time: no TensorFlow,
# no globbing of image folders; shard lists come from the manifest checkpoint.

import functools
import os
import sys
from pathlib import Path

import pandas as pd
from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "src"))
# Jobs inherit the environment: keep TensorFlow's C++ start-up chatter out of the logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# conda envs install this package from here (envs/*.post-deploy.sh)
os.environ.setdefault("SALIENCY_AUDIT_SRC", str(Path(workflow.basedir)))
from saliency_audit import plan  # noqa: E402
from saliency_audit.byom import expand_datasets  # noqa: E402
from saliency_audit.config import check_config  # noqa: E402

validate(config, "../schemas/config.schema.yaml")
check_config(config)
expand_datasets(
    config
)  # datasets with `findings: [...]` -> one dataset per finding (BYOM)

DATASETS = list(config["datasets"])
RESULTS = "results"


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
        f"{RESULTS}/{{dataset}}/data/shards/{{split}}_{{shard}}.npz",
        dataset=dataset,
        split=split,
        shard=shards(dataset, split),
    )


def data_targets(dataset):
    return [
        f for split in ("train", "val", "test") for f in shard_files(dataset, split)
    ]


def dataset_targets(dataset, wildcards):
    """Every final output of one dataset; each stage's .smk adds a `<stage>_targets(dataset)`."""
    targets = data_targets(dataset)
    byom = plan.is_byom(
        config["datasets"][dataset]
    )  # bring your own maps: no training, no saliency jobs
    for name in (
        "model_targets",
        "saliency_targets",
        "byom_targets",
        "criteria_targets",
        "report_targets",
    ):
        if byom and name in ("model_targets", "saliency_targets"):
            continue
        if name in globals():
            targets += globals()[name](dataset)
    return targets


# One input function per dataset, so the dry run shows every dataset's manifest checkpoint.
ALL_TARGETS = [functools.partial(dataset_targets, ds) for ds in DATASETS]
