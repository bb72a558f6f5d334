"""The schema and the package say the same thing: each model's settings are the schema's defaults
(no default restated in code), and the config's enums are the registries' names."""

import pytest
import yaml

from conftest import REPO
from saliency_audit.architectures import ARCHITECTURES, CLASSIFIERS, LOCALIZER_FOR_TASK, TASK_OF_KIND
from saliency_audit.config import SCHEMA, with_defaults
from saliency_audit.data.base import SOURCES, get_source
from saliency_audit.errors import InputError
from saliency_audit.metrics.criteria import ScoreSettings
from saliency_audit.metrics.similarity import SIMILARITY_METRICS
from saliency_audit.metrics.utility import METRICS as UTILITY_METRICS
from saliency_audit.models.settings import ModelSettings
from saliency_audit.saliency.registry import CHANNEL_REDUCTIONS, METHOD_NAMES, PAPER_METHODS
from saliency_audit.stats.run import StatsSettings, stats_settings, table_settings

PROPS = yaml.safe_load(SCHEMA.read_text())["properties"]
DATASET = yaml.safe_load(SCHEMA.read_text())["definitions"]["dataset"]["properties"]
BARE = {"datasets": {"d": {"kind": "synthetic"}}}


def test_schema_is_the_repositorys():
    assert SCHEMA == REPO / "schemas" / "config.schema.yaml"


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_each_models_settings_are_the_schemas_defaults(arch):
    """An empty ``models:`` block, filled by validate(): every setting the schema's default (the
    U-Net and RetinaNet batch size is 4, not the 16 train.py once fell back to)."""
    block = with_defaults({**BARE, "models": {}})["models"]
    got = ModelSettings.from_config(arch, block).as_dict()
    own = {k: v["default"] for k, v in PROPS["models"]["properties"][arch]["properties"].items() if "default" in v}
    shared = {k: PROPS["models"]["properties"][k]["default"] for k in ("mixed_precision", "jit_compile", "shuffle_buffer")}
    want = {k: v for k, v in {**own, **shared}.items() if k != "replicates"}
    assert got == want
    if arch in LOCALIZER_FOR_TASK.values():
        assert got["batch_size"] == 4


def test_a_set_key_wins_and_a_missing_key_is_named():
    block = with_defaults({**BARE, "models": {"unet": {"batch_size": 2, "depth": 3}, "jit_compile": True}})["models"]
    st = ModelSettings.from_config("unet", block)
    assert (st.batch_size, st.depth, st.jit_compile, st.epochs) == (2, 3, True, 75)
    with pytest.raises(InputError, match=r"models\.unet\.depth: missing"):
        ModelSettings.from_config("unet", {**block, "unet": {k: v for k, v in block["unet"].items() if k != "depth"}})
    with pytest.raises(InputError, match=r"models\.shuffle_buffer: missing"):
        ModelSettings.from_config("retinanet", {k: v for k, v in block.items() if k != "shuffle_buffer"})
    with pytest.raises(InputError, match=r"models\.retinanet: missing"):
        ModelSettings.from_config("retinanet", {"unet": block["unet"]})
    with pytest.raises(InputError, match="unknown model architecture 'vgg16'"):
        ModelSettings.from_config("vgg16", block)


def default(section, key):
    return PROPS[section]["properties"][key]["default"]


#: Each stage setting and the schema key it is read from.
SCORE_KEYS = {
    "normalization": ("saliency", "normalization"),
    "cam_normalization": ("saliency", "cam_normalization"),
    "images": ("saliency", "images"),
    "max_images": ("saliency", "max_images"),
    "data_range": ("criteria", "ssim_data_range"),
    "win_size": ("criteria", "ssim_win_size"),
    "similarity": ("criteria", "similarity"),
    "localization": ("criteria", "localization"),
    "localization_thresholds": ("criteria", "localization_thresholds"),
}
STATS_KEYS = {
    **{k: ("stats", k) for k in ("enabled", "alpha", "seed", "utility_metrics", "similarity_metrics", "sensitivity",
                                 "resamples", "fragile")},
    "low_baseline_ssim": ("criteria", "low_baseline_ssim"),
    "images": ("saliency", "images"),
    "max_images": ("saliency", "max_images"),
    "normalization": ("saliency", "normalization"),
    "cam_normalization": ("saliency", "cam_normalization"),
    **{k: ("report", k) for k in ("example_images", "pr_method", "dpi")},
}


