"""`--config` overrides of nested values are typed as the schema and the method registry say
(Snakemake reads nested --config values with YAML's BaseLoader: every scalar a string)."""

import subprocess

import pytest
import yaml

from conftest import REPO, SNAKEMAKE
from saliency_audit.config import coerce_cli_strings

SCHEMA = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())


def test_strings_typed_by_schema_and_registry():
    cfg = {
        "seed": "3",
        "datasets": {"a": {"kind": "synthetic", "prevalence": "0.4", "lesion_size": ["0.1", "0.25"], "n_images": "12"}},
        "saliency": {"params": {"SG": {"samples": "11", "noise": "0.2", "magnitude": "true"}, "IG": {"baseline": "black"}},
                     "methods": ["SG", "IG"]},
    }
    coerce_cli_strings(cfg, SCHEMA)
    assert cfg["seed"] == 3 and type(cfg["seed"]) is int
    ds = cfg["datasets"]["a"]
    assert (ds["kind"], ds["prevalence"], ds["lesion_size"], ds["n_images"]) == ("synthetic", 0.4, [0.1, 0.25], 12)
    assert type(ds["n_images"]) is int
    sg = cfg["saliency"]["params"]["SG"]
    assert sg == {"samples": 11, "noise": 0.2, "magnitude": True}
    assert type(sg["samples"]) is int and type(sg["magnitude"]) is bool
    assert cfg["saliency"]["params"]["IG"] == {"baseline": "black"}
    assert cfg["saliency"]["methods"] == ["SG", "IG"]


def test_untypable_strings_left_for_the_checks():
    """A string that does not parse as the expected type stays a string (the schema or the
    registry then names the key); a number where a string is expected stays as given."""
    cfg = {"seed": "three", "saliency": {"params": {"SG": {"samples": "eleven", "noise": "1"}}}}
    coerce_cli_strings(cfg, SCHEMA)
    assert cfg["seed"] == "three"
    assert cfg["saliency"]["params"]["SG"] == {"samples": "eleven", "noise": 1}


def dry_run(tmp_path, *config):
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-n", "--cores", "1", "--configfile", str(REPO / "config.yaml"),
           "--config", *config, "-d", str(tmp_path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_nested_numeric_override_on_the_command_line(tmp_path):
    """The README's example parses; a value of the wrong type is still refused, naming the key."""
    ok = dry_run(tmp_path, 'saliency={"params": {"SG": {"samples": 11}}}')
    assert ok.returncode == 0, ok.stderr[-3000:]
    bad = dry_run(tmp_path, 'saliency={"params": {"SG": {"samples": "many"}}}')
    assert bad.returncode != 0
    assert "saliency.params.SG.samples: expected a non-negative integer, got 'many'" in bad.stdout + bad.stderr
