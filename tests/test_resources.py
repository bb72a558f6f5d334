"""Resource limits (#9): a saliency job on a paper-size image stays within the memory its rule declares.

benchmarks/mem_saliency.py runs what a maps job runs (InceptionV3, 320 px, SIG with its default
25 samples x 25 steps, the CPU batch size) in a fresh process and reports its peak RSS. Measured on
the 2-core CI machine: ~2.8 GB peak (0.8 GB after building the model) against MAPS_MEM_MB = 8000.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from saliency_audit.saliency.jobs import MAPS_MEM_MB
from saliency_audit.saliency.registry import resolve_params

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "mem_saliency.py"


@pytest.mark.slow  # a 320 px InceptionV3 SIG job: minutes
def test_paper_size_sig_shard_fits_declared_memory():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--size", "320", "--method", "SIG", "--images", "1", "--json"],
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert proc.stdout.strip(), proc.stderr[-4000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    print(r)
    assert r["params"] == resolve_params("SIG", None) and (r["params"]["samples"], r["params"]["steps"]) == (25, 25)
    assert r["declared_mem_mb"] == MAPS_MEM_MB
    # a real measurement: the gradient calls of 320 px InceptionV3 batches add at least a GB
    assert r["peak_rss_mb"] > r["rss_before_maps_mb"] + 1000, r
    assert r["peak_rss_mb"] <= MAPS_MEM_MB, r
    assert proc.returncode == 0
