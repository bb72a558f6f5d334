"""The config is validated against the schema before any job runs; errors name the key."""

import copy
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import REPO, SNAKEMAKE


def dry_run(tmp_path, cfg):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return subprocess.run(
        [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "-n", "--replace-workflow-config",
         "--configfile", str(path)],
        capture_output=True, text=True, timeout=120,
    )


@pytest.fixture(scope="module")
def demo_cfg():
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_demo_config_dry_run_lists_data_jobs(tmp_path, demo_cfg):
    proc = dry_run(tmp_path, demo_cfg)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # one manifest checkpoint per dataset, before anything else
    assert "manifest        2" in proc.stdout.replace("\t", " ") or proc.stdout.count("rule manifest:") == 2


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda c: c.__setitem__("image_sise", 128), "image_sise"),  # typo at the top level
        (lambda c: c["models"]["inceptionv3"].__setitem__("learning_rate", 1e-3), "learning_rate"),
        (lambda c: c["datasets"]["synth-ptx"].__setitem__("kind", "dicomdir"), "dicomdir"),
        (lambda c: c["datasets"]["synth-ptx"].__setitem__("n_images", "many"), "many"),
        (lambda c: c.pop("datasets"), "datasets"),
    ],
)
def test_bad_config_fails_before_any_job_naming_the_key(tmp_path, demo_cfg, mutate, expected):
    cfg = copy.deepcopy(demo_cfg)
    mutate(cfg)
    proc = dry_run(tmp_path, cfg)
    assert proc.returncode != 0
    assert expected in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


def test_siim_without_rle_csv_is_rejected(tmp_path):
    cfg = {"datasets": {"x": {"kind": "siim", "images_dir": str(tmp_path)}}}
    proc = dry_run(tmp_path, cfg)
    assert proc.returncode != 0 and "rle_csv" in proc.stdout + proc.stderr


def test_missing_data_path_is_named(tmp_path):
    cfg = {"datasets": {"x": {"kind": "siim", "images_dir": str(tmp_path / "nope"), "rle_csv": "x.csv"}}}
    proc = dry_run(tmp_path, cfg)
    assert proc.returncode != 0 and "datasets.x.images_dir" in proc.stdout + proc.stderr


def test_dataset_name_with_underscore_is_accepted(tmp_path, demo_cfg):
    cfg = copy.deepcopy(demo_cfg)
    cfg["datasets"] = {"synth_ptx": cfg["datasets"]["synth-ptx"]}
    proc = dry_run(tmp_path, cfg)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "results/synth_ptx/data/manifest.csv" in proc.stdout


@pytest.mark.parametrize("name", ["synth.ptx", "synth ptx", "-synth", "_synth", "synth/ptx"])
def test_bad_dataset_name_says_which_characters_are_allowed(tmp_path, demo_cfg, name):
    cfg = copy.deepcopy(demo_cfg)
    cfg["datasets"] = {name: cfg["datasets"]["synth-ptx"]}
    proc = dry_run(tmp_path, cfg)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert f"invalid dataset name {name!r}" in out
    assert "use letters, digits, '-' and '_', starting with a letter or digit" in out


def test_dataset_name_pattern_matches_the_schema():
    from saliency_audit.config import DATASET_NAME

    schema = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
    assert schema["properties"]["datasets"]["propertyNames"]["pattern"] == DATASET_NAME.pattern
