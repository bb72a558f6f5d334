"""End to end on a real (one-node, localhost) Slurm cluster, through the project's Slurm profile.

scripts/slurm/local_cluster.sh installs munge, slurmctld, slurmd, slurmdbd and MariaDB from Debian
(root only; CI runs as root on a fresh Debian machine), starts them by hand with four fake GPUs and
accounting (so `sacct` works as on real clusters), and stops them by pid afterwards. The tiny
config then runs with exactly the documented command, `snakemake --profile slurm` from the
repository root, plus a test overlay profile that only swaps conda deployment for nothing (no conda
channel is reachable in CI) and shortens the status polling; account and partition come from the
command line as the README says. It runs the detection dataset (tiny-pna) of the session's local
``tiny_run`` config, and its results must equal that local run's (tables and arrays, not
timestamps); every Slurm job must have completed, and GPU rules must have been given a GPU.

Fault drills (issue #9) run the data stage with the profile's own ``retries: 1``: a shard job that
dies once (injected through tests/faults/sitecustomize.py) is resubmitted and the run completes with
the files of an undisturbed run; a shard whose image is corrupt fails on both attempts and the run
stops, printing the rule, its wildcards, its log path and the cause.

Budget (CI): install ~2 min + cluster 5 s + Slurm run of one tiny dataset < 12 min + drills ~3 min.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import TF_THREADS
from conftest import snakemake as local_snakemake
from fixtures_data import make_folder

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "scripts" / "slurm" / "local_cluster.sh"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
DATASET = "tiny-pna"  # the synthetic detection dataset of tests/configs/tiny.yaml
ACCOUNT = "saliency-test"  # created by local_cluster.sh
#: targets of the run; SLURM_TEST_TARGETS narrows it (e.g. to one stage while developing)
TARGETS = os.environ.get("SLURM_TEST_TARGETS", "").split()
RUN_TIMEOUT = int(os.environ.get("SLURM_TEST_TIMEOUT", "1500"))
#: columns that record when or how long, not what
TIME_COLUMNS = {"time", "timestamp", "date", "seconds", "s", "elapsed", "duration", "wall_time", "runtime", "h:m:s"}

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(sys.platform != "linux", reason="needs Linux"),
    pytest.mark.skipif(
        os.geteuid() != 0 and shutil.which("slurmctld") is None,
        reason="needs root (to apt-get install Slurm) or an installed Slurm",
    ),
]


def _run(cmd, cwd=ROOT, timeout=None, env=None, check=True):
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=env, timeout=timeout, text=True, capture_output=True)
    dt = time.monotonic() - t0
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} failed ({proc.returncode}) after {dt:.0f} s\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-8000:]}"
        )
    return proc, dt


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A running one-node cluster; yields the environment for the client commands."""
    state = tmp_path_factory.mktemp("slurm-state")
    _run(["bash", str(CLUSTER), "install"], timeout=600)
    env = dict(os.environ, SLURM_CONF=str(state / "etc" / "slurm.conf"))
    try:
        _run(["bash", str(CLUSTER), "up", str(state)], timeout=240)
        yield env
    finally:
        pids = {p.stem: int(p.read_text()) for p in (state / "pids").glob("*.pid")}
        _run(["bash", str(CLUSTER), "down", str(state)], timeout=120, check=False)
        still = [name for name, pid in pids.items() if _alive(pid)]
        assert not still, f"daemons still running after down: {still}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _overlay_profile(path: Path, retries: int | None = 0) -> Path:
    """Test-only settings layered on the Slurm profile (later --profile wins per key); ``retries=None``
    keeps the Slurm profile's own ``retries``."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(
        "# no conda channel in CI: env-modules deploys nothing (no rule has envmodules:)\n"
        "software-deployment-method: env-modules\n"
        "slurm-init-seconds-before-status-checks: 5\n"
        "seconds-between-status-checks: 5\n"
        "latency-wait: 10\n"
        + ("" if retries is None else f"retries: {retries}\n")
        + "slurm-keep-successful-logs: true\n"
    )
    return path


def _slurm_cmd(overlay: Path, workdir: Path, config: Path, *targets, options=(), timeout=RUN_TIMEOUT) -> list[str]:
    """The README's command (`snakemake --profile slurm` + account and partition) and the overlay;
    ``options`` go before ``--directory`` (list options such as --set-threads would swallow targets)."""
    return [
        "timeout", "-k", "20", str(timeout),
        SNAKEMAKE, "--profile", "slurm", "--profile", str(overlay),
        "--default-resources", f"slurm_account={ACCOUNT}", "slurm_partition=debug", *options,
        "--directory", str(workdir), *targets,
        "--replace-workflow-config", "--configfile", str(config),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def slurm_run(cluster, tiny_run, tmp_path_factory):
    base = tmp_path_factory.mktemp("slurm-e2e")
    workdir = base / "slurm"
    overlay = _overlay_profile(base / "overlay")
    config = yaml.safe_load((tiny_run / "tiny_phi.yaml").read_text())
    config["datasets"] = {DATASET: config["datasets"][DATASET]}
    (base / "config.yaml").write_text(yaml.safe_dump(config))
    # TF_THREADS: the thread counts of the local tiny_run it is compared with
    cmd = _slurm_cmd(overlay, workdir, base / "config.yaml", *TARGETS, options=TF_THREADS)
    env = dict(cluster, TF_CPP_MIN_LOG_LEVEL="2")
    proc, dt = _run(cmd, env=env)
    print(f"slurm run: {dt:.0f} s")
    return workdir, proc, dt


def _result_files(workdir: Path) -> dict[str, Path]:
    """The run's results, without the map store (maps/.store: keyed by file-content hashes, which
    the model files' zip timestamps make differ between runs; its entries are links to maps files)."""
    root = workdir / "results" / DATASET
    return {
        p.relative_to(root).as_posix(): p
        for p in root.rglob("*")
        if p.is_file() and p.suffix in {".csv", ".npz", ".npy", ".json"} and ".store" not in p.relative_to(root).parts
    }


