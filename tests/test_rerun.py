"""Rerun only what changed: after a completed tiny run, changing one setting schedules exactly the
jobs that depend on it (Snakemake's params rerun trigger; every result-changing setting is a param).

The module works on a copy of the session's completed tiny run (``tiny_run``; tests/configs/tiny.yaml
names explicit InceptionV3 seeds, so one replicate's seed can change alone); each test writes a
changed config and asks `snakemake -n` and `--list-changes params`, never running the changed plan.
"""

from __future__ import annotations

import copy
import hashlib
import re
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import REPO, snakemake
from saliency_audit.saliency.registry import PAPER_METHODS

SEEDS = [101, 202]  # tests/configs/tiny.yaml

pytestmark = pytest.mark.slow


def _snakemake(workdir: Path, config: dict, *args: str, timeout: int = 1200) -> str:
    """conftest's ``snakemake`` with ``config`` written next to the working directory."""
    text = yaml.safe_dump(config)
    cfg = workdir.parent / f"config-{hashlib.sha256(text.encode()).hexdigest()[:12]}.yaml"
    cfg.write_text(text)
    proc = snakemake(workdir, *args, configfile=cfg, timeout=timeout, cwd=REPO)
    return proc.stdout + proc.stderr


def _copy_run(run: Path, config_name: str, tmp_path_factory, name: str):
    workdir = tmp_path_factory.mktemp(name) / "run"
    shutil.copytree(run, workdir, symlinks=True)  # keeps mtimes and Snakemake's metadata
    config = yaml.safe_load((workdir / config_name).read_text())
    out = _snakemake(workdir, config, "-n")
    assert "Nothing to be done" in out, out[-2000:]
    return workdir, config


@pytest.fixture(scope="module")
def completed_run(tiny_run, tmp_path_factory):
    """A copy of ``tiny_run`` (saliency.job_per: model_state, explicit InceptionV3 seeds)."""
    workdir, config = _copy_run(tiny_run, "tiny_phi.yaml", tmp_path_factory, "rerun")
    assert config["models"]["inceptionv3"]["seeds"] == SEEDS
    return workdir, config


@pytest.fixture(scope="module")
def completed_method_run(tiny_method_run, tmp_path_factory):
    """A copy of ``tiny_method_run`` (saliency.job_per: method: rule saliency_maps)."""
    workdir, config = _copy_run(tiny_method_run, "tiny_method.yaml", tmp_path_factory, "rerun-method")
    assert config["saliency"]["job_per"] == "method"
    return workdir, config


#: both job shapes (saliency.job_per: model_state, method)
@pytest.fixture(params=["completed_run", "completed_method_run"])
def any_run(request):
    return request.getfixturevalue(request.param)


def planned_jobs(out: str) -> list[tuple[str, list[str]]]:
    """(rule, outputs) of every job in a dry run's log."""
    jobs = []
    for block in re.split(r"\n(?=\[[^\]]+\]\n)|\n(?=(?:local)?(?:rule|checkpoint) \w+:\n)", out):
        m = re.search(r"^(?:local)?(?:rule|checkpoint) (\w+):$", block, flags=re.M)
        if not m:
            continue
        o = re.search(r"^\s+output: (.*)$", block, flags=re.M)
        jobs.append((m.group(1), [s.strip() for s in o.group(1).split(",")] if o else []))
    return jobs


def params_changed_outputs(out: str) -> set[str]:
    """Outputs of the dry run's jobs whose reason is a params change.

    (``--list-changes params`` is not used: Snakemake 9.27.1 lists every output there, changed or
    not, because ``params_changed`` ORs an empty change into a non-empty file set.)
    """
    files = set()
    for block in re.split(r"\n(?=\[[^\]]+\]\n)", out):
        o = re.search(r"^\s+output: (.*)$", block, flags=re.M)
        r = re.search(r"^\s+reason: (.*)$", block, flags=re.M)
        if o and r and "Params have changed" in r.group(1):
            files |= {s.strip() for s in o.group(1).split(",")}
    # the run's provenance record (results/report/config.yaml + versions) holds the whole config,
    # and each dataset's deviations table lists every setting that differs from the paper: both are
    # rewritten on any config change, by design
    return {f for f in files if not f.startswith("results/report/") and "/tables/deviations." not in f}


def plan(workdir: Path, config: dict) -> tuple[list[tuple[str, list[str]]], set[str]]:
    """(jobs a run with `config` would do, outputs whose params changed)."""
    out = _snakemake(workdir, config, "-n")
    return planned_jobs(out), params_changed_outputs(out)


def _outputs(jobs) -> set[str]:
    return {o for _, outs in jobs for o in outs}


