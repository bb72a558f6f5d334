"""Threads and the `gpu` resource of the planned TensorFlow jobs: all cores when they run one at a
time (a GPU, or a CPU-only machine with the default profile), a share with more slots, 2 on a cluster."""

import re
import subprocess
import sys

import pytest

from conftest import REPO, SNAKEMAKE, TF_THREADS, TINY
from saliency_audit.resources import CLUSTER_THREADS, tf_job_threads

TF_RULES = {"train_model", "localizer_maps", "saliency_maps", "saliency_maps_states"}


def planned_jobs(text: str) -> list[dict]:
    """(rule, threads, resources, priority, wildcards) of every job in a ``snakemake -n`` printout."""
    jobs = []
    for block in re.split(r"\n\s*\n", text):
        rule = re.search(r"^(?:local)?(?:rule|checkpoint) (\w+):", block, re.M)
        if not rule:
            continue
        threads = re.search(r"^\s+threads: (\d+)", block, re.M)
        priority = re.search(r"^\s+priority: (\d+)", block, re.M)  # printed when not 0
        res = re.search(r"^\s+resources: (.*)$", block, re.M)
        resources = dict(kv.split("=", 1) for kv in res.group(1).split(", ")) if res else {}
        wc = re.search(r"^\s+wildcards: (.*)$", block, re.M)
        jobs.append(dict(rule=rule.group(1), threads=int(threads.group(1)) if threads else 1, resources=resources,
                         priority=int(priority.group(1)) if priority else 0,
                         wildcards=dict(kv.split("=", 1) for kv in wc.group(1).split(", ")) if wc else {}))
    return jobs


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A working directory with the tiny config's manifests, so a dry run plans every job."""
    wd = tmp_path_factory.mktemp("plan")
    manifests = [f"results/{ds}/data/manifest.csv" for ds in ("tiny-ptx", "tiny-pna")]
    dry_run(wd, "--cores", "2", *manifests, dry=False)
    return wd


def dry_run(workdir, *args, dry=True):
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), *(["-n", "--rerun-triggers", "mtime"] if dry else []),
           *args, "-d", str(workdir), "--replace-workflow-config", "--configfile", str(TINY)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return planned_jobs(proc.stdout + proc.stderr)


def by_kind(jobs):
    tf = [j for j in jobs if j["rule"] in TF_RULES]
    other = [j for j in jobs if j["rule"] not in TF_RULES]
    assert {j["rule"] for j in tf} >= {"train_model", "localizer_maps", "saliency_maps"}, jobs
    return tf, other


@pytest.mark.slow
@pytest.mark.parametrize("gpu_args", [[], ["--resources", "gpu=1"]], ids=["default-profile", "one-gpu"])
def test_one_tf_job_at_a_time_takes_every_core(workdir, gpu_args):
    """A GPU (or a CPU-only machine, default profile: one TensorFlow job at a time) -> all 16 cores."""
    tf, other = by_kind(dry_run(workdir, "--cores", "16", *gpu_args))
    assert {(j["threads"], j["resources"].get("gpu")) for j in tf} == {(16, "1")}
    assert {j["threads"] for j in other} == {1}
    assert not any("gpu" in j["resources"] for j in other)


@pytest.mark.slow
def test_cpu_only_parallel_slots_share_the_cores(workdir):
    """CPU only, four TensorFlow jobs at a time (`--resources gpu=4`): 4 threads each."""
    tf, _ = by_kind(dry_run(workdir, "--cores", "16", "--resources", "gpu=4"))
    assert {(j["threads"], j["resources"].get("gpu")) for j in tf} == {(4, "1")}


@pytest.mark.slow
def test_cpu_only_without_gpu_limit_still_one_at_a_time(workdir):
    """`--resources gpu=0` (no GPU) lifts the gpu limit; each job still takes all cores."""
    tf, _ = by_kind(dry_run(workdir, "--cores", "16", "--resources", "gpu=0"))
    assert {(j["threads"], j["resources"].get("gpu")) for j in tf} == {(16, "0")}


@pytest.mark.slow
def test_tiny_runs_keep_their_thread_counts(workdir):
    """The tests' tiny runs (tests/conftest.py): one thread per TensorFlow job, two at a time."""
    tf, _ = by_kind(dry_run(workdir, "--cores", "2", *TF_THREADS, "--resources", "gpu=2"))
    assert {j["threads"] for j in tf} == {1}


@pytest.mark.slow
def test_ready_tf_jobs_take_the_slots_longest_chain_first(workdir):
    """Snakemake priorities of the planned jobs (plan.job_priority): the data first (every job waits
    on them; with both cores held by TensorFlow jobs a shard job would otherwise wait behind them),
    then the primary model's randomization-states job, its training, the other classifiers'
    trainings and maps; the localizers' jobs last, as every other job."""
    jobs = dry_run(workdir, "--cores", "2", "--resources", "gpu=2")
    prio = {}
    for j in jobs:
        if j["rule"] in TF_RULES:
            prio.setdefault((j["rule"], j["wildcards"].get("model", "inceptionv3_1")), set()).add(j["priority"])
        else:
            prio.setdefault((j["rule"], None), set()).add(j["priority"])
    assert {k: v for k, v in prio.items() if v != {0}} == {
        ("shard", None): {5},
        ("xrai_segments", None): {5},
        ("saliency_maps_states", "inceptionv3_1"): {4},
        ("train_model", "inceptionv3_1"): {3},
        ("train_model", "inceptionv3_2"): {2},
        ("train_model", "densenet121_1"): {2},
        ("saliency_maps", "inceptionv3_2"): {1},
        ("saliency_maps", "densenet121_1"): {1},
    }, prio
    assert {("train_model", f"{loc}_{r}") for loc in ("unet", "retinanet") for r in (1, 2)} <= set(prio)


def test_tf_job_threads():
    assert tf_job_threads(16, 1, local=True) == 16
    assert tf_job_threads(16, None, local=True) == 16  # no gpu limit given
    assert tf_job_threads(16, 0, local=True) == 16
    assert tf_job_threads(16, 3, local=True) == 5
    assert tf_job_threads(2, 4, local=True) == 1
    # cluster: one allocation per job, whatever the submitting machine has
    assert tf_job_threads(64, 1, local=False) == CLUSTER_THREADS == 2
    assert tf_job_threads(None, None, local=True) == CLUSTER_THREADS


def test_set_tf_threads_reaches_tensorflow():
    code = ("from saliency_audit.resources import set_tf_threads; import tensorflow as tf; set_tf_threads(3); "
            "print(tf.config.threading.get_intra_op_parallelism_threads(), "
            "tf.config.threading.get_inter_op_parallelism_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    # the last line: TensorFlow may print start-up diagnostics of its own on stdout first
    assert out.stdout.strip().splitlines()[-1].split() == ["3", "3"], out.stdout[-3000:]
