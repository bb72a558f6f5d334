"""Checks of a configuration that the JSON schema cannot express (registry names, paths)."""

from __future__ import annotations

import re
from pathlib import Path

from .architectures import TASK_OF_KIND
from .errors import InputError

#: The workflow's config schema (Snakemake's ``validate()`` checks a config and fills its defaults).
SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"

#: Dataset names become folders (``results/<name>/``) and wildcard values; the schema's
#: ``datasets.propertyNames`` pattern is the same.
DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def check_dataset_names(config: dict) -> None:
    """Raise :class:`InputError` saying which characters a dataset name may hold (before the schema,
    whose message would only quote the pattern)."""
    for name in (config.get("datasets") or {}):
        if not DATASET_NAME.match(str(name)):
            raise InputError(
                f"datasets.{name}: invalid dataset name {str(name)!r}; use letters, digits, '-' and '_', "
                "starting with a letter or digit"
            )


def with_defaults(config: dict, schema: str | Path = SCHEMA) -> dict:
    """A copy of ``config`` checked against the schema with its defaults filled, as the Snakefile's
    ``validate()`` does: what a direct call of a stage (a test, a notebook) passes for the config.
    Raises :class:`InputError` when the schema file is missing and Snakemake's ``WorkflowError``
    naming the key when the config breaks the schema."""
    import copy

    from snakemake.utils import validate

    if not Path(schema).is_file():
        raise InputError(f"{schema}: config schema not found (the repository's schemas/config.schema.yaml)")
    out = copy.deepcopy(config)
    validate(out, str(schema), set_default=True)
    return out


def check_config(config: dict) -> None:
    """Raise :class:`InputError` naming the key when the config asks for something impossible."""
    for name, ds in config["datasets"].items():
        kind = ds["kind"]
        if kind in TASK_OF_KIND and ds.get("task") not in (None, TASK_OF_KIND[kind]):
            raise InputError(f"datasets.{name}.task: a {kind} dataset is {TASK_OF_KIND[kind]}, not {ds['task']}")
        for key in ("images_dir", "labels_csv", "rle_csv", "class_info_csv", "split_file", "backgrounds", "gt_json"):
            if ds.get(key) and not Path(ds[key]).exists():
                raise InputError(f"datasets.{name}.{key}: {ds[key]} does not exist")
    from .saliency.registry import check_saliency_config  # no TensorFlow import

    check_saliency_config(config)


def coerce_cli_strings(config: dict, schema: dict) -> None:
    """Type the strings of ``--config`` overrides in place as a config file would.

    Snakemake reads nested ``--config`` values with YAML's BaseLoader, so
    ``--config 'saliency={"params": {"SG": {"samples": 11}}}'`` arrives as ``'11'``. A string where
    ``schema`` (or, under ``saliency.params``, the type of the method's registry default) expects
    a number, boolean or null is read with ``yaml.safe_load`` and kept if that gives such a value;
    anything else is left for the schema check to report.
    """
    from .saliency.registry import METHODS, spec

    defs = schema.get("definitions", {})
    json_type = {bool: "boolean", int: "integer", float: "number", str: "string"}

    def node_of(node):
        ref = node.get("$ref", "")
        return node_of(defs[ref.rsplit("/", 1)[-1]]) if ref.startswith("#/definitions/") else node

    def types(node):
        t = node.get("type", [])
        out = set([t] if isinstance(t, str) else t)
        for branch in node.get("anyOf", []) + node.get("oneOf", []):
            out |= types(node_of(branch))
        return out

    def scalar(value, node):
        allowed = types(node)
        if not isinstance(value, str) or ("string" in allowed and value in node.get("enum", [value])):
            return value
        import yaml

        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        kind = "null" if parsed is None else json_type.get(type(parsed))
        ok = kind in allowed or (kind == "integer" and "number" in allowed)
        return parsed if ok else value

    def walk(value, node):
        node = node_of(node)
        if isinstance(value, dict):
            props, extra = node.get("properties", {}), node.get("additionalProperties")
            for key, sub in value.items():
                child = props.get(key, extra if isinstance(extra, dict) else None)
                if child is not None:
                    value[key] = walk(sub, child)
            return value
        if isinstance(value, list):
            items = node.get("items")
            return [walk(v, items) for v in value] if isinstance(items, dict) else value
        return scalar(value, node)

    walk(config, schema)
    for name, params in ((config.get("saliency") or {}).get("params") or {}).items():
        if name in METHODS and isinstance(params, dict):
            defaults = spec(name).defaults
            for key in params.keys() & defaults.keys():
                params[key] = scalar(params[key], {"type": json_type[type(defaults[key])]})
