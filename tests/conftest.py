"""Shared fixtures. ``tiny_run``: the whole workflow on tests/configs/tiny.yaml, run once per session."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "configs" / "tiny.yaml"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


#: TensorFlow jobs of the tiny config are dominated by start-up and tracing, not arithmetic: one
#: thread each and two at a time (no GPU here) halves the wall time of a run on 2 cores. Every run
#: whose results are compared with ``tiny_run`` uses the same thread counts.
TF_THREADS = ["--set-threads", "train_model=1", "saliency_maps_all_methods=1", "saliency_maps=1", "localizer_maps=1"]
PARALLEL_TF = [*TF_THREADS, "--resources", "gpu=2"]


def snakemake(workdir, *args, configfile=TINY, check=True, timeout=1800, **kwargs):
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
    path = Path(workdir) / "tiny_phi.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A completed tiny run (all targets and the HTML report) on tiny_phi_config; returns its
    working directory. Do not modify it (use ``tiny_copy``)."""
    workdir = tmp_path_factory.mktemp("tiny_run")
    config = tiny_phi_config(workdir)
    snakemake(workdir, configfile=config)
    snakemake(workdir, "--report", "results/report.html", configfile=config)
    return workdir


@pytest.fixture
def tiny_copy(tiny_run, tmp_path):
    """A private copy of the completed tiny run, free to modify (Snakemake metadata included)."""
    dst = tmp_path / "run"
    shutil.copytree(tiny_run, dst, symlinks=True)
    return dst
