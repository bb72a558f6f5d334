"""Rule estimate: what the run of this config costs, per stage (saliency_audit.saliency.cost.estimate_rows)."""

import sys
from pathlib import Path

import pandas as pd

p = snakemake.params  # noqa: F821
COLUMNS = ["stage", "rule", "jobs", "slurm_jobs", "gpu_hours", "cpu_hours", "requested_hours", "basis"]
table = pd.DataFrame(list(p.rows))[COLUMNS].round(2)
Path(p.out).parent.mkdir(parents=True, exist_ok=True)
table.to_csv(p.out, sep="\t", index=False)
note = (
    f"calibration: {p.calibration}"
    + (" (shipped CPU table: run `snakemake calibrate` where the jobs run for their own figures)" if p.shipped else "")
)
print(table.to_string(index=False), note, f"written to {p.out}", sep="\n", file=sys.stderr)
