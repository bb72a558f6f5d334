"""Changing one method's parameter computes only that method's maps, in the coarse job shapes (issue 20).

A run of tests/configs/tiny_store.yaml (GRAD, SG, GCAM; ``saliency.job_per: model``: every state and
method of a model in one job), then the same run with SG's ``samples`` changed: Snakemake reruns
every maps job (their outputs are one job's), and each job takes GRAD's and GCAM's maps from the
map store (:mod:`saliency_audit.saliency.store`) and computes SG's alone. The scores and tables
must equal a clean run with the new parameter in a fresh directory. Last, the first directory
switches to ``job_per: model_state`` with SG's first ``samples``: every map comes from the store.
"""

from __future__ import annotations

import copy
import csv
import re
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import REPO, snakemake
from saliency_audit import io

pytestmark = pytest.mark.slow

CONFIG = REPO / "tests" / "configs" / "tiny_store.yaml"
DATASET = "tiny-s"
#: the scores of every criterion and the tables (no figures, no report: not what this test is about)
TARGETS = ("scores", f"results/{DATASET}/tables/table2.csv")
#: a maps job's log line per output (saliency_audit.saliency.store, workflow_scripts/saliency_maps.py)
STORE_LINE = re.compile(r"(results/\S+\.npz): (from store|computed)\b")


