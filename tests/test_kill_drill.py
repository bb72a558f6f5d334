"""Kill drill: SIGKILL Snakemake and its jobs mid-stage, resume with the documented commands
(``snakemake --unlock``, then the same run command), and get exactly the uninterrupted run's results.

One interrupted run from scratch (the session's ``tiny_run`` config and seed, restricted to its
SIIM-style DICOM dataset, whose results do not depend on the other dataset) is killed
during data preparation, training, a saliency shard and the statistics (each kill must fire); after each kill no file
under results/ may be truncated (every npz/csv parses), outputs completed before a kill are not
recomputed, and the final score tables, Table 2 and statistics equal the uninterrupted run's.
"""

import os
import re
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest

import yaml

from conftest import PARALLEL_TF, REPO, SNAKEMAKE, snakemake

pytestmark = pytest.mark.slow

#: (stage, regex of the rule whose start triggers the kill, seconds to wait after it starts)
KILL_POINTS = [
    ("data preparation", r"rule shard:", 1.0),
    ("training", r"rule train_model:", 8.0),
    ("saliency", r"rule saliency_maps(_all_methods)?:", 8.0),
    ("statistics", r"rule fit_stats:", 3.0),
]


def run_until(workdir, config, pattern, delay, timeout=1500):
    """Start the workflow; SIGKILL its whole process group ``delay`` s after ``pattern`` shows up.

    Returns True if it was killed, False if the run ended first.
    """
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2", *PARALLEL_TF,
           "--replace-workflow-config", "--configfile", str(config)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        for line in proc.stdout:
            if re.search(pattern, line):
                time.sleep(delay)
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:  # the run ended during the delay: nothing was killed
                    proc.wait()
                    return False
                proc.wait()
                return True
            assert time.monotonic() < deadline, "run did not reach the kill point in time"
        proc.wait()
        return False
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def snapshot(workdir):
    """mtime of every completed output under results/."""
    return {p: p.stat().st_mtime_ns for p in (Path(workdir) / "results").rglob("*") if p.is_file()}


def assert_no_corrupt_file(workdir):
    for p in (Path(workdir) / "results").rglob("*"):
        if ".tmp-" in p.name:  # a temporary file of a killed writer: never under the final name
            continue
        if p.suffix == ".npz" and p.is_file():
            with zipfile.ZipFile(p) as z:
                assert z.testzip() is None, p
        elif p.suffix == ".csv" and p.is_file():
            pd.read_csv(p)


DATASET = "tiny-ptx"


def result_tables(workdir):
    res = Path(workdir) / "results"
    files = [f for d in ("scores", "tables", "stats") for f in sorted(res.glob(f"{DATASET}/{d}/*.csv"))]
    return {str(p.relative_to(res)): pd.read_csv(p) for p in files}


def test_killed_runs_resume_to_identical_results(tiny_run, tmp_path):
    workdir = tmp_path / "drill"
    workdir.mkdir()
    cfg = yaml.safe_load((tiny_run / "tiny_phi.yaml").read_text())
    cfg["datasets"] = {DATASET: cfg["datasets"][DATASET]}
    config = tmp_path / "drill.yaml"
    config.write_text(yaml.safe_dump(cfg))
    killed = []
    for stage, pattern, delay in KILL_POINTS:
        before = snapshot(workdir)
        was_killed = run_until(workdir, config, pattern, delay)
        killed.append((stage, was_killed))
        assert_no_corrupt_file(workdir)
        # outputs complete before this attempt were not recomputed
        after = snapshot(workdir)
        changed = [p for p, t in before.items() if p in after and after[p] != t]
        assert not changed, f"{stage}: completed outputs recomputed: {changed[:5]}"
        # the documented resume: unlock (a killed Snakemake leaves its lock), then the same command
        snakemake(workdir, "--unlock", configfile=config)
    assert killed == [(stage, True) for stage, _, _ in KILL_POINTS], f"kill points that did not fire: {killed}"
    snakemake(workdir, configfile=config)
    expected, got = result_tables(tiny_run), result_tables(workdir)
    assert sorted(got) == sorted(expected) and len(expected) >= 8
    for name, df in expected.items():
        pd.testing.assert_frame_equal(got[name], df, check_exact=True, obj=name)