def _compare_csv(a: Path, b: Path):
    da, db = pd.read_csv(a), pd.read_csv(b)
    drop = [c for c in da.columns if c.lower() in TIME_COLUMNS]
    pd.testing.assert_frame_equal(da.drop(columns=drop), db.drop(columns=drop), check_exact=False, rtol=1e-4, atol=1e-5)


def _compare_arrays(a: Path, b: Path):
    la, lb = np.load(a, allow_pickle=False), np.load(b, allow_pickle=False)
    if isinstance(la, np.ndarray):
        np.testing.assert_allclose(la, lb, rtol=1e-4, atol=1e-5)
        return
    assert sorted(la.files) == sorted(lb.files), a
    for key in la.files:
        x, y = la[key], lb[key]
        if x.dtype.kind in "fc":
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5, err_msg=f"{a}:{key}")
        else:
            np.testing.assert_array_equal(x, y, err_msg=f"{a}:{key}")


def _json_equal(a, b, where: str):
    """Parsed JSON ``a`` equals ``b``: same keys (time keys left out), floats to rtol 1e-4."""
    if isinstance(a, dict):
        assert isinstance(b, dict), where
        ka = {k for k in a if k.lower() not in TIME_COLUMNS}
        assert ka == {k for k in b if k.lower() not in TIME_COLUMNS}, (where, sorted(ka))
        for k in ka:
            _json_equal(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _json_equal(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=where)
    else:
        assert a == b, (where, a, b)


def _compare_json(a: Path, b: Path):
    _json_equal(json.loads(a.read_text()), json.loads(b.read_text()), str(a))


def test_json_comparison_can_fail(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"test_auroc": 0.75, "seconds": 3, "n": [1, 2]}))
    b.write_text(json.dumps({"test_auroc": 0.75, "seconds": 9, "n": [1, 2]}))
    _compare_json(a, b)  # a time key may differ
    b.write_text(json.dumps({"test_auroc": 0.76, "seconds": 3, "n": [1, 2]}))
    with pytest.raises(AssertionError):
        _compare_json(a, b)


@pytest.mark.slow
def test_slurm_run_equals_local_run(slurm_run, tiny_run):
    slurm_dir, _, _ = slurm_run
    ours, theirs = _result_files(slurm_dir), _result_files(tiny_run)
    assert ours, "the Slurm run wrote no results"
    assert sorted(ours) == sorted(theirs)
    compare = {".csv": _compare_csv, ".npz": _compare_arrays, ".npy": _compare_arrays, ".json": _compare_json}
    compared = {suffix: 0 for suffix in compare}
    for name in sorted(ours):
        suffix = Path(name).suffix
        compare[suffix](ours[name], theirs[name])
        compared[suffix] += 1
    if not TARGETS:  # the whole workflow: every model's metrics.json among them
        assert all(compared.values()), compared


def _sacct(env) -> pd.DataFrame:
    proc, _ = _run(
        ["sacct", "-X", "-n", "-P", "-a", "-S", "now-2hours", "-o", "JobID,JobName,State,AllocTRES,Account,Partition"],
        env=env,
    )
    rows = [line.split("|") for line in proc.stdout.splitlines() if line.strip()]
    return pd.DataFrame(rows, columns=["id", "name", "state", "tres", "account", "partition"])


