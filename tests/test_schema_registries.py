"""The schema and the package say the same thing: each model's settings are the schema's defaults
(no default restated in code), and the config's enums are the registries' names."""

import pytest
import yaml

from conftest import REPO
from saliency_audit.architectures import ARCHITECTURES, CLASSIFIERS, LOCALIZER_FOR_TASK, TASK_OF_KIND
from saliency_audit.config import SCHEMA, with_defaults
from saliency_audit.data.base import SOURCES, get_source
from saliency_audit.errors import InputError
from saliency_audit.metrics.similarity import SIMILARITY_METRICS
from saliency_audit.metrics.utility import METRICS as UTILITY_METRICS
from saliency_audit.models.settings import ModelSettings
from saliency_audit.saliency.registry import CHANNEL_REDUCTIONS, METHOD_NAMES, PAPER_METHODS

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
