"""A paper-scale run plans quickly and in the low thousands of jobs (one file per shard, not per image).

The dry run uses tests/configs/paper_scale.yaml (SIIM 10675 + RSNA 14863 images at 320 px, 3 InceptionV3
+ 1 DenseNet121 + 2 localizers per dataset, the 11-block cascade run ``randomization.repeats`` times,
8 methods) with a complete manifest checkpoint written by benchmarks/bench_dag.py (the paper's split
sizes, placeholder raw files). The planning time is measured in CPU seconds of the Snakemake process:
the wall time on a shared machine says more about the other processes than about the plan.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "tests" / "configs" / "paper_scale.yaml"
MAX_SECONDS = 20.0
MAX_JOBS = 5000


def _bench():
    spec = importlib.util.spec_from_file_location("bench_dag", ROOT / "benchmarks" / "bench_dag.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def paper_dry_run(tmp_path_factory):
    bench = _bench()
    workdir = tmp_path_factory.mktemp("paper-scale")
    config = bench.prepare(workdir, CONFIG)
    run = bench.dry_run(workdir, CONFIG)
    return bench, config, run, bench.job_counts(run.output)


def test_fake_manifest_has_the_paper_split():
    bench = _bench()
    m = bench.fake_manifest("siim", (8646, 961, 1068), 256)
    assert len(m) == 10675
    assert m.groupby("split")["shard"].nunique().to_dict() == {"train": 34, "val": 4, "test": 5}
    assert m.groupby("split").size().to_dict() == {"train": 8646, "val": 961, "test": 1068}


def test_paper_scale_dry_run_is_fast_and_small(paper_dry_run):
    _, _, run, _ = paper_dry_run
    print(f"paper-scale dry run: {run.seconds:.1f} s (CPU {run.cpu_seconds:.1f} s), {run.jobs} jobs")
    assert run.jobs < MAX_JOBS
    assert run.cpu_seconds < MAX_SECONDS


def test_paper_scale_job_counts(paper_dry_run):
    """Shard and maps jobs, counted independently from the split sizes and the plan."""
    bench, config, _, counts = paper_dry_run
    size = config["shards"]["size"]
    n_shards = {
        name: [math.ceil(n / size) for n in bench.PAPER_SPLITS[ds["kind"]]] for name, ds in config["datasets"].items()
    }
    assert counts["shard"] == sum(sum(v) for v in n_shards.values()) == 103
    classifiers = config["models"]["inceptionv3"]["replicates"] + config["models"]["densenet121"]["replicates"]
    schema = yaml.safe_load((ROOT / "schemas" / "config.schema.yaml").read_text())
    repeats = config.get("randomization", {}).get("repeats")
    if repeats is None:
        repeats = schema["properties"]["randomization"]["properties"]["repeats"]["default"]
    states = 11 * repeats  # logits, mixed10 ... mixed1 per cascade repeat (plus the original)
    methods = 8
    maps = sum((classifiers + states) * methods * test for _, _, test in n_shards.values())
    # paper_scale.yaml: (4 classifiers + 3 x 11 randomized states) x 8 methods x (5 + 6) test shards
    assert counts["saliency_maps"] == maps == 3256
