"""How big and how slow is the plan of a paper-scale run? Prints the dry run's wall time and job count.

    .venv/bin/python benchmarks/bench_dag.py [--config tests/configs/paper_scale.yaml] [--keep DIR]

The dry run needs the manifest checkpoint to be complete (the shard lists come from it), so this
writes, in a temporary working directory, empty placeholders for the raw-data paths the config
names and a manifest per dataset with the paper's split sizes and the config's shard size. Then
`snakemake -n` plans every job of the run: shards, training, maps, scores, statistics, report.
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
#: (train, val, test) sizes of the paper's splits (Arun et al. 2021, Table 1 / released split files)
PAPER_SPLITS = {"siim": (8646, 961, 1068), "rsna": (12039, 1338, 1486)}
PATH_KEYS = ("images_dir", "rle_csv", "labels_csv", "class_info_csv")


def fake_manifest(dataset: str, sizes: tuple[int, int, int], shard_size: int, seed: int = 0) -> pd.DataFrame:
    """A manifest with the architecture's columns: per split, ``sizes`` images in shards of ``shard_size``."""
    rows = []
    for split, n in zip(("train", "val", "test"), sizes):
        for i in range(n):
            label = int((i * 7 + seed) % 4 == 0)
            rows.append((f"{dataset}-{split}-{i:05d}", split, label, bool(label), i // shard_size, "placeholder"))
    return pd.DataFrame(rows, columns=["image_id", "split", "label", "has_finding", "shard", "source"])


def prepare(workdir: Path, config_path: Path) -> dict:
    """Placeholders for the raw data and a complete manifest checkpoint for each dataset."""
    config = yaml.safe_load(config_path.read_text())
    shard_size = config.get("shards", {}).get("size", 256)
    for name, ds in config["datasets"].items():
        for key in PATH_KEYS:
            if ds.get(key):
                path = workdir / ds[key]
                if key.endswith("_dir"):
                    path.mkdir(parents=True, exist_ok=True)
                else:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.touch()
        sizes = PAPER_SPLITS.get(ds["kind"], PAPER_SPLITS["siim"])
        out = workdir / "results" / name / "data" / "manifest.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
        fake_manifest(name, sizes, shard_size).to_csv(out, index=False)
    return config


class DryRun(NamedTuple):
    seconds: float  # wall time
    cpu_seconds: float  # user + system time of the snakemake process
    jobs: int
    output: str


def dry_run(workdir: Path, config_path: Path, snakefile: Path = ROOT / "Snakefile") -> DryRun:
    """Wall time, CPU time, number of jobs and output of `snakemake -n` for the config in workdir."""
    cmd = [
        SNAKEMAKE, "-n", "--quiet", "rules", "--cores", "1",
        "--snakefile", str(snakefile),
        "--replace-workflow-config", "--configfile", str(config_path),
        "--directory", str(workdir),
    ]  # fmt: skip
    t0 = time.monotonic()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, cwd=ROOT, text=True, capture_output=True, timeout=600)
    seconds = time.monotonic() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_seconds = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"dry run failed ({proc.returncode}):\n{out[-5000:]}")
    m = re.search(r"^total\s+(\d+)\s*$", out, flags=re.M)
    if not m:
        raise RuntimeError(f"no job total in the dry run's output:\n{out[-3000:]}")
    return DryRun(seconds, cpu_seconds, int(m.group(1)), out)


def job_counts(out: str) -> dict[str, int]:
    """Per-rule counts from the dry run's `Job stats` table."""
    block = out.split("Job stats:", 1)[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", block, flags=re.M) if m.group(1) != "total"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "tests" / "configs" / "paper_scale.yaml")
    ap.add_argument("--keep", type=Path, help="working directory to use and keep (default: a temporary one)")
    ap.add_argument("--snakefile", type=Path, default=ROOT / "Snakefile")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-dag-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        prepare(workdir, args.config.resolve())
        run = dry_run(workdir, args.config.resolve(), args.snakefile.resolve())
    for rule, n in sorted(job_counts(run.output).items(), key=lambda kv: -kv[1]):
        print(f"  {rule:<32} {n}")
    print(f"dry run: {run.seconds:.1f} s (CPU {run.cpu_seconds:.1f} s)")
    print(f"jobs: {run.jobs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
