"""Without R (simulated: a PATH without R/Rscript and no R_HOME) the suite skips the tests that need
the statistics, with the reason, and the shared tiny run is configured with ``stats.enabled: false``."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO

TESTS = REPO / "tests"


@pytest.fixture(scope="module")
def no_r_env(tmp_path_factory):
    """The environment with every PATH directory mirrored by symlinks, minus R and Rscript."""
    fake = tmp_path_factory.mktemp("bin_without_r")
    for d in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            if name in ("R", "Rscript") or (fake / name).exists():
                continue
            (fake / name).symlink_to(Path(d) / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("R_")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), str(fake)])
    return env


def run_py(code, env, **kw):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=TESTS,
                          timeout=600, **kw)


def test_detector_and_tiny_config_without_r(no_r_env, tmp_path):
    proc = run_py(
        "import sys, yaml, conftest\n"
        "print(conftest.r_missing_reason())\n"
        f"cfg = yaml.safe_load(conftest.tiny_phi_config({str(tmp_path)!r}).read_text())\n"
        "print('stats.enabled =', cfg['stats']['enabled'])\n",
        no_r_env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    reason, enabled = proc.stdout.strip().splitlines()[-2:]
    assert reason.startswith("statistics unavailable here (R/rpy2): the statistics need R")
    assert "`R` is not on PATH" in reason
    assert enabled == "stats.enabled = False"


def test_detector_and_tiny_config_with_r(tmp_path):
    """Here R is installed (CI installs it too): nothing is skipped and the tiny run has statistics."""
    import conftest

    if conftest.r_missing_reason() is not None:
        pytest.skip(conftest.r_missing_reason())
    cfg = yaml.safe_load(conftest.tiny_phi_config(tmp_path).read_text())
    assert cfg.get("stats", {}).get("enabled", True) is True


def test_suite_skips_r_tests_with_a_reason_without_r(no_r_env):
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests/test_stats.py",
         "tests/test_pipeline.py::test_every_stage_produced_its_tables"],
        capture_output=True, text=True, env=no_r_env, cwd=REPO, timeout=900,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]  # skips, no errors or failures
    assert "error" not in out.lower().split("short test summary")[-1].replace("errors", "")
    assert "SKIPPED" in out and "R with lme4/lmerTest/multcomp not available" in out  # test_stats' own skip
    assert "Table 2 verdicts come from the statistics; statistics unavailable here (R/rpy2)" in out


def test_setup_without_r_installs_the_test_extra_minus_rpy2():
    """scripts/setup.sh's no-R branch installs exactly pyproject's [test] extra without rpy2."""
    import re
    import tomllib

    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    setup = (REPO / "scripts" / "setup.sh").read_text()
    line = re.search(r"pip install -q -e \. (.+)\n", setup).group(1).split()
    assert sorted(line) == sorted(p for p in extra if not p.startswith("rpy2"))
    assert 'command -v R >/dev/null 2>&1 || extras="test-nor"' in setup