def test_the_criteria_settings_are_the_schemas_defaults():
    got = ScoreSettings.from_config(with_defaults(BARE)).as_dict()
    assert got == {k: default(*where) for k, where in SCORE_KEYS.items()}
    assert (got["data_range"], got["win_size"], got["localization_thresholds"]) == (1.0, 7, ["otsu"])
    assert ScoreSettings.from_dict(got) == ScoreSettings.from_config(with_defaults(BARE))  # params round trip
    st = ScoreSettings.from_config(with_defaults({**BARE, "criteria": {"ssim_win_size": 5}}))
    assert (st.win_size, st.data_range) == (5, 1.0)
    with pytest.raises(InputError, match="'criteria' missing"):
        ScoreSettings.from_config({k: v for k, v in with_defaults(BARE).items() if k != "criteria"})
    with pytest.raises(InputError, match="keys"):
        ScoreSettings.from_dict({k: v for k, v in got.items() if k != "images"})


def test_the_statistics_settings_are_the_schemas_defaults():
    """The config's part of the statistics / tables / figures settings is the schema's defaults; the
    plan's part follows them (the paper's eight methods, three cascade runs, U-Net for segmentation)."""
    config = with_defaults(BARE)
    got = StatsSettings.from_config(config, "d").as_dict()
    assert {k: got[k] for k in STATS_KEYS} == {k: default(*where) for k, where in STATS_KEYS.items()}
    assert got["methods"] == got["randomized_methods"] == list(PAPER_METHODS)
    assert got["full_states"] == ["cascade-mixed1", "cascade2-mixed1", "cascade3-mixed1"]
    assert len(got["cascades"]) == default("randomization", "repeats") == 3
    assert got["states"] == got["cascades"][0] and got["states"][0] == "cascade-logits"
    assert (got["localizer"], got["primary"], got["has_avg"]) == ("unet", "inceptionv3_1", True)
    # the rules' params: the statistics' subset, and everything but the plotting options for the tables
    assert set(stats_settings(config, "d")) < set(table_settings(config, "d")) < set(got)
    assert set(got) - set(table_settings(config, "d")) == {"example_images", "pr_method", "dpi", "cam_normalization"}
    with pytest.raises(InputError, match="'stats' missing"):
        StatsSettings.from_config({k: v for k, v in config.items() if k != "stats"}, "d")


def test_the_saliency_methods_are_the_registrys():
    sal = PROPS["saliency"]["properties"]
    assert tuple(sal["methods"]["default"]) == PAPER_METHODS
    assert "registry" in sal["methods"]["description"]  # the names are checked against METHOD_NAMES at load
    assert set(PAPER_METHODS) < set(METHOD_NAMES)
    assert tuple(sal["channel_reduction"]["enum"]) == CHANNEL_REDUCTIONS


def test_the_metric_enums_are_the_registrys():
    crit, stats = PROPS["criteria"]["properties"], PROPS["stats"]["properties"]
    assert tuple(crit["similarity"]["items"]["enum"]) == SIMILARITY_METRICS
    assert tuple(crit["similarity"]["default"]) == SIMILARITY_METRICS
    assert tuple(stats["similarity_metrics"]["items"]["enum"]) == SIMILARITY_METRICS
    assert tuple(stats["utility_metrics"]["items"]["enum"]) == UTILITY_METRICS


def test_architectures_tasks_and_kinds_are_the_registrys():
    arch_blocks = [k for k, v in PROPS["models"]["properties"].items() if v.get("type") == "object"]
    assert tuple(arch_blocks) == ARCHITECTURES == CLASSIFIERS + ("unet", "retinanet")
    assert tuple(DATASET["task"]["enum"]) == tuple(LOCALIZER_FOR_TASK)
    assert set(TASK_OF_KIND) < set(DATASET["kind"]["enum"])
    with pytest.raises(InputError):  # get_source registers every kind, then names the unknown one
        get_source("d", {"datasets": {"d": {"kind": "nope"}}})
    assert set(SOURCES) == set(DATASET["kind"]["enum"])
