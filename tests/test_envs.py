"""The conda environments in envs/: parse, pin every package, agree with pyproject.toml's pins.

No conda channel is reachable in CI, so the environments are not built here; these checks catch
what breaks a cluster run first (an unpinned or drifting package, a rule without an environment).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ENVS = sorted((ROOT / "envs").glob("*.yaml"))
#: conda `name=version[=build]` or pip `name[extras]==version`
CONDA_PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)=(?P<version>[0-9][A-Za-z0-9_.\-]*)(=[A-Za-z0-9_.*]+)?$")
PIP_PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)(\[[A-Za-z0-9_,\-]+\])?==(?P<version>[0-9][A-Za-z0-9_.\-+]*)$")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    pins = {}
    for req in reqs:
        m = PIP_PIN.match(req.strip())
        if m:
            pins[norm(m["name"])] = m["version"]
    return pins


def env_pins(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(conda pins, pip pins) of one env file; raises AssertionError on an unpinned entry."""
    spec = yaml.safe_load(path.read_text())
    assert set(spec) <= {"name", "channels", "dependencies"}, f"{path.name}: unexpected keys {set(spec)}"
    assert "conda-forge" in spec["channels"], f"{path.name}: conda-forge channel missing"
    conda, pip = {}, {}
    for dep in spec["dependencies"]:
        if isinstance(dep, dict):
            assert set(dep) == {"pip"}, f"{path.name}: unexpected mapping {dep}"
            for req in dep["pip"]:
                m = PIP_PIN.match(req)
                assert m, f"{path.name}: pip requirement {req!r} is not pinned with =="
                pip[norm(m["name"])] = m["version"]
        else:
            m = CONDA_PIN.match(dep)
            assert m, f"{path.name}: conda dependency {dep!r} is not pinned with ="
            conda[norm(m["name"])] = m["version"]
    return conda, pip


def test_envs_exist():
    names = {p.stem for p in ENVS}
    assert {"tensorflow", "data", "criteria", "stats", "report"} <= names


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_env_parses_and_pins_everything(path):
    conda, pip = env_pins(path)
    assert conda.get("python") == "3.11", f"{path.name}: python must match requires-python (3.11)"
    assert "pip" in conda
    assert not set(conda) & set(pip), f"{path.name}: installed twice: {set(conda) & set(pip)}"


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_env_versions_match_pyproject(path):
    pins = pyproject_pins()
    _, pip = env_pins(path)
    shared = set(pip) & set(pins)
    assert shared, f"{path.name}: no package in common with pyproject.toml"
    wrong = {name: (pip[name], pins[name]) for name in shared if pip[name] != pins[name]}
    assert not wrong, f"{path.name}: env pin != pyproject pin: {wrong}"


@pytest.mark.parametrize("path", ENVS, ids=lambda p: p.name)
def test_env_installs_this_package(path):
    """Each env installs the project through its post-deploy script, from SALIENCY_AUDIT_SRC."""
    script = path.with_suffix(".post-deploy.sh")
    assert script.is_file(), f"{script.name} missing"
    text = script.read_text()
    assert "pip install --no-deps" in text and '"$SALIENCY_AUDIT_SRC"' in text


def test_tensorflow_env_is_the_cuda_build():
    _, pip = env_pins(ROOT / "envs" / "tensorflow.yaml")
    raw = (ROOT / "envs" / "tensorflow.yaml").read_text()
    assert "tensorflow[and-cuda]==" in raw
    assert pip["tensorflow"] == pyproject_pins()["tensorflow"]


def test_stats_env_has_r_packages():
    conda, pip = env_pins(ROOT / "envs" / "stats.yaml")
    assert conda["r-base"].startswith("4.2")
    assert {"r-lme4", "r-lmertest", "r-multcomp"} <= set(conda)
    assert pip["rpy2"] == pyproject_pins()["rpy2"]


def test_pin_patterns_reject_loose_specs():
    """The checker itself: loose specs must fail, exact ones pass."""
    assert not PIP_PIN.match("numpy>=2")
    assert not PIP_PIN.match("numpy")
    assert PIP_PIN.match("tensorflow[and-cuda]==2.21.0")
    assert not CONDA_PIN.match("r-base")
    assert not CONDA_PIN.match("r-base>=4.2")
    assert CONDA_PIN.match("r-lme4=1.1_31")


def _rule_blocks(text: str):
    """(kind, name, body) of every rule/checkpoint in a .smk file."""
    parts = re.split(r"^[ \t]*(rule|checkpoint) (\w+):[ \t]*$", text, flags=re.M)
    for i in range(1, len(parts) - 1, 3):
        yield parts[i], parts[i + 1], parts[i + 2]


def test_every_job_rule_names_an_env():
    """Rules that run code (script:/shell:/run:) name an existing envs/*.yaml (also `snakemake --lint`)."""
    missing = []
    env_names = {p.name for p in ENVS}
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        for _, name, body in _rule_blocks(smk.read_text()):
            runs_code = re.search(r"^\s+(script|shell|run|notebook|wrapper):", body, flags=re.M)
            if not runs_code:
                continue
            m = re.search(r'^\s+conda:\s*\n\s+"\.\./envs/([\w.\-]+)"', body, flags=re.M)
            if not m:
                missing.append(f"{smk.name}:{name}")
            else:
                assert m.group(1) in env_names, f"{smk.name}:{name} names unknown env {m.group(1)}"
    assert not missing, f"rules without conda: {missing}"