def _run(workdir: Path, config: dict) -> tuple[float, float]:
    """Run TARGETS with ``config`` in ``workdir``; (its start as a time stamp, its wall seconds)."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))  # sorted keys: dict params compare by their text
    start, clock = time.time(), time.monotonic()
    snakemake(workdir, *TARGETS, configfile=path, cwd=REPO)
    return start, time.monotonic() - clock


def _since(files, start: float):
    """The files written since ``start`` (a job shape's logs stay when the shape changes)."""
    return [f for f in files if f.stat().st_mtime >= start]


def store_lines(workdir: Path, start: float) -> dict[str, str]:
    """maps file -> 'from store' or 'computed', from the logs of the maps jobs run since ``start``."""
    out = {}
    for log in _since((workdir / "logs" / DATASET / "maps").rglob("*.log"), start):
        for m in STORE_LINE.finditer(log.read_text()):
            assert m.group(1) not in out, f"{m.group(1)} twice in the logs"
            out[m.group(1)] = m.group(2)
    return out


def maps_files(workdir: Path) -> dict[str, tuple[int, np.ndarray]]:
    """maps file of a saliency method (not the localizer's PRED) -> (inode, maps)."""
    files = sorted((workdir / "results" / DATASET / "maps").glob("*/*/*/test_*.npz"))
    return {
        f.relative_to(workdir).as_posix(): (f.stat().st_ino, io.read_npz(f)["maps"])
        for f in files
        if "/PRED/" not in f.as_posix() and "/.store/" not in f.as_posix()
    }


def maps_seconds(workdir: Path, start: float) -> float:
    """Wall seconds of the saliency maps jobs run since ``start`` (their benchmark files), summed
    (not the localizer's PRED maps)."""
    total = 0.0
    for tsv in _since((workdir / "benchmarks" / "out" / DATASET / "maps").rglob("*.tsv"), start):
        if "xrai_segments" in tsv.as_posix() or tsv.name.startswith("PRED"):
            continue
        with open(tsv) as fh:
            total += float(next(csv.DictReader(fh, delimiter="\t"))["s"])
    return total


def tables(workdir: Path) -> dict[str, str]:
    """The text of every score table and table of the dataset (results/<dataset>/{scores,tables}/*.csv)."""
    out = workdir / "results" / DATASET
    return {p.relative_to(out).as_posix(): p.read_text() for sub in ("scores", "tables") for p in (out / sub).glob("*.csv")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A run, the same run with SG's samples 2 -> 3, a clean run with samples 3, and the first
    directory with samples 2 again in the other coarse job shape: each run's store log lines, maps
    files (inode, maps), maps jobs' seconds, wall seconds and tables."""
    base = yaml.safe_load(CONFIG.read_text())
    changed = copy.deepcopy(base)
    changed["saliency"]["params"]["SG"]["samples"] += 1
    root = tmp_path_factory.mktemp("rerun_method")
    first, fresh = root / "first", root / "fresh"
    r = {"first": first, "fresh": fresh}

    def run(name, workdir, config):
        start, r[f"wall_{name}"] = _run(workdir, config)
        r[f"lines_{name}"], r[f"maps_{name}"] = store_lines(workdir, start), maps_files(workdir)
        r[f"maps_s_{name}"], r[f"tables_{name}"] = maps_seconds(workdir, start), tables(workdir)
        r[f"stored_{name}"] = len(list((workdir / "results" / DATASET / "maps" / ".store").glob("*/*.npz")))

    run("first", first, base)
    run("rerun", first, changed)
    run("fresh", fresh, changed)
    # the other coarse shape, back to SG's first parameters: the store has every map
    switched = copy.deepcopy(base)
    switched["saliency"]["job_per"] = "model_state"
    run("switch", first, switched)
    print(
        f"\nmaps jobs (sum of their wall times): first run {r['maps_s_first']:.0f} s, SG-only rerun "
        f"{r['maps_s_rerun']:.0f} s, model_state from the store {r['maps_s_switch']:.0f} s; whole runs: first "
        f"{r['wall_first']:.0f} s, SG rerun {r['wall_rerun']:.0f} s, fresh {r['wall_fresh']:.0f} s, "
        f"switch {r['wall_switch']:.0f} s"
    )
    return r


def _method(path: str) -> str:
    return path.split("/")[-2]


def test_first_run_computes_and_stores_every_map(runs):
    maps = runs["maps_first"]
    assert {_method(p) for p in maps} == {"GRAD", "SG", "GCAM"}
    assert any("/cascade-" in p for p in maps) and any("/original/" in p for p in maps)
    assert runs["lines_first"] == dict.fromkeys(maps, "computed")
    assert runs["stored_first"] == len(maps)


def test_changing_sg_computes_only_sg_maps(runs):
    before, after = runs["maps_first"], runs["maps_rerun"]
    assert set(after) == set(before)
    assert runs["lines_rerun"] == {p: "computed" if _method(p) == "SG" else "from store" for p in before}
    for path, (inode, maps) in after.items():
        if _method(path) == "SG":
            assert not np.array_equal(maps, before[path][1]), path
        else:  # the very file written by the first run (a hard link of its store entry)
            assert inode == before[path][0], path
            np.testing.assert_array_equal(maps, before[path][1], err_msg=path)
    # the store keeps both SG variants: switching back computes nothing
    assert runs["stored_rerun"] == len(before) + sum(_method(p) == "SG" for p in before)


def test_rerun_equals_a_clean_run_with_the_new_parameter(runs):
    rerun, fresh = runs["maps_rerun"], runs["maps_fresh"]
    assert set(rerun) == set(fresh)
    for path in rerun:
        np.testing.assert_array_equal(rerun[path][1], fresh[path][1], err_msg=path)
    assert {"tables/table2.csv", "scores/utility.csv", "scores/randomization.csv"} <= set(runs["tables_fresh"])
    assert runs["tables_rerun"] == runs["tables_fresh"]
    assert runs["tables_first"] != runs["tables_fresh"]  # SG's samples do change the scores


def test_another_job_shape_takes_every_map_from_the_store(runs):
    first, switched = runs["maps_first"], runs["maps_switch"]
    assert set(switched) == set(first)
    assert runs["lines_switch"] == dict.fromkeys(first, "from store")
    for path, (inode, maps) in switched.items():
        assert inode == first[path][0], path  # SG's first maps again: the very files of the first run
        np.testing.assert_array_equal(maps, first[path][1], err_msg=path)
    assert runs["tables_switch"] == runs["tables_first"]


def test_deleting_every_output_keeps_the_store(runs):
    fresh = runs["fresh"]
    store = fresh / "results" / DATASET / "maps" / ".store"
    entries = sorted(store.glob("*/*.npz"))
    snakemake(fresh, *TARGETS, "--delete-all-output", configfile=fresh / "config.yaml", cwd=REPO)
    assert not (fresh / "results" / DATASET / "tables" / "table2.csv").exists()
    assert not any(Path(p).exists() for p in (fresh / q for q in runs["maps_fresh"]))
    assert entries and sorted(store.glob("*/*.npz")) == entries