@pytest.mark.slow
def test_every_job_ran_on_slurm_and_completed(cluster, slurm_run):
    workdir, proc, _ = slurm_run
    jobs = _sacct(cluster)
    logs = list((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert len(logs) > 0
    ours = jobs[jobs["id"].isin({p.stem for p in logs})]
    assert len(ours) == len(logs), "every Slurm log belongs to a job sacct knows"
    assert (ours["state"] == "COMPLETED").all(), ours[ours["state"] != "COMPLETED"]
    assert (ours["account"] == ACCOUNT).all() and (ours["partition"] == "debug").all()


def workflow_rules() -> dict[str, str]:
    """{rule name: its text} of every rule in rules/*.smk."""
    out = {}
    for smk in (ROOT / "rules").glob("*.smk"):
        parts = re.split(r"^\s*(?:rule|checkpoint) (\w+):\s*$", smk.read_text(), flags=re.M)
        out.update(zip(parts[1::2], parts[2::2]))
    return out


def gpu_rules() -> set[str]:
    """Rules of the workflow that declare ``gpu=1`` in their resources."""
    return {name for name, body in workflow_rules().items() if re.search(r"^\s*gpu\s*=\s*1\s*,?\s*$", body, re.M)}


def _rules_of_log_dir(name: str, known: set[str]) -> set[str]:
    """Rules run by a Slurm job from its log directory: ``rule_<rule>`` or ``group_<id>_<rule>_<rule>...``
    (snakemake-executor-plugin-slurm; a group job's name lists its rules)."""
    if name.startswith("rule_"):
        return {name[len("rule_"):]}
    assert name.startswith("group_"), name
    rest, found = name[len("group_"):], set()
    for rule in sorted(known, key=len, reverse=True):  # saliency_maps_states before saliency_maps
        if re.search(rf"(^|_){rule}(_|$)", rest):
            found.add(rule)
            rest = re.sub(rf"(^|_){rule}(?=_|$)", "", rest)
    assert found, f"no known rule in {name}"
    return found


def test_gpu_rule_parser():
    assert {"train_model", "saliency_maps", "saliency_maps_states", "localizer_maps"} <= gpu_rules()
    assert not {"manifest", "shard", "stats", "score_shard"} & gpu_rules()
    known = {"saliency_maps", "saliency_maps_states", "localizer_maps", "shard"}
    assert _rules_of_log_dir("group_maps_localizer_maps_saliency_maps", known) == {
        "localizer_maps", "saliency_maps"}
    assert _rules_of_log_dir("rule_saliency_maps_states", known) == {"saliency_maps_states"}
    assert _rules_of_log_dir("rule_shard", known) == {"shard"}


@pytest.mark.slow
def test_gpu_rules_got_a_gpu(cluster, slurm_run):
    """Every Slurm job running a rule that declares gpu=1 got one (--gpus=1: AllocTRES gres/gpu=1);
    the other jobs got none."""
    workdir, _, _ = slurm_run
    jobs = _sacct(cluster).set_index("id")
    gpu, root = gpu_rules(), workdir / ".snakemake" / "slurm_logs"
    known = set(workflow_rules())
    got_gpu, wrong = set(), []
    for log in root.rglob("*.log"):
        rules = _rules_of_log_dir(log.relative_to(root).parts[0], known)
        has = "gres/gpu=" in jobs.loc[log.stem, "tres"]
        if has != bool(rules & gpu):
            wrong.append((log.stem, sorted(rules), jobs.loc[log.stem, "tres"]))
        if has:
            got_gpu |= rules
    assert not wrong, f"jobs whose GPU allocation does not match their rules: {wrong}"
    if not TARGETS:  # the whole workflow: training, localizer maps and saliency maps ran on GPUs
        assert {"train_model", "localizer_maps"} <= got_gpu and got_gpu & {"saliency_maps", "saliency_maps_states"}


# --- cluster fault drills (#9): the data stage of one dataset, with the Slurm profile's own `retries`

FAULTS = ROOT / "tests" / "faults"  # sitecustomize.py: SALIENCY_AUDIT_FAIL_ONCE fault injection
TINY = ROOT / "tests" / "configs" / "tiny.yaml"


def _drill_config(path: Path, datasets: dict) -> Path:
    config = yaml.safe_load(TINY.read_text())
    config["datasets"] = datasets
    path.write_text(yaml.safe_dump(config))
    return path


def _our_jobs(env, workdir: Path) -> pd.DataFrame:
    """sacct rows of this run's Slurm jobs, with the log each one wrote."""
    logs = {p.stem: p for p in (workdir / ".snakemake" / "slurm_logs").rglob("*.log")}
    jobs = _sacct(env)
    jobs = jobs[jobs["id"].isin(logs)].copy()
    jobs["log"] = jobs["id"].map(logs)
    return jobs


@pytest.mark.slow
def test_job_failing_once_is_retried_and_run_completes(cluster, tmp_path):
    """A shard job dies once (injected); the profile's `retries: 1` resubmits it and the run ends
    with the same files as a run without the fault."""
    ds = "tiny-pna"
    config = _drill_config(tmp_path / "config.yaml", {ds: yaml.safe_load(TINY.read_text())["datasets"][ds]})
    target = f"results/{ds}/models/avg/avg_map.npy"  # manifest -> train + val shards -> AVG map
    marker = tmp_path / "fault-fired"
    workdir = tmp_path / "slurm"
    cmd = _slurm_cmd(_overlay_profile(tmp_path / "overlay", retries=None), workdir, config, target, timeout=900)
    env = dict(cluster, PYTHONPATH=str(FAULTS), SALIENCY_AUDIT_FAIL_ONCE=f"shard:{marker}")
    proc, dt = _run(cmd, env=env)
    print(f"fail-once drill: {dt:.0f} s")
    assert marker.exists(), "the fault was never injected"

    jobs = _our_jobs(cluster, workdir)
    failed = jobs[jobs["state"] == "FAILED"]
    assert len(failed) == 1, jobs
    assert "injected fault" in failed["log"].iloc[0].read_text()
    assert (jobs.drop(failed.index)["state"] == "COMPLETED").all(), jobs
    assert len(jobs) >= 4  # manifest, the failed shard job, its retry, the AVG map

    reference = tmp_path / "local"
    local_snakemake(reference, target, configfile=config)
    ours = sorted((workdir / "results").rglob("*.np[yz]"))
    assert [p.relative_to(workdir) for p in ours] == [
        p.relative_to(reference) for p in sorted((reference / "results").rglob("*.np[yz]"))
    ]
    for path in ours:
        _compare_arrays(path, reference / path.relative_to(workdir))


@pytest.mark.slow
def test_job_failing_always_stops_run_naming_rule_wildcards_and_log(cluster, tmp_path):
    """A shard whose image file is corrupt fails on every attempt: the run stops, and what Snakemake
    prints names the rule, its wildcards and the log, whose text names the bad file."""
    ds = "bad-folder"
    ds_cfg, _, _ = make_folder(tmp_path / "data", n_pos=6, n_neg=6, size=48)
    config = _drill_config(tmp_path / "config.yaml", {ds: ds_cfg})
    workdir = tmp_path / "slurm"
    local_snakemake(workdir, f"results/{ds}/data/manifest.csv", configfile=config)  # reads no pixels
    manifest = pd.read_csv(workdir / "results" / ds / "data" / "manifest.csv", dtype={"image_id": str})
    bad = manifest[manifest["split"] == "train"].iloc[0]
    bad_file = Path(ds_cfg["images_dir"]) / f"{bad['image_id']}.png"
    bad_file.write_bytes(b"this is not a PNG file" * 8)
    shard = f"{int(bad['shard']):03d}"
    target = f"results/{ds}/data/shards/train_{shard}.npz"

    cmd = _slurm_cmd(_overlay_profile(tmp_path / "overlay", retries=None), workdir, config, target, timeout=600)
    proc, dt = _run(cmd, env=cluster, check=False)
    print(f"always-fail drill: {dt:.0f} s")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    # grouped on Slurm: "Error in group shards ... rule shard: ... log: <rule log>", then the failed
    # job's Slurm log (the profile's show-failed-logs), with the wildcards and the rule's own error
    log = f"logs/{ds}/data/shard_train_{shard}.log"
    error = out[out.find("Error in "):]
    assert "Error in rule shard" in error or ("Error in group shards" in error and "rule shard:" in error), out[-3000:]
    assert f"log: {log}" in error, error[:3000]
    assert f"wildcards: dataset={ds}, split=train, shard={shard}" in error, error[:3000]
    assert f"{bad_file}: unreadable or corrupt image file" in error, error[:3000]
    assert f"{bad_file}: unreadable or corrupt image file" in (workdir / log).read_text()
    assert not (workdir / target).exists()

    jobs = _our_jobs(cluster, workdir)
    assert list(jobs["state"]) == ["FAILED", "FAILED"], jobs  # the first attempt and the profile's one retry