def _rules(jobs) -> set[str]:
    return {r for r, _ in jobs}


def test_parser_reads_a_dry_run():
    out = (
        "[Thu Nov 26 02:29:55 2026]\nrule saliency_maps:\n    input: a\n    output: results/x/maps/m/original/SG/test_000.npz\n"
        "    jobid: 3\n\n[Thu Nov 26 02:29:55 2026]\nlocalrule all:\n    input: b\n    jobid: 0\n"
    )
    assert planned_jobs(out) == [("saliency_maps", ["results/x/maps/m/original/SG/test_000.npz"]), ("all", [])]


def test_changing_one_saliency_parameter_reruns_only_its_maps(any_run):
    workdir, config = any_run
    changed = copy.deepcopy(config)
    # the first method of the run with a parameter in its config: SG (tiny.yaml), IG (tiny_method.yaml)
    methods = config["saliency"].get("methods") or PAPER_METHODS  # tiny.yaml leaves the schema default
    method = next(m for m in methods if m in config["saliency"].get("params", {}))
    key = "samples" if method == "SG" else "steps"
    changed["saliency"]["params"][method][key] += 1
    jobs, files = plan(workdir, changed)
    maps = {o for o in _outputs(jobs) if "/maps/" in o}
    results = workdir / "results"
    if config["saliency"]["job_per"] == "method":
        # one job per method: exactly this method's maps, of every model, state and shard
        expected = {p.relative_to(workdir).as_posix() for p in results.rglob(f"maps/*/*/{method}/*.npz")}
        assert {r for r, _ in jobs if r.startswith("saliency_maps")} == {"saliency_maps"}
        assert any("/indep-" in f for f in expected) and any("/cascade-" in f for f in expected)
    else:
        # one job per (model, state, shard) computes every method: all classifier maps (not PRED)
        expected = {p.relative_to(workdir).as_posix() for p in results.rglob("maps/*/*/*/*.npz")}
        expected = {f for f in expected if "/PRED/" not in f}
    assert expected and files == expected, sorted(files ^ expected)[:10]
    assert maps == expected
    assert not any(r.startswith("train") or r in {"shard", "manifest", "localizer_maps", "avg_map"} for r in _rules(jobs))


def test_changing_one_replicate_seed_retrains_only_that_replicate(completed_run):
    workdir, config = completed_run
    changed = copy.deepcopy(config)
    changed["models"]["inceptionv3"]["seeds"] = [SEEDS[0], SEEDS[1] + 1]
    jobs, files = plan(workdir, changed)
    assert files, "the seed is a param of the training rule"
    assert all("/models/inceptionv3_2/" in f for f in files), sorted(files)
    outs = _outputs(jobs)
    assert not any("/models/inceptionv3_1/" in o or "/models/densenet121_" in o for o in outs)
    assert not any("/maps/inceptionv3_1/" in o or "/maps/densenet121_1/" in o for o in outs)
    retrained = {o for o in outs if o.endswith("model.keras")}
    assert retrained == {f"results/{ds}/models/inceptionv3_2/model.keras" for ds in config["datasets"]}
    maps = {o for o in outs if "/maps/" in o}
    expected_maps = {
        p.relative_to(workdir).as_posix() for p in (workdir / "results").rglob("maps/inceptionv3_2/*/*/*.npz")
    }
    assert maps == expected_maps


def test_changing_one_plotting_option_redraws_only_figures(any_run):
    workdir, config = any_run
    changed = copy.deepcopy(config)
    changed.setdefault("report", {})["dpi"] = 72
    jobs, files = plan(workdir, changed)
    assert files and all("/figures/" in f for f in files), sorted(files)
    outs = _outputs(jobs)
    assert {o for o in outs if o.startswith("results/") and not o.startswith("results/report/")} <= files
    assert not any("/maps/" in o or "/models/" in o or "/scores/" in o or "/stats/" in o for o in outs)


def test_changing_one_figures_option_redraws_only_that_figure(completed_run):
    """Each figure rule's params carry only the settings its function reads (report.figure_jobs.KEYS):
    the PR-curve method redraws Fig S4 alone."""
    workdir, config = completed_run
    changed = copy.deepcopy(config)
    changed.setdefault("report", {})["pr_method"] = "GRAD"
    jobs, files = plan(workdir, changed)
    assert files and {Path(f).name for f in files} == {"figS4_pr_curve.png", "figS4_pr_curve.svg"}, sorted(files)
    outs = {o for o in _outputs(jobs) if o.startswith("results/") and not o.startswith("results/report/")}
    assert {o for o in outs if "/tables/deviations." not in o} == files
