"""Time per stage of a run, from the rules' benchmark files (printed when a run ends).

Every rule writes ``benchmarks/out/[<dataset>/]<stage>/...tsv`` (Snakemake ``benchmark:``: the
job's wall seconds ``s`` and ``cpu_time``); the file is written when the job ends, so its
modification time is the job's end and ``end - s`` its start. A stage's wall time is the span from
its first job's start to its last job's end (stages overlap when jobs of several run at once);
its job time is the sum over its jobs.

``python -m saliency_audit.progress [benchmarks/out]`` prints the table for every benchmark file
there (a finished run from scratch: the README's time per stage).
"""

from __future__ import annotations

import csv
import datetime
import sys
from pathlib import Path

#: Stages in the order data flows (the folder under ``benchmarks/out/[<dataset>/]``).
STAGES = ("data", "byom", "models", "maps", "scores", "report")


def stage_of(path: Path, root: Path) -> str:
    """The stage of a benchmark file: the first folder of its path under ``root`` that names one."""
    parts = path.relative_to(root).parts[:-1]
    return next((p for p in parts if p in STAGES), parts[0] if parts else "other")


def stage_times(root="benchmarks/out", since: float | None = None) -> list[dict]:
    """Per stage (in :data:`STAGES` order): ``jobs``, ``wall_s`` (first start to last end),
    ``job_s`` and ``cpu_s`` (sums), over the benchmark files under ``root`` written at or after
    ``since`` (a POSIX time; None: all)."""
    root = Path(root)
    rows: dict[str, dict] = {}
    for path in sorted(root.rglob("*.tsv")) if root.is_dir() else []:
        end = path.stat().st_mtime
        if since is not None and end < since:
            continue
        with open(path, newline="") as fh:
            rec = next(csv.DictReader(fh, delimiter="\t"), None)
        if not rec:
            continue
        s, cpu = _number(rec.get("s")), _number(rec.get("cpu_time"))
        r = rows.setdefault(stage_of(path, root), dict(jobs=0, start=end - s, end=end, job_s=0.0, cpu_s=0.0))
        r["jobs"] += 1
        r["start"], r["end"] = min(r["start"], end - s), max(r["end"], end)
        r["job_s"] += s
        r["cpu_s"] += cpu
    order = {s: i for i, s in enumerate(STAGES)}
    return [
        dict(stage=k, jobs=r["jobs"], wall_s=r["end"] - r["start"], job_s=r["job_s"], cpu_s=r["cpu_s"])
        for k, r in sorted(rows.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[1]["start"]))
    ]


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):  # Snakemake writes "NA" when it could not measure
        return 0.0


def format_stage_times(rows: list[dict]) -> str:
    """One line per stage: ``stage  jobs  wall h:mm:ss  (job time h:mm:ss, CPU h:mm:ss)``."""
    if not rows:
        return "no benchmark files written by this run"

    def hms(sec):
        return str(datetime.timedelta(seconds=round(sec)))

    lines = ["time per stage (wall: first job's start to last job's end; job/CPU: summed over jobs)"]
    for r in rows:
        lines.append(
            f"  {r['stage']:<8} {r['jobs']:>5} jobs  wall {hms(r['wall_s']):>8}  "
            f"(job time {hms(r['job_s'])}, CPU {hms(r['cpu_s'])})"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    print(format_stage_times(stage_times(argv[0] if argv else "benchmarks/out")))


if __name__ == "__main__":
    main()
