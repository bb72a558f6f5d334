"""The software that produced the results: Python packages, R and its packages, the code itself.

Written to ``results/report/software_versions.csv`` (component, kind, version) next to the exact
configuration used (``results/report/config.yaml``), both shown in the Snakemake report.
R is asked through ``Rscript`` (no rpy2 needed); a missing R is reported as ``not available``.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from importlib import metadata

import pandas as pd

from .. import plan

PYTHON_PACKAGES = [
    "saliency-audit", "snakemake", "tensorflow", "keras", "tf-keras-vis", "saliency", "numpy", "scipy", "pandas",
    "scikit-image", "scikit-learn", "pydicom", "pillow", "pylibjpeg", "matplotlib", "h5py", "rpy2", "jsonschema",
]  # fmt: skip
R_PACKAGES = ["lme4", "lmerTest", "multcomp", "mvtnorm", "Matrix", "pbkrtest"]
SUBPACKAGES = ["data", "models", "saliency", "metrics", "stats", "report"]


def python_versions(packages=PYTHON_PACKAGES) -> list[tuple[str, str, str]]:
    rows = [("python", "runtime", sys.version.split()[0]), ("platform", "runtime", platform.platform())]
    for p in packages:
        try:
            rows.append((p, "python package", metadata.version(p)))
        except metadata.PackageNotFoundError:
            rows.append((p, "python package", "not installed"))
    return rows


def r_versions(packages=R_PACKAGES, rscript=None) -> list[tuple[str, str, str]]:
    """R's version and each R package's version (``not installed``), via ``Rscript``."""
    rscript = rscript or shutil.which("Rscript")
    if rscript is None:
        return [("R", "R", "not available")]
    code = (
        "cat('R ', R.version$major, '.', R.version$minor, '\\n', sep='');"
        f"for (p in c({', '.join(repr(p) for p in packages)})) "
        "cat(p, if (nzchar(system.file(package = p))) as.character(packageVersion(p)) else 'not installed', '\\n')"
    )
    try:
        out = subprocess.run([rscript, "--vanilla", "-e", code], capture_output=True, text=True, timeout=120).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return [("R", "R", f"not available ({exc})")]
    rows = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "R":
            rows.append(("R", "R", parts[1]))
        elif len(parts) >= 2:
            rows.append((parts[0], "R package", " ".join(parts[1:])))
    return rows or [("R", "R", "not available")]


def code_versions() -> list[tuple[str, str, str]]:
    """Source hash of each subpackage (what rules carry in ``params.code``)."""
    return [(f"saliency_audit.{s}", "code hash", plan.package_hash(s)) for s in SUBPACKAGES]


def software_versions(with_r: bool = True) -> pd.DataFrame:
    rows = (
        python_versions()
        + (r_versions() if with_r else [("R", "R", "not used (stats.enabled: false)")])
        + code_versions()
    )
    return pd.DataFrame(rows, columns=["component", "kind", "version"])
