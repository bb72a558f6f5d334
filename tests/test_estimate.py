"""Sized maps jobs and the `estimate` target, through Snakemake.

- A planned maps job's `runtime` (from `snakemake -n` of the paper-scale config with the manifests
  benchmarks/bench_dag.py writes: test shard 000 has 64 images with a finding, the last, 004, has 11)
  is the cost model's figure for its method and shard, so it grows with both.
- `snakemake estimate` on the tiny config (no manifest yet: n_images x the test fraction) counts the
  maps jobs the plan has and sums the cost model's hours.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from saliency_audit import plan
from saliency_audit.saliency import cost

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def _bench():
    spec = importlib.util.spec_from_file_location("bench_dag", ROOT / "benchmarks" / "bench_dag.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _snakemake(workdir, config, *args):
    cmd = [SNAKEMAKE, "--cores", "1", "--replace-workflow-config", "--configfile", str(config),
           "--directory", str(workdir), *args]
    proc = subprocess.run(cmd, cwd=ROOT, text=True, capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_maps_runtime_from_cost_model_and_shard(tmp_path):
    config_path = ROOT / "tests" / "configs" / "paper_scale.yaml"
    _bench().prepare(tmp_path, config_path)
    jobs = [("GRAD", "000"), ("SG", "000"), ("SIG", "000"), ("SIG", "004")]
    targets = [f"results/siim/maps/inceptionv3_1/original/{m}/test_{s}.npz" for m, s in jobs]
    out = _snakemake(tmp_path, config_path, "-n", *targets)
    runtime = {
        (m, s): int(r)
        for m, s, r in re.findall(
            r"method=(\w+), shard=(\d{3})\n(?:\s*priority: \d+\n)?\s*resources: [^\n]*?runtime=(\d+)", out
        )
    }
    assert set(runtime) == set(jobs), out[-3000:]
    table = cost.read_calibration(cost.SHIPPED_CALIBRATION)
    images = {"000": 64, "004": 11}  # every 4th image has a finding (bench_dag.fake_manifest)
    for (m, s), minutes in runtime.items():
        seconds = images[s] * cost.method_seconds(table, m, None, "inceptionv3", 320)
        assert minutes == cost.runtime_minutes(seconds), (m, s)
    assert runtime["SIG", "000"] > runtime["SG", "000"] >= runtime["GRAD", "000"]
    assert runtime["SIG", "000"] > runtime["SIG", "004"]


def test_shard_and_training_resources_from_cost_model(tmp_path):
    """At paper scale (bench_dag's manifest: SIIM 8646 / 961 / 1068 images in shards of 256), a shard
    job requests the ingest figures x its images, a train_model job the cost model x epochs x images;
    maps jobs the measured per-item memory (at the CPU batch of 32 under the 8000 MB floor)."""
    config_path = ROOT / "tests" / "configs" / "paper_scale.yaml"
    _bench().prepare(tmp_path, config_path)
    targets = ["results/siim/models/inceptionv3_1/model.keras", "results/siim/models/unet_1/model.keras",
               "results/siim/maps/inceptionv3_1/original/SIG/test_000.npz"]
    out = _snakemake(tmp_path, config_path, "-n", *targets)
    res = {w: dict(kv.split("=") for kv in r.split(", ") if "=" in kv)
           for w, r in re.findall(r"wildcards: ([^\n]*)\n(?:\s*priority: \d+\n)?\s*resources: ([^\n]*)", out)}
    table = cost.read_calibration(cost.SHIPPED_CALIBRATION)
    full = res["dataset=siim, split=train, shard=000"]
    last = res["dataset=siim, split=train, shard=033"]  # 8646 - 33 x 256 = 198 images
    assert int(full["runtime"]) == cost.shard_runtime_minutes(table, 256)
    assert int(last["runtime"]) == cost.shard_runtime_minutes(table, 198)
    assert int(full["mem_mb"]) == cost.shard_mem_mb(256, 320)
    images = {"train": 8646, "val": 961, "test": 1068}
    for model, epochs in (("inceptionv3_1", 20), ("unet_1", 75)):  # schema defaults
        sec = cost.training_seconds(table, plan.arch_of(model), 320, epochs, images)
        assert int(res[f"dataset=siim, model={model}"]["runtime"]) == cost.runtime_minutes(sec), model
    maps = res["dataset=siim, model=inceptionv3_1, state=original, method=SIG, shard=000"]
    assert int(maps["mem_mb"]) == cost.maps_mem_mb(320, None, 8000) == 8000


def test_estimate_target_on_tiny_config(tmp_path):
    config_path = ROOT / "tests" / "configs" / "tiny.yaml"
    out = _snakemake(tmp_path, config_path, "estimate")
    assert "shipped CPU table" in out
    table = pd.read_csv(tmp_path / "results" / "estimate.tsv", sep="\t").set_index("stage")

    from snakemake.utils import validate

    config = yaml.safe_load(config_path.read_text())
    validate(config, str(ROOT / "schemas" / "config.schema.yaml"))
    # 48 images x 0.10 = 5 test images, one shard per dataset; job_per: model: one job per model
    # (the primary's states in one saliency_maps_states job, not grouped; the others' grouped by 8)
    assert config["saliency"]["job_per"] == "model"
    models = [{m for m, _ in plan.map_models(config, ds)} for ds in config["datasets"]]
    assert table.loc["maps", "jobs"] == sum(map(len, models))
    assert table.loc["maps", "rule"] == "saliency_maps_states, saliency_maps"
    others = sum(len(m) - 1 for m in models)
    assert table.loc["maps", "slurm_jobs"] == len(models) + -(-others // 8)  # group-components maps: 8
    assert table.loc["training", "jobs"] == sum(len(plan.model_ids(config, ds)) for ds in config["datasets"])
    assert table.loc["xrai_segments", "jobs"] == 2
    # data stage: round(48 x 0.81) = 39 train (2 shards of 32), 4 val, 5 test images: 4 shards per dataset
    assert table.loc["data", "jobs"] == 8
    assert table.loc["data", "slurm_jobs"] == 2  # group-components shards: 4
    stages = table.drop(index="total")
    for col in ("jobs", "slurm_jobs", "gpu_hours", "cpu_hours"):
        assert table.loc["total", col] == pytest.approx(stages[col].sum(), abs=0.02)
    assert table.loc["maps", "gpu_hours"] > 0
    # tiny training jobs (1 epoch of 39 images at 80 px) take seconds: each requests the start-up floor
    assert table.loc["training", "basis"] == "cost model"
    assert table.loc["training", "requested_hours"] == pytest.approx(
        table.loc["training", "jobs"] * (cost.STARTUP_MINUTES + 1) / 60, abs=0.01)


@pytest.mark.slow
def test_calibrate_then_estimate_uses_it(tmp_path):
    """`snakemake calibrate` (TensorFlow, ~25 s on 2 cores) writes a table for the configured image
    size and classifiers, and the estimate then uses it instead of the shipped CPU table."""
    config_path = ROOT / "tests" / "configs" / "tiny.yaml"
    _snakemake(tmp_path, config_path, "calibrate")
    table = cost.read_calibration(tmp_path / "results" / "calibration.csv")
    grads = {(r["arch"], r["image_size"], r["batch_size"]) for r in table if r["kind"] == "gradient"}
    assert grads == {("inceptionv3", 80, 32), ("densenet121", 80, 32)}  # batch_size null on CPU: 32
    assert all(r["seconds"] > 0 for r in table)
    out = _snakemake(tmp_path, config_path, "estimate")
    assert "calibration: results/calibration.csv" in out and "shipped" not in out
