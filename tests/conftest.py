"""Shared fixtures. ``tiny_run``: the whole workflow on tests/configs/tiny.yaml, run once per session."""

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
from saliency_audit.smk import quiet_tensorflow  # noqa: E402  (as rules/common.smk: before TensorFlow)

quiet_tensorflow()

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "configs" / "tiny.yaml"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


#: TensorFlow jobs of the tiny config are dominated by start-up and tracing, not arithmetic: one
#: thread each and two at a time (no GPU here) halves the wall time of a run on 2 cores. Every run
#: whose results are compared with ``tiny_run`` uses the same thread counts.
TF_THREADS = ["--set-threads", "train_model=1", "saliency_maps_states=1", "saliency_maps=1",
              "localizer_maps=1"]
PARALLEL_TF = [*TF_THREADS, "--resources", "gpu=2"]


#: Tests of other files that read the statistics' outputs of ``tiny_run`` (skipped without R, with
#: the reason); a test of one's own file can say so with ``@pytest.mark.needs_r`` instead.
R_DEPENDENT = {
    "test_pipeline.py::test_every_stage_produced_its_tables": "Table 2 verdicts come from the statistics",
    "test_kill_drill.py::test_killed_runs_resume_to_identical_results": "one kill point is the statistics rule",
    "test_stats.py::test_missing_r_package_clear_message": "asks a running R for a missing R package",
}


@functools.lru_cache(maxsize=None)
def r_missing_reason() -> str | None:
    """Why the statistics (R through rpy2, with lme4, lmerTest, multcomp) cannot run here, or None.

    Asked of :func:`saliency_audit.stats.lmm.check_r` in a child process, so this process never
    starts an embedded R (and a PATH without R, as in tests/test_no_r.py, is honoured).
    """
    code = "from saliency_audit.stats.lmm import check_r; check_r()"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if proc.returncode == 0:
        return None
    last = (proc.stderr.strip().splitlines() or ["check_r failed"])[-1]
    return f"statistics unavailable here (R/rpy2): {last.split('MissingRError: ')[-1][:300]}"


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_r: needs R with lme4/lmerTest/multcomp through rpy2 (skipped without)")


def pytest_collection_modifyitems(config, items):
    wanted = [i for i in items if i.get_closest_marker("needs_r") or any(k in i.nodeid for k in R_DEPENDENT)]
    if not wanted or r_missing_reason() is None:
        return
    for item in wanted:
        why = next((v for k, v in R_DEPENDENT.items() if k in item.nodeid), "needs the statistics")
        item.add_marker(pytest.mark.skip(reason=f"{why}; {r_missing_reason()}"))


def snakemake(workdir, *args, configfile=TINY, check=True, timeout=3600, **kwargs):
    """Run the workflow of this repo in ``workdir`` with ``configfile`` replacing config.yaml."""
    # --configfile and --resources take several values: "-d" and "--replace-workflow-config" end
    # them, so targets in ``args`` are not swallowed
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--cores", "2", *PARALLEL_TF, "-d", str(workdir), *args,
           "--replace-workflow-config", "--configfile", str(configfile)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


def tiny_phi_config(workdir) -> Path:
    """tests/configs/tiny.yaml with its segmentation dataset re-ingested as SIIM-style DICOM + RLE
    carrying patient data in the headers (tests/phi_fixture.py)."""
    import yaml

    from phi_fixture import make_phi_siim

    cfg = yaml.safe_load(TINY.read_text())
    ds = cfg["datasets"]["tiny-ptx"]
    cfg["datasets"]["tiny-ptx"] = make_phi_siim(Path(workdir) / "input", ds, cfg["seed"], cfg["image_size"])
    if r_missing_reason() is not None:  # no R here: the shared run skips the statistics
        cfg.setdefault("stats", {})["enabled"] = False
    path = Path(workdir) / "tiny_phi.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A completed tiny run (all targets and the HTML report) on tiny_phi_config; returns its
    working directory. Do not modify it (copy it: tests/test_rerun.py)."""
    workdir = tmp_path_factory.mktemp("tiny_run")
    config = tiny_phi_config(workdir)
    snakemake(workdir, configfile=config)
    snakemake(workdir, "--report", "results/report.html", configfile=config)
    return workdir


TINY_METHOD = REPO / "tests" / "configs" / "tiny_method.yaml"


@pytest.fixture(scope="session")
def tiny_method_run(tmp_path_factory):
    """A completed run of tests/configs/tiny_method.yaml: the cluster's job shape (``saliency.job_per:
    method``, rule ``saliency_maps``) and independent randomization (``indep-*`` states), one
    dataset, two methods; returns its working directory (its config is ``tiny_method.yaml`` there). Do
    not modify it."""
    import yaml

    workdir = tmp_path_factory.mktemp("tiny_method_run")
    # written as tests/test_rerun.py writes its changed configs (yaml.safe_dump, sorted keys): Snakemake
    # compares dict params by their text, so the same settings in another key order would rerun jobs
    (workdir / "tiny_method.yaml").write_text(yaml.safe_dump(yaml.safe_load(TINY_METHOD.read_text())))
    snakemake(workdir, configfile=workdir / "tiny_method.yaml", timeout=3600)
    return workdir
