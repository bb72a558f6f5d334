"""Layers point down only: pyproject's import-linter contracts hold, and they catch an upward import
(lazy ones too), an import cycle inside ``data`` and a module placed in no layer."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO

LINT = str(Path(sys.executable).with_name("lint-imports"))


def lint(cwd, pythonpath=None):
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [LINT, "--no-cache", "--no-logo", "pyproject.toml"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_the_package_keeps_its_layers():
    rc, out = lint(REPO)
    assert rc == 0, out
    assert "saliency_audit: layers point down only KEPT" in out
    assert "saliency_audit.data: the prepare stage above its sources KEPT" in out
    assert "Contracts: 2 kept, 0 broken." in out


def test_the_contracts_catch_what_they_forbid(tmp_path):
    """A copy of the package with the upward imports this layering removed put back: each is reported."""
    src = tmp_path / "src"
    shutil.copytree(REPO / "src" / "saliency_audit", src / "saliency_audit", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    pkg = src / "saliency_audit"
    with open(pkg / "plan.py", "a") as f:  # lazy, as plan.methods once looked up the paper's methods
        f.write("\n\ndef _paper_methods():\n    from .saliency.registry import PAPER_METHODS\n\n    return PAPER_METHODS\n")
    with open(pkg / "data" / "synthetic.py", "a") as f:  # a source reaching up into the stage above it
        f.write("\n\nfrom .prepare import preprocess  # noqa: E402\n")
    (pkg / "stray.py").write_text('"""A module placed in no layer."""\n')
    rc, out = lint(tmp_path, pythonpath=src)
    assert rc != 0, out
    assert "saliency_audit.plan -> saliency_audit.saliency.registry" in out
    assert "saliency_audit.data.synthetic -> saliency_audit.data.prepare" in out
    assert "saliency_audit.stray" in out
    assert "Contracts: 0 kept, 2 broken." in out
