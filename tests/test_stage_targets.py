"""Stage targets (rules/targets.smk): `snakemake data` / models / maps / scores / stats / report run
the pipeline up to that stage, the manifest checkpoint included."""

import re

import pytest

from conftest import snakemake

pytestmark = pytest.mark.slow

DATASETS = ("tiny-ptx", "tiny-pna")


def planned(proc) -> dict[str, int]:
    """Job counts of a dry run (Snakemake's "Job stats" table; the last one printed)."""
    if "Nothing to be done" in proc.stdout:
        return {}
    tables = proc.stdout.split("Job stats:")
    assert len(tables) > 1, proc.stdout[-3000:]
    counts = {}
    for line in tables[-1].splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    counts.pop("total", None)
    return counts


def test_stage_targets_run_up_to_their_stage(tmp_path):
    # a fresh directory: the data target plans the manifest checkpoint of every dataset (the shards
    # follow once it has run), and nothing of a later stage
    assert planned(snakemake(tmp_path, "-n", "data")) == {"manifest": len(DATASETS), "data": 1}
    snakemake(tmp_path, "data")
    res = tmp_path / "results"
    for ds in DATASETS:
        assert (res / ds / "data" / "manifest.csv").is_file()
        assert len(list((res / ds / "data" / "shards").glob("test_*.npz"))) >= 1
        assert len(list((res / ds / "data" / "shards").glob("train_*.npz"))) >= 1
    assert not list(res.glob("*/models")) and not list(res.glob("*/maps"))
    assert planned(snakemake(tmp_path, "-n", "data")) == {}  # done: nothing to do

    # models: training, the AVG map and the localizer's maps only (no saliency, no scores)
    jobs = planned(snakemake(tmp_path, "-n", "models"))
    assert set(jobs) == {"train_model", "avg_map", "localizer_maps", "models"}
    assert jobs["train_model"] == 2 * (2 + 1 + 2)  # per dataset: 2 InceptionV3, 1 DenseNet, 2 localizers

    # each later target adds its own stage's rules to the ones before
    maps = set(planned(snakemake(tmp_path, "-n", "maps")))
    assert maps - {"maps"} > set(jobs) - {"models"} and maps & {"saliency_maps_states", "saliency_maps"}
    assert not maps & {"score_shard", "gather_scores", "fit_stats", "tables"}
    scores = set(planned(snakemake(tmp_path, "-n", "scores")))
    assert {"score_shard", "gather_scores", "score_summary"} <= scores
    assert not scores & {"fit_stats", "tables", "figure_utility", "software_versions"}
    stats = set(planned(snakemake(tmp_path, "-n", "stats")))
    assert "fit_stats" in stats and not stats & {"tables", "figure_utility", "software_versions"}
    report = set(planned(snakemake(tmp_path, "-n", "report")))
    assert {"fit_stats", "tables", "figure_utility", "software_versions", "report"} <= report
    default = set(planned(snakemake(tmp_path, "-n")))  # `all` is still the default target
    assert report - {"report"} == default - {"all"}
